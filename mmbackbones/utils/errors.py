"""The errors that describe a user's mistake (as opposed to a bug).

The tools' entry point (:func:`mmbackbones.utils.cli.entry_point`) prints a
:class:`UserError` as one line, ``error: <message>``, and exits with status 2; a traceback
appears only with ``--debug``. The subclasses are also ``ValueError`` s, so code that
catches the project's usual ``ValueError`` for bad arguments keeps working.

Every class takes the message as its one positional argument (mmengine's registry re-raises
an exception from a constructor as ``type(e)(new_message)``).
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A mistake in the user's input: one line naming what was wrong and what is valid.

    Args:
        message: the line to print (whitespace is collapsed to one line).
        detail: optional further lines printed below it as they are (e.g. an expected
            directory layout).

    Example:
        >>> str(UserError('--shape: must be >= 1, got 0'))
        '--shape: must be >= 1, got 0'
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.detail = detail

    def __str__(self) -> str:
        return self.message + (f'\n{self.detail}' if self.detail else '')


class ArgumentError(UserError, ValueError):
    """A bad value of a named argument or config key.

    Example:
        >>> raise ArgumentError("--space: unknown design space 'x'")
        Traceback (most recent call last):
        ...
        mmbackbones.utils.errors.ArgumentError: --space: unknown design space 'x'
    """


class InputFileError(UserError, ValueError):
    """A user's file that is missing, empty or malformed (``path:line: problem``).

    Example:
        >>> str(InputFileError(file_line('runs.jsonl', 3, 'not JSON')))
        'runs.jsonl:3: not JSON'
    """


def file_line(path: Any, line: int | None, problem: str) -> str:
    """``path:line: problem`` (``path: problem`` without a line), the compiler's form.

    Example:
        >>> file_line('a.jsonl', 2, "no field 'error'")
        "a.jsonl:2: no field 'error'"
    """
    return f'{path}:{line}: {problem}' if line else f'{path}: {problem}'

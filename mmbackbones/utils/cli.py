"""The one entry point of every ``tools/*.py``: a user's mistake is one line and exit
status 2; a traceback appears only with ``--debug`` or for a genuine bug.

Each tool decorates its ``main(argv=None)`` with :func:`entry_point` and builds its parser
with :class:`ToolParser` (``--debug`` in ``--help``; argparse errors on one line). Nothing
else: no ``try``/``except`` per tool. :func:`user_message` decides what is a user's mistake:

* :class:`~mmbackbones.utils.errors.UserError` (``fail()`` raises one);
* a ``ValueError`` raised by a ``raise`` statement of this project (``mmbackbones/``,
  ``tools/``): the project's contract is that a bad argument raises ``ValueError`` naming
  what is valid (DESIGN.md). A ``ValueError`` from inside a library, or one that our code
  triggers by accident (``int('x')``), is a bug and keeps its traceback;
* a file the user named that cannot be opened (``OSError`` with a file name outside the
  installation): ``path: No such file or directory``;
* a config file that does not parse or fails while it is executed (``file:line: ...``;
  mmengine's own message names neither the line nor, for an exception, the file);
* an unknown ``type`` in a config, or a key its class does not take (mmengine's registry
  and mmcv's layer builders raise ``KeyError`` / ``TypeError``), and what mmengine's config
  module raises on purpose (a dict that cannot inherit from its base, ...).

This module imports only the standard library, so that a tool starts its parser quickly.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import linecache
import os
import os.path as osp
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from .errors import ArgumentError, UserError, file_line

__all__ = [
    'ArgumentError',
    'ToolParser',
    'UserError',
    'above',
    'at_least',
    'checked',
    'file_ending',
    'entry_point',
    'fail',
    'user_message',
]

EXIT_USER_ERROR = 2  # argparse's status for a usage error
EXIT_INTERRUPTED = 130  # the shell's status for SIGINT
DEBUG_FLAG = '--debug'
DEBUG_HELP = 'on an error, show the full Python traceback (for a bug report)'

_PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))  # .../mmbackbones
_OURS = (_PACKAGE + os.sep, osp.join(osp.dirname(_PACKAGE), 'tools') + os.sep)
_INSTALLED = tuple(
    {osp.abspath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sysconfig.get_path('stdlib'))}
)
_REGISTRY = osp.join('mmengine', 'registry') + os.sep
_CONFIG = osp.join('mmengine', 'config') + os.sep
_MMCV_BRICKS = osp.join('mmcv', 'cnn', 'bricks') + os.sep
F = TypeVar('F', bound=Callable[..., Any])


def fail(msg: str, detail: str | None = None) -> NoReturn:
    """Stop with a user error: ``error: msg`` on stderr and exit status 2 (printed by the
    tool's :func:`entry_point`).

    Example:
        >>> fail("config file 'x.py' does not exist")
        Traceback (most recent call last):
        ...
        mmbackbones.utils.errors.UserError: config file 'x.py' does not exist
    """
    raise UserError(msg, detail)


# ------------------------------------------------------------------ argparse side
class ToolParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for the tools: lists ``--debug`` (read by
    :func:`entry_point`), and reports a usage error as one line with exit status 2.

    Example:
        >>> p = ToolParser(prog='get_flops.py')
        >>> _ = p.add_argument('--shape', type=at_least(1), nargs=2)
        >>> p.parse_args(['--shape', '8', '8']).shape
        [8, 8]
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action='store_true', help=DEBUG_HELP)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        try:
            return super().parse_known_args(args, namespace)
        except (ValueError, TypeError) as e:  # an action that raises instead of reporting
            action = _action_of(e.__traceback__)
            name = '/'.join(action.option_strings) or action.dest if action else None
            if name is None:
                raise
            self.error(f'argument {name}: {e}')

    def error(self, message: str) -> NoReturn:
        print(f'error: {_one_line(message)} (see {self.prog} --help)', file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


def _bounded(minimum: float, kind: type, strict: bool) -> Callable[[str], Any]:
    relation = '>' if strict else '>='

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = 'an integer' if kind is int else 'a number'
            raise argparse.ArgumentTypeError(
                f'expected {noun} {relation} {minimum}, got {text!r}'
            ) from None
        if not (value > minimum if strict else value >= minimum):  # also refuses nan
            raise argparse.ArgumentTypeError(f'must be {relation} {minimum}, got {text}')
        return value

    parse.__name__ = f'{kind.__name__} {relation} {minimum}'  # argparse's name of the type
    return parse


def _action_of(tb: TracebackType | None) -> argparse.Action | None:
    """The innermost ``argparse.Action`` running on the traceback (e.g. mmengine's
    ``DictAction`` given ``--cfg-options foo`` without ``=``)."""
    found = None
    while tb is not None:
        obj = tb.tb_frame.f_locals.get('self')
        found = obj if isinstance(obj, argparse.Action) else found
        tb = tb.tb_next
    return found


def at_least(minimum: float, kind: type = int) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, which must be ``>= minimum``.

    Example:
        >>> at_least(1)('3'), at_least(0.0, float)('0.5')
        (3, 0.5)
    """
    return _bounded(minimum, kind, strict=False)


def above(minimum: float, kind: type = float) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, which must be ``> minimum`` (a learning rate,
    a latency target).

    Example:
        >>> above(0)('0.1')
        0.1
    """
    return _bounded(minimum, kind, strict=True)


def file_ending(*endings: str) -> Callable[[str], str]:
    """An argparse ``type``: a file name that must end with one of ``endings``.

    Example:
        >>> file_ending('.pkl', '.pickle')('out/results.pkl')
        'out/results.pkl'
    """

    def parse(text: str) -> str:
        if not text.lower().endswith(endings):
            raise argparse.ArgumentTypeError(f'must end with {" or ".join(endings)}, got {text!r}')
        return text

    parse.__name__ = 'file name'
    return parse


def checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` from a parser that raises ``ValueError`` naming what is valid:
    argparse shows that message (it would print only "invalid value" otherwise).

    Example:
        >>> checked(int)('7')
        7
    """

    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    wrapped.__name__ = getattr(parse, '__name__', 'value')
    return wrapped


# ---------------------------------------------------------------- the entry point
def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (before a ``--``), and whether it was there."""
    end = argv.index('--') if '--' in argv else len(argv)
    head = [a for a in argv[:end] if a != DEBUG_FLAG]
    return head + argv[end:], len(head) < end


def entry_point(main: F) -> F:
    """Decorate a tool's ``main(argv=None)``: ``--debug`` is taken out of ``argv``; a
    user's mistake (:func:`user_message`) prints ``error: <one line>`` and exits with
    status 2; Ctrl-C exits with 130. Without an error, ``main``'s return value is returned.

    Example:
        >>> @entry_point
        ... def main(argv=None):
        ...     fail('-n must be >= 1, got 0')
        >>> main(['-n', '0'])
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> Any:
        argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
        try:
            return main(argv)
        except KeyboardInterrupt:
            if debug:
                raise
            print('interrupted', file=sys.stderr, flush=True)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except subprocess.CalledProcessError as e:
            tool = _our_tool(e.cmd)
            if debug or tool is None:
                raise
            # a tool this one ran (make demo -> tools/train.py) has printed its own error
            print(
                f'error: {tool} stopped (exit status {e.returncode}, see above)', file=sys.stderr
            )
            raise SystemExit(e.returncode) from None
        except Exception as e:
            msg = None if debug else user_message(e)
            if msg is None:
                raise
            print(f'error: {msg}', file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]


def _our_tool(cmd: Any) -> str | None:
    """``tools/x.py`` if the command ``cmd`` runs one of our tools."""
    words = [cmd] if isinstance(cmd, (str, os.PathLike)) else list(cmd or [])
    for word in words:
        path = osp.abspath(os.fsdecode(word)) if isinstance(word, (str, os.PathLike)) else ''
        if _ours(path) and path.endswith('.py'):
            return osp.relpath(path, osp.dirname(_PACKAGE))
    return None


# ------------------------------------------------------------- what is a mistake
def _one_line(text: str) -> str:
    return ' '.join(str(text).split())


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of each traceback frame, outermost first."""
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append((osp.abspath(code.co_filename), tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return out


def _ours(path: str) -> bool:
    return path.startswith(_OURS)


def _users(path: str) -> bool:
    """A real file that is neither ours nor part of the installation (a user's config)."""
    return osp.isfile(path) and not _ours(path) and not path.startswith(_INSTALLED)


def _raised_on_purpose(e: BaseException, where: Callable[[str], bool] = _ours) -> bool:
    """The innermost frame is a ``raise`` statement in a file that ``where`` accepts
    (default: our code)."""
    frames = _frames(e.__traceback__)
    if not frames:
        return False
    path, line, _ = frames[-1]
    if not where(path):
        return False
    return linecache.getline(path, line).lstrip().startswith('raise')


def _in(folder: str) -> Callable[[str], bool]:
    return lambda path: folder in path


def _config_file(tb: TracebackType | None) -> str | None:
    """The config file mmengine was reading: the ``filename`` argument of the innermost
    ``mmengine.config`` function on the traceback (``Config.fromfile``, ``_file2dict``, ...)."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if _CONFIG in osp.abspath(frame.f_code.co_filename):
            name = frame.f_locals.get('filename')
            if isinstance(name, (str, os.PathLike)) and osp.isfile(name):
                found = os.fsdecode(name)
        tb = tb.tb_next
    return found


def _syntax_message(e: SyntaxError) -> str:
    """``file:line: message`` of a config that does not parse. mmengine parses with
    ``ast.parse`` (no file name) and sometimes re-raises that error with the file in the
    message only; take the line from the original and the file from mmengine's frames."""
    inner = e.__context__ if isinstance(e.__context__, SyntaxError) else e
    path = inner.filename if inner.filename not in (None, '<unknown>', '<string>') else None
    path = path or _config_file(e.__traceback__) or _config_file(inner.__traceback__)
    problem = str(inner.msg or inner)
    if inner.text and inner.text.strip():
        problem += f': {inner.text.strip()!r}'
    return file_line(path, inner.lineno, problem) if path else _one_line(str(e))


def user_message(e: BaseException) -> str | None:
    """The line to print for a user's mistake ``e``; ``None`` for a bug (keep the
    traceback). See the module docstring for the rules.

    Example:
        >>> user_message(UserError('-n must be >= 1, got 0'))
        '-n must be >= 1, got 0'
        >>> user_message(ZeroDivisionError('division by zero')) is None
        True
    """
    if isinstance(e, UserError):
        return _one_line(e.message) + (f'\n{e.detail}' if e.detail else '')
    if isinstance(e, SyntaxError) and not _ours(osp.abspath(e.filename or '')):
        return _syntax_message(e)
    frames = _frames(e.__traceback__)
    if frames:  # an exception while a user's config (or script) ran: name its line
        path, line, func = frames[-1]
        if func == '<module>' and _users(path):
            return file_line(path, line, f'{type(e).__name__}: {_one_line(str(e))}')
    if isinstance(e, OSError) and e.filename is not None:
        path = osp.abspath(os.fsdecode(e.filename))
        if not (_ours(path) or path.startswith(_INSTALLED)):
            other = f' -> {os.fsdecode(e.filename2)}' if e.filename2 else ''
            return f'{os.fsdecode(e.filename)}{other}: {e.strerror or type(e).__name__}'
    if isinstance(e, ValueError) and _raised_on_purpose(e):
        return _one_line(str(e))
    if isinstance(e, KeyError) and _raised_on_purpose(e, _in(_REGISTRY)):
        text = str(e.args[0]) if e.args else str(e)  # an unknown `type`
        return f'config: {_one_line(text.split(" Please check")[0])}'
    if isinstance(e, KeyError) and _raised_on_purpose(e, _in(_MMCV_BRICKS)):
        # mmcv's build_norm_layer & co. (its message names None, not the type)
        kind = e.__traceback__ and _innermost_locals(e.__traceback__).get('layer_type')
        return f'config: unknown layer type {kind!r} ({_one_line(str(e.args[0]))})'
    if isinstance(e, (TypeError, KeyError, ValueError)) and _raised_on_purpose(e, _in(_CONFIG)):
        # mmengine refusing a config (e.g. a dict inheriting from a str without _delete_)
        path = _config_file(e.__traceback__)
        text = _one_line(str(e.args[0]) if e.args else str(e))
        return f'{path}: {text}' if path else f'config: {text}'
    if isinstance(e, TypeError) and 'unexpected keyword argument' in str(e):
        built = _registry_class(e.__traceback__)  # a config key the class does not take
        if built is not None:
            return (
                f'config: {built.__name__}: {_one_line(str(e))}; it takes '
                f'{_init_params(built)}'
            )
    return None


def _innermost_locals(tb: TracebackType) -> dict[str, Any]:
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_locals


def _registry_class(tb: TracebackType | None) -> type | None:
    """The class mmengine's registry was building when ``tb`` was raised."""
    built = None
    while tb is not None:
        frame = tb.tb_frame
        if _REGISTRY in osp.abspath(frame.f_code.co_filename):
            built = (
                frame.f_locals.get('obj_cls')
                if isinstance(frame.f_locals.get('obj_cls'), type)
                else built
            )
        tb = tb.tb_next
    return built


def _init_params(cls: type) -> list[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up the bases."""
    names: list[str] = []
    for klass in cls.__mro__:
        if '__init__' not in vars(klass) or klass is object:
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters.values()
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return sorted(set(names) - {'self'})

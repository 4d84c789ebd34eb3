"""Writing the plan as an mmengine config file: one key per line, a comment above each."""

from __future__ import annotations

import copy
import re
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import Change, DropIn

LINE = 99  # line length of the written config (the repo's ruff setting)


class _Tree(dict):
    """A dict of overrides that merges into the host's dict (rendered key by key)."""


# --------------------------------------------------------------- rendering
def _count(n: int, what: str) -> str:
    return f'{n} {what}' + ('' if n == 1 else 's')


def _apply(model: dict, plan: DropIn) -> None:
    """Apply the changes under ``model`` to a copy of the host model, and give every
    change that crosses a list the whole rewritten list (mmengine merges dicts key by key
    but replaces lists)."""
    new = copy.deepcopy(model)
    for c in plan.changes:
        if c.path[0] != 'model' or c.path[1] == 'backbone':
            continue
        node = new
        for p in c.path[1:-1]:
            node = node[p]
        if isinstance(c.value, _Tree):
            node.setdefault(c.path[-1], {}).update(c.value)
        else:
            node[c.path[-1]] = c.value
    for c in plan.changes:
        cut = next((i for i, p in enumerate(c.path) if isinstance(p, int)), None)
        if cut is not None:
            node = new
            for p in c.path[1 : cut - 1]:
                node = node[p]
            c.container = (c.path[:cut], copy.deepcopy(node[c.path[cut - 1]]))


def _tree(changes: list[Change]) -> tuple[_Tree, dict[tuple, list[str]]]:
    """The nested overrides and the comments by path (a list is written whole, its
    changes' comments above it)."""
    tree, comments = _Tree(), {}
    for c in changes:
        path, value = c.path, c.value
        if c.container is not None:
            path, value = c.container
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, _Tree())
        node[path[-1]] = value
        notes = comments.setdefault(path, [])
        why = c.why if c.container is None else f'{c.key}: {c.why}'
        if why not in notes:
            notes.append(why)
    return tree, comments


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


_IDENT = re.compile(r'[A-Za-z_]\w*\Z')


def _kwargs_ok(d: dict) -> bool:
    import keyword

    return all(isinstance(k, str) and _IDENT.match(k) and not keyword.iskeyword(k) for k in d)


def _py_line(value: Any) -> str:
    """``value`` as Python on one line, dicts as ``dict(...)``."""
    if isinstance(value, dict):
        if _kwargs_ok(value):
            return 'dict(' + ', '.join(f'{k}={_py_line(v)}' for k, v in value.items()) + ')'
        return '{' + ', '.join(f'{k!r}: {_py_line(v)}' for k, v in value.items()) + '}'
    if isinstance(value, list):
        return '[' + ', '.join(_py_line(v) for v in value) + ']'
    if isinstance(value, tuple):
        inner = ', '.join(_py_line(v) for v in value)
        return f'({inner},)' if len(value) == 1 else f'({inner})'
    return repr(value)


def _py(value: Any, indent: int, col: int | None = None) -> str:
    """``value`` as Python on a line indented by ``indent``, starting at column ``col``
    (default ``indent``); split one item a line when the line would pass :data:`LINE`, as
    ruff formats it."""
    col = indent if col is None else col
    one = _py_line(value)
    if col + len(one) + 1 <= LINE or not isinstance(value, (dict, list, tuple)) or not value:
        return one
    pad = ' ' * (indent + 4)
    if isinstance(value, dict):
        if _kwargs_ok(value):
            items = [
                f'{pad}{k}={_py(v, indent + 4, indent + 5 + len(k))},' for k, v in value.items()
            ]
            opening, closing = 'dict(', ')'
        else:
            items = [
                f'{pad}{k!r}: {_py(v, indent + 4, indent + 6 + len(repr(k)))},'
                for k, v in value.items()
            ]
            opening, closing = '{', '}'
    else:
        items = [f'{pad}{_py(v, indent + 4)},' for v in value]
        opening, closing = ('[', ']') if isinstance(value, list) else ('(', ')')
    return '\n'.join([opening, *items, ' ' * indent + closing])


def _comment_lines(notes: list[str], indent: int) -> list[str]:
    pad = ' ' * indent
    return [
        f'{pad}# {line}'
        for note in notes
        for line in textwrap.wrap(note, LINE - indent - 2, break_on_hyphens=False)
    ]


def _render(tree: _Tree, comments: dict[tuple, list[str]], path: tuple, indent: int) -> list[str]:
    pad = ' ' * indent
    lines: list[str] = []
    for key, value in tree.items():
        here = path + (key,)
        notes = comments.get(here, [])
        if isinstance(value, _Tree):
            inner = [n for p, ns in comments.items() if p[: len(here)] == here != p for n in ns]
            flat = f'{pad}{key}={_py_line(_plain(value))},'
            if len(inner) <= 1 and len(flat) <= LINE:
                lines += _comment_lines(notes + inner, indent) + [flat]
            else:
                lines += _comment_lines(notes, indent) + [f'{pad}{key}=dict(']
                lines += _render(value, comments, here, indent + 4) + [f'{pad}),']
        else:
            lines += _comment_lines(notes, indent)
            lines.append(f'{pad}{key}={_py(_plain(value), indent, indent + len(key) + 1)},')
    return lines

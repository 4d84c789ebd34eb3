"""The plan of a drop-in (:class:`DropIn`) and its parts."""

from __future__ import annotations

import os
import os.path as osp
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .render import LINE, _comment_lines, _count, _plain, _py, _py_line, _render, _Tree, _tree

#: The import that registers our backbones (``custom_imports`` of the written config).
IMPORT = 'mmbackbones.models'
#: Side of the square input the host backbone is measured with.
PROBE_SIZE = 256


class DropInError(ValueError):
    """A drop-in that cannot be written as asked; the message is a single line."""

    def __init__(self, msg: str) -> None:
        super().__init__(' '.join(str(msg).split()))


@dataclass
class HostBackbone:
    """What the host config's backbone gives its neck/heads, measured by building it.

    Attributes:
        type: The host backbone's ``type``, e.g. ``'ResNet'``.
        channels: Channels of each output, in output order.
        strides: Stride of each output, in output order.
        dilated: Whether it has dilated convs (mmseg's ``-d8`` / ``-d16`` backbones).
    """

    type: str
    channels: list[int]
    strides: list[int]
    dilated: bool

    def describe(self) -> str:
        return ', '.join(f'{c}ch@/{s}' for c, s in zip(self.channels, self.strides))


@dataclass
class Change:
    """One key of the written config: ``path`` from the top (``('model', 'neck',
    'in_channels')``; an int indexes a list), the new value, the host's and why."""

    path: tuple
    value: Any
    why: str
    old: Any = None
    #: ``(path, whole list)`` where ``path`` crosses a list: the list is written whole
    container: tuple | None = None

    @property
    def key(self) -> str:
        return '.'.join(str(p) for p in self.path)


@dataclass
class DropIn:
    """The rewrite of a host config for one of our backbones (see :func:`plan_dropin`).

    Attributes:
        host: The host config as given (``'mmdet::retinanet/...'`` or a path).
        base: What ``_base_`` says in the written config.
        scope: ``'mmdet'`` or ``'mmseg'``.
        family: Our family, e.g. ``'ReXNet'``.
        arch: Our arch (preset name or dict).
        host_backbone: The host backbone's outputs.
        taps: Our ``feature_info`` at ``output_stride``.
        out_indices: The chosen taps.
        out_channels: Their channels, in output order.
        out_strides: Their strides, in output order (== the host's).
        output_stride: Our ``output_stride`` (32 unless the host is dilated).
        changes: Every key the written config sets, in order.
        notes: Things the user should know (printed by the tool).
        command: The ``tools/dropin.py`` command line that writes this config.
    """

    host: str
    base: str
    scope: str
    family: str
    arch: Any
    host_backbone: HostBackbone
    taps: list[dict]
    out_indices: tuple[int, ...]
    out_channels: list[int]
    out_strides: list[int]
    output_stride: int
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    command: str = ''

    @property
    def name(self) -> str:
        """``ReXNet('1.0')``."""
        return f'{self.family}({self.arch!r})'

    @property
    def overrides(self) -> dict[str, Any]:
        """The keys the written config sets, as the nested dict mmengine merges into the
        host config (``Config.merge_from_dict`` gives the same config as the file)."""
        return _plain(_tree(self.changes)[0])

    def summary(self) -> list[str]:
        """What was measured, chosen and changed, one line each (the tool prints them)."""
        taps = ', '.join(
            f'{i}: {t["num_chs"]}ch@/{t["reduction"]}' + (' (head conv)' if t['head'] else '')
            for i, t in enumerate(self.taps)
        )
        chosen = ', '.join(f'{c}ch@/{s}' for c, s in zip(self.out_channels, self.out_strides))
        lines = [
            f'host {self.host}: backbone {self.host_backbone.type} gives '
            f'{_count(len(self.host_backbone.channels), "output")}: '
            f'{self.host_backbone.describe()}',
            f'{self.name} taps at output_stride {self.output_stride}: {taps}',
            f'chose out_indices {self.out_indices}: {chosen}',
            'changed:',
        ]
        for c in self.changes:
            if c.path[:2] == ('model', 'backbone') and c.path[2] in ('_delete_', 'type', 'arch'):
                if c.path[2] == '_delete_':
                    lines.append(f'  model.backbone: {self.host_backbone.type} -> {self.name}')
                continue
            old = '' if c.old is None else f'{_py_line(_plain(c.old))} -> '
            lines.append(f'  {c.key}: {old}{_py_line(_plain(c.value))}')
        return lines + [f'note: {n}' for n in self.notes]

    def text(self) -> str:
        """The config file."""
        command = textwrap.wrap(
            self.command, LINE - 6, break_long_words=False, break_on_hyphens=False
        )
        head = [
            *_comment_lines([f'{self.name} in {self.host}, written by tools/dropin.py:'], 0),
            *[f'#   {line}' + (' \\' if i < len(command) - 1 else '') for i, line in
              enumerate(command)],
            '# Everything is inherited from the host config (_base_) except the keys below; the',
            '# comment above each says why it changes.',
            *_comment_lines([f'note: {n}' for n in self.notes], 0),
            f'_base_ = {self.base!r}',
            '',
        ]  # fmt: skip
        tree, comments = _tree(self.changes)
        body: list[str] = []
        for key, value in tree.items():
            body += _comment_lines(comments.get((key,), []), 0)
            if isinstance(value, _Tree):
                body.append(f'{key} = dict(')
                body += _render(value, comments, (key,), 4)
                body.append(')')
            else:
                body.append(f'{key} = {_py(value, 0, len(key) + 3)}')
        return '\n'.join(head + body) + '\n'

    def write(self, out: str) -> str:
        """Write :meth:`text` to ``out`` (folders are created); return the text."""
        text = self.text()
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            f.write(text)
        return text

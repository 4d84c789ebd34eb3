"""How the converters write things for people: key lists in one-line messages, the
command-line arguments that convert a published model, the backbone config to paste."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def first(items: Sequence[str], n: int = 3) -> str:
    """The first ``n`` items, comma-separated, and how many more there are.

    Example:
        >>> first(['a', 'b', 'c', 'd', 'e'])
        'a, b, c (+2 more)'
    """
    items = list(items)
    more = f' (+{len(items) - n} more)' if len(items) > n else ''
    return ', '.join(items[:n]) + more


def kwargs_repr(kwargs: Mapping[str, Any]) -> str:
    """Keyword arguments as they continue a call's repr (``, k=v, ...``)."""
    return ''.join(f', {k}={v!r}' for k, v in kwargs.items())


def arch_arg(arch: str | dict) -> str:
    """``--arch`` as typed in a shell: a preset name, or a quoted dict literal."""
    return arch if isinstance(arch, str) else f'"{arch!r}"'


def backbone_args(kwargs: Mapping[str, Any]) -> str:
    """``--backbone-args`` as typed in a shell (empty without arguments).

    Example:
        >>> backbone_args(dict(widen_factor=0.75, width_rule='timm'))
        " --backbone-args widen_factor=0.75 width_rule='timm'"
    """
    if not kwargs:
        return ''
    return ' --backbone-args ' + ' '.join(f'{k}={v!r}' for k, v in kwargs.items())


def format_config(backbone: Mapping[str, Any], checkpoint: str) -> str:
    """The backbone config to paste, with its ``init_cfg``.

    Example:
        >>> format_config(dict(type='mmbackbones.ReXNet', arch='1.0'), 'ck.pth')
        "dict(type='mmbackbones.ReXNet', arch='1.0', init_cfg=dict(type='Pretrained', checkpoint='ck.pth'))"
    """  # noqa: E501

    def fmt(v: Any) -> str:
        if isinstance(v, Mapping):
            return 'dict(' + ', '.join(f'{k}={fmt(x)}' for k, x in v.items()) + ')'
        return repr(v)

    return fmt({**backbone, 'init_cfg': dict(type='Pretrained', checkpoint=checkpoint)})

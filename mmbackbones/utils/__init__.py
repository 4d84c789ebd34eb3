"""Helpers shared by the tools: the one entry point that turns a user's mistake into one
line and exit status 2 (:mod:`.cli`, with the error types in :mod:`.errors`), the checks of
``tools/train.py`` and ``tools/test.py`` (:mod:`.checks`), config preparation
(:mod:`.config`), CPU distributed training (:mod:`.dist`) and the one nested-config walker
(:mod:`.nested`).

The checks are imported on first use, so that :mod:`.nested` can serve
``mmbackbones.datasets`` (which the checks import) without an import cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    'DataNotFoundError',
    'check_counts',
    'check_data',
    'check_neck_channels',
    'check_pretrained',
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import checks

        return getattr(checks, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

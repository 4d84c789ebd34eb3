"""Backbone families, one per file, all on the contract in ``base.py``."""

from __future__ import annotations

from .anynet import AnyNet
from .base import BaseBackbone, BlockSpec, LayerSpec, StrideSchedule
from .efficientnet import EfficientNet
from .mobilenet_v3 import MobileNetV3
from .regnet import RegNet
from .resnext import ResNeXt
from .rexnet import ReXNet

__all__ = [
    'AnyNet',
    'BaseBackbone',
    'BlockSpec',
    'EfficientNet',
    'LayerSpec',
    'MobileNetV3',
    'RegNet',
    'ResNeXt',
    'ReXNet',
    'StrideSchedule',
    'backbone_families',
    'family_class',
]


def backbone_families() -> dict[str, type[BaseBackbone]]:
    """Every backbone family registered under scope ``mmbackbones``, by class name (sorted).

    The one family list: the converters, the benchmark, NetAdapt and the tools read it
    from the registry, so a new family file appears everywhere once it registers.

    Example:
        >>> sorted(backbone_families())
        ['AnyNet', 'EfficientNet', 'MobileNetV3', 'ReXNet', 'RegNet', 'ResNeXt']
    """
    from mmbackbones.registry import MODELS

    return {
        name: cls
        for name, cls in sorted(MODELS.module_dict.items())
        if isinstance(cls, type) and issubclass(cls, BaseBackbone)
    }


def family_class(name: str) -> type[BaseBackbone]:
    """The backbone class of a family name (``'ReXNet'`` or ``'mmbackbones.ReXNet'``).

    Raises:
        ValueError: for an unknown name, listing the valid ones.

    Example:
        >>> family_class('mmbackbones.RegNet').__name__
        'RegNet'
    """
    families = backbone_families()
    key = name.split('.')[-1] if isinstance(name, str) else name
    if key not in families:
        raise ValueError(
            f'unknown backbone family {name!r}; valid families are {sorted(families)}'
        )
    return families[key]

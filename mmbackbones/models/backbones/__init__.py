"""Backbone families, one per file, all on the contract in ``base.py``."""

from .anynet import AnyNet, RegNet, ResNeXt
from .base import BaseBackbone, LayerSpec, StrideSchedule
from .efficientnet import EfficientNet
from .mobilenet_v3 import MobileNetV3
from .rexnet import ReXNet

__all__ = [
    'AnyNet',
    'BaseBackbone',
    'EfficientNet',
    'LayerSpec',
    'MobileNetV3',
    'RegNet',
    'ResNeXt',
    'ReXNet',
    'StrideSchedule',
]

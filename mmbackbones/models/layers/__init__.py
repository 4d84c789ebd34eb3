"""Layers shared by every backbone family."""

from .activations import build_act
from .conv import ConvNormAct
from .inverted_residual import InvertedResidual
from .residual import (
    BLOCK_ALIASES,
    BLOCKS,
    ResBasicBlock,
    ResBottleneckBlock,
    ResidualBlock,
    VanillaBlock,
    bottleneck_widths,
)
from .se import SqueezeExcite
from .utils import make_divisible

__all__ = [
    'BLOCKS',
    'BLOCK_ALIASES',
    'ConvNormAct',
    'InvertedResidual',
    'ResBasicBlock',
    'ResBottleneckBlock',
    'ResidualBlock',
    'SqueezeExcite',
    'VanillaBlock',
    'bottleneck_widths',
    'build_act',
    'make_divisible',
]

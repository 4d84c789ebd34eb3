"""Layers shared by every backbone family."""

from .activations import build_act
from .conv import ConvNormAct
from .inverted_residual import InvertedResidual
from .padding import PADDINGS, TFSamePad, check_padding, tf_same_padding
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
    'PADDINGS',
    'ResBasicBlock',
    'ResBottleneckBlock',
    'ResidualBlock',
    'SqueezeExcite',
    'TFSamePad',
    'VanillaBlock',
    'bottleneck_widths',
    'build_act',
    'check_padding',
    'make_divisible',
    'tf_same_padding',
]

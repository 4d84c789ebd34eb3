"""Layers shared by every backbone family."""

from .activations import build_act
from .conv import ConvNormAct
from .inverted_residual import InvertedResidual
from .se import SqueezeExcite
from .utils import make_divisible

__all__ = ['ConvNormAct', 'InvertedResidual', 'SqueezeExcite', 'build_act', 'make_divisible']

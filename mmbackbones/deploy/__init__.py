"""Deploy tools: BatchNorm fusion (:func:`fuse`) and building models to export."""

from .build import BackboneNeck, build_backbone, build_backbone_or_config, build_model_from_config
from .calibrate import randomize_bn
from .fold import fold_bn
from .fuse import fuse

__all__ = [
    'BackboneNeck',
    'build_backbone',
    'build_backbone_or_config',
    'build_model_from_config',
    'fold_bn',
    'fuse',
    'randomize_bn',
]

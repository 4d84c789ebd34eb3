"""Deploy tools: BatchNorm fusion (:func:`fuse`), its compiled form
(:func:`compile_for_inference`) and building models to export."""

from .build import BackboneNeck, build_backbone, build_backbone_or_config, build_model_from_config
from .calibrate import randomize_bn
from .compile import CompileUnavailableError, compile_for_inference
from .fold import fold_bn
from .fuse import fuse

__all__ = [
    'BackboneNeck',
    'CompileUnavailableError',
    'build_backbone',
    'build_backbone_or_config',
    'build_model_from_config',
    'compile_for_inference',
    'fold_bn',
    'fuse',
    'randomize_bn',
]

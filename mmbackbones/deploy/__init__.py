"""Deploy tools: BatchNorm fusion (:func:`fuse`, extended per block type with
:func:`register_fuser`), its compiled form (:func:`compile_for_inference`) and building
models to export. PyTorch's private oneDNN ops are wrapped and self-tested in
:mod:`mmbackbones.deploy.onednn`."""

from .build import BackboneNeck, build_backbone, build_backbone_or_config
from .calibrate import randomize_bn
from .compile import CompileUnavailableError, compile_for_inference
from .fold import fold_bn
from .fuse import fuse, register_fuser

__all__ = [
    'BackboneNeck',
    'CompileUnavailableError',
    'build_backbone',
    'build_backbone_or_config',
    'compile_for_inference',
    'fold_bn',
    'fuse',
    'randomize_bn',
    'register_fuser',
]

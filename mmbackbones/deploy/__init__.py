"""Deploy tools: BatchNorm fusion (:func:`fuse`, extended per block type with
:func:`register_fuser`), its compiled form (:func:`compile_for_inference`) and building
models to export; whole-model ONNX export (:func:`export_model`, :mod:`.export`) and the
runtimes as backends (:class:`Runtime`, :mod:`.runtime`); one engine per runtime and
precision (:mod:`.engines`) and INT8 post-training quantization (:mod:`.quantize`)."""

from .build import BackboneNeck, build_backbone, build_backbone_or_config
from .calibrate import randomize_bn
from .compile import CompileUnavailableError, compile_for_inference
from .fold import fold_bn
from .fuse import fuse, register_fuser

#: whole-model export and the runtimes, imported on first use (they need onnx /
#: torchvision / a runtime, which the rest of the package does not)
_LAZY = {
    'ExportResult': 'export',
    'export_model': 'export',
    'Runtime': 'runtime',
    'RuntimeModel': 'runtime',
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = [
    'BackboneNeck',
    'CompileUnavailableError',
    'ExportResult',
    'Runtime',
    'RuntimeModel',
    'build_backbone',
    'build_backbone_or_config',
    'compile_for_inference',
    'export_model',
    'fold_bn',
    'fuse',
    'randomize_bn',
    'register_fuser',
]

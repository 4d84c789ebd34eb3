"""Checkpoint converters: ImageNet weights from timm, torchvision, clovaai/rexnet, pycls and
efficientnet_pytorch into mmbackbones backbones (``tools/convert_weights.py`` is the command line).

Example:
    >>> from mmbackbones.convert import SOURCES, convert_file, resolve
    >>> req = resolve(SOURCES['timm'], 'ReXNet', '1.0')          # doctest: +SKIP
    >>> convert_file('rexnet_100.pth', 'checkpoints/rexnet-1.0_imagenet.pth', req,
    ...              others=list(SOURCES.values()))              # doctest: +SKIP
"""

from __future__ import annotations

from . import clovaai, efficientnet_pytorch, pycls, timm, torchvision
from .core import ConvertResult, Request, convert_file, convert_state_dict, resolve
from .diagnose import diagnose
from .formatting import format_config
from .io import WRAPPER_KEYS, read_state_dict, unwrap_state_dict
from .source import BGR_PYCLS, RGB_IMAGENET, ConversionError, Drop, Input, Preset, Source
from .target import families

#: ``--source`` name -> :class:`Source`.
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        timm.SOURCE,
        torchvision.SOURCE,
        clovaai.SOURCE,
        pycls.SOURCE,
        efficientnet_pytorch.SOURCE,
    )
}


# weight URIs (timm://, tv://, pycls://, clovaai://) for mmengine's CheckpointLoader
from .uri import register_schemes as _register_schemes  # noqa: E402

_register_schemes()


def __getattr__(name: str):
    # FAMILIES: the registry's backbone families, read when asked (a family registered
    # after this import appears too)
    if name == 'FAMILIES':
        return families()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def convert(
    state_dict: dict,
    source: str,
    backbone: str | None = None,
    arch: str | dict | None = None,
    *,
    model: str | None = None,
    rgb: bool = False,
    classifier: bool = False,
    **kwargs,
) -> ConvertResult:
    """Convert an (unwrapped) source state dict; ``kwargs`` are further backbone arguments.

    A one-call wrapper of :func:`resolve` + :func:`convert_state_dict` (``classifier``:
    with the ImageNet classifier, an ``ImageClassifier`` state dict).
    """
    if source not in SOURCES:
        raise ConversionError(f'unknown source {source!r}; valid: {list(SOURCES)}')
    req = resolve(SOURCES[source], backbone, arch, kwargs, model)
    return convert_state_dict(
        state_dict, req, rgb=rgb, others=list(SOURCES.values()), classifier=classifier
    )


__all__ = [
    'BGR_PYCLS',
    'FAMILIES',
    'RGB_IMAGENET',
    'SOURCES',
    'WRAPPER_KEYS',
    'ConversionError',
    'ConvertResult',
    'Drop',
    'Input',
    'Preset',
    'Request',
    'Source',
    'convert',
    'convert_file',
    'convert_state_dict',
    'diagnose',
    'families',
    'format_config',
    'read_state_dict',
    'resolve',
    'unwrap_state_dict',
]

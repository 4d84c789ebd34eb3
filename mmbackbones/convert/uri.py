"""Weight URIs: published ImageNet weights named in a config, converted when they load.

``init_cfg=dict(type='Pretrained', checkpoint=URI)`` loads published weights with no manual
step: the file is fetched into the ecosystem's own cache, converted in memory by
:mod:`mmbackbones.convert` and handed to mmengine as our state dict. The schemes are
registered with mmengine's ``CheckpointLoader.register_scheme`` when ``mmbackbones.models``
(what configs import) or ``mmbackbones.convert`` is imported:

==================================  =========================================  ====================
URI                                 weights                                    cache
==================================  =========================================  ====================
``timm://<hub name>``               timm's on the Hugging Face Hub, repo       Hugging Face cache
                                    ``timm/<hub name>``, e.g.                  (``HF_HOME``)
                                    ``timm://rexnet_100.nav_in1k``
``tv://<model>[.<weights>]``        torchvision's, e.g.                        ``TORCH_HOME``
                                    ``tv://mobilenet_v3_large.imagenet1k_v1``  ``/hub/checkpoints``
``pycls://<model>``                 the pycls model zoo, e.g.                  ``TORCH_HOME``
                                    ``pycls://RegNetX-3.2GF``                  ``/hub/checkpoints``
``clovaai://<model>``               the ReXNet authors' files, e.g.            ``TORCH_HOME``
                                    ``clovaai://rexnetv1_1.0``                 ``/hub/checkpoints``
==================================  =========================================  ====================

``tv://`` is not mmengine's ``torchvision://`` (nor ``open-mmlab://``): those return the raw
torchvision / OpenMMLab state dicts that mmdet's own ResNet configs load, and keep doing so.

This module names things (URIs, published files, the converter's default file names) and
registers the schemes; :mod:`.uri_fetch` downloads and converts, :mod:`.uri_check` compares
the weights' training settings with a backbone / config. It imports nothing heavy, so that
importing it while :mod:`mmbackbones.convert` is still loading is safe.

Example:
    >>> from mmbackbones.convert.uri import resolve_uri, default_checkpoint
    >>> w = resolve_uri('timm://rexnet_100.nav_in1k')
    >>> w.request.family, w.request.arch, w.location
    ('ReXNet', '1.0', 'timm/rexnet_100.nav_in1k')
    >>> default_checkpoint('EfficientNet', 'b0')
    'checkpoints/efficientnet-b0_imagenet.pth'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .source import ConversionError

#: Where ``tools/convert_weights.py`` writes by default, and the configs' local files.
CHECKPOINT_DIR = 'checkpoints'
#: timm's files in a hub repo, in the order timm itself prefers them.
TIMM_FILES = ('model.safetensors', 'pytorch_model.bin')
#: Backbone arguments that do not change which tensors a weight file holds.
LAYOUT_ARGS = frozenset(
    {
        'out_indices',
        'feature_location',
        'norm_cfg',
        'act_cfg',
        'frozen_stages',
        'norm_eval',
        'with_cp',
        'output_stride',
        'drop_path_rate',
        'init_cfg',
        'pretrained',
    }
)


class WeightsURIError(ConversionError):
    """A weight URI that names nothing we can convert (unknown scheme, model or tag)."""


@dataclass(frozen=True)
class Scheme:
    """A weight URI scheme.

    Attributes:
        name: The prefix without ``://``.
        source: The converter's ``--source`` the files are in.
        cache: ``'hf'`` (the Hugging Face cache) or ``'torch'`` (``TORCH_HOME``).
        example: A URI of this scheme.
    """

    name: str
    source: str
    cache: str
    example: str

    @property
    def prefix(self) -> str:
        return f'{self.name}://'


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme('timm', 'timm', 'hf', 'timm://rexnet_100.nav_in1k'),
        Scheme('tv', 'torchvision', 'torch', 'tv://mobilenet_v3_large.imagenet1k_v1'),
        Scheme('pycls', 'pycls', 'torch', 'pycls://RegNetX-3.2GF'),
        Scheme('clovaai', 'clovaai', 'torch', 'clovaai://rexnetv1_1.0'),
    )
}


# ------------------------------------------------------------------- published files
#: pycls's model zoo (``pycls/models/model_zoo.py``): our preset name -> file under
#: https://dl.fbaipublicfiles.com/pycls/ (pycls's own names: ResNeXt-101 = X-101-32x4d,
#: EfficientNet-B0 = EN-B0).
PYCLS_URL = 'https://dl.fbaipublicfiles.com/pycls'
PYCLS_FILES = {
    **{
        f'RegNetX-{size}': f'dds_baselines/{run}/RegNetX-{size}_dds_8gpu.pyth'
        for size, run in [
            ('200MF', 160905981), ('400MF', 160905967), ('600MF', 160906442),
            ('800MF', 160906036), ('1.6GF', 160990626), ('3.2GF', 160906139),
            ('4.0GF', 160906383), ('6.4GF', 161116590), ('8.0GF', 161107726),
            ('12GF', 160906020), ('16GF', 158460855), ('32GF', 158188473),
        ]
    },
    **{
        f'RegNetY-{size}': f'dds_baselines/{run}/RegNetY-{size}_dds_8gpu.pyth'
        for size, run in [
            ('200MF', 176245422), ('400MF', 160906449), ('600MF', 160981443),
            ('800MF', 160906567), ('1.6GF', 160906681), ('3.2GF', 160906834),
            ('4.0GF', 160906838), ('6.4GF', 160907112), ('8.0GF', 161160905),
            ('12GF', 160907100), ('16GF', 161303400), ('32GF', 161277763),
        ]
    },
    **{
        f'X-{depth}-32x4d': f'dds_baselines/{run}/X-{depth}-32x4d_dds_8gpu.pyth'
        for depth, run in [(50, 161167411), (101, 161167590), (152, 162471172)]
    },
    **{
        f'EN-B{i}': f'dds_baselines/{run}/EN-B{i}_dds_8gpu.pyth'
        for i, run in enumerate([161305613, 161304979, 161305015, 161305060, 161305098, 161305138])
    },
}  # fmt: skip

#: The ReXNet authors' files (Google Drive ids of the links in clovaai/rexnet's README,
#: "ImageNet-1k Pretrained models"): our preset name -> (id, the file's name). The authors
#: publish no x0.9 or x2.2 file (their COCO rows' widths).
CLOVAAI_FILES = {
    'rexnetv1_1.0': ('1xeIJ3wb83uOowU008ykYj6wDX2dsncA9', 'rexnetv1_1.0.pth'),
    'rexnetv1_1.3': ('1x2ziK9Oyv66Y9NsxJxXsdjzpQF2uSJj0', 'rexnetv1_1.3.pth'),
    'rexnetv1_1.5': ('1TOBGsbDhTHWBgqcRnyKIR0tHsJTOPUIG', 'rexnetv1_1.5.pth'),
    'rexnetv1_2.0': ('1R1aOTKIe1Mvck86NanqcjWnlR8DY-Z4C', 'rexnetv1_2.0.pth'),
    'rexnetv1_3.0': ('1iXAsr8gs3pRz0QyHKomdj5SGVzPWbIs2', 'rexnetv1_3.0.pth'),
    'rexnet_lite_1.0': ('1d9G4pLwZwkoDR2TRPCQlxiWiuC7R-Oqf', 'rexnet_lite_1.0.pth'),
    'rexnet_lite_1.3': ('1NsbsdI8qAHG6HdMxmySXcrl9NdEx3s0L', 'rexnet_lite_1.3.pth'),
    'rexnet_lite_1.5': ('12QzIh9A-U0PBGaLNOIr4gX2MoZEBnRjk', 'rexnet_lite_1.5.pth'),
    'rexnet_lite_2.0': ('1pGdG9HWnqSAu1FajmaMJMK5JyOJaiFyW', 'rexnet_lite_2.0.pth'),
}
# drive.usercontent serves the file itself (drive.google.com/uc answers files over ~100 MB
# with a confirmation page)
_DRIVE_FILE = 'https://drive.usercontent.google.com/download?id={}&export=download&confirm=t'
_DRIVE_PAGE = 'https://drive.google.com/file/d/{}/view'


# ------------------------------------------------------------------------ resolution
@dataclass(frozen=True)
class Weights:
    """What a weight URI names (:func:`resolve_uri`); nothing is downloaded.

    Attributes:
        uri: The URI.
        scheme: Its scheme.
        model: The published model name (``tools/convert_weights.py --model``).
        tag: timm's pretrained tag or torchvision's weights name (else ``None``).
        request: The conversion (:class:`~.core.Request`: family, arch, kwargs, BN eps).
        location: The Hugging Face repo id (``timm://``) or the download URL.
        files: The file names looked for: in the repo (timm's order), or the one name in
            ``TORCH_HOME/hub/checkpoints``.
        page: Where a person downloads the file by hand.
        input_hint: The input statistics known without fetching anything (``tv://``: the
            weights enum's transforms), else ``None``.
    """

    uri: str
    scheme: Scheme
    model: str
    tag: str | None
    request: Any
    location: str
    files: tuple[str, ...]
    page: str
    input_hint: Any = field(default=None, compare=False)


def is_weights_uri(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` is one of our weight URIs.

    Example:
        >>> is_weights_uri('timm://rexnet_100.nav_in1k'), is_weights_uri('torchvision://resnet50')
        (True, False)
    """
    return isinstance(checkpoint, str) and checkpoint.startswith(
        tuple(s.prefix for s in SCHEMES.values())
    )


def split_uri(uri: str) -> tuple[Scheme, str]:
    """``(scheme, name)`` of a weight URI.

    Raises:
        WeightsURIError: not one of our schemes, or no name.
    """
    for s in SCHEMES.values():
        if isinstance(uri, str) and uri.startswith(s.prefix):
            name = uri[len(s.prefix) :]
            if not name or '/' in name:
                raise WeightsURIError(f'{uri!r}: expected {s.prefix}<name>, e.g. {s.example}')
            return s, name
    known = ', '.join(f'{s.prefix} (e.g. {s.example})' for s in SCHEMES.values())
    raise WeightsURIError(f'{uri!r} is not a weight URI of ours; the schemes are {known}')


def _request(scheme: Scheme, uri: str, model: str):
    from . import SOURCES
    from .core import resolve

    try:
        return resolve(SOURCES[scheme.source], model=model)
    except ConversionError as e:
        raise WeightsURIError(f'{uri}: {e}') from None


def resolve_uri(uri: str) -> Weights:
    """What a weight URI names: the published file, where it is cached, how it converts.

    Raises:
        WeightsURIError: an unknown scheme, model, tag or unpublished file.
    """
    scheme, name = split_uri(uri)
    return _RESOLVERS[scheme.name](uri, scheme, name)


def _resolve_timm(uri: str, scheme: Scheme, name: str) -> Weights:
    model, _, tag = name.partition('.')
    if not tag:
        tag = _timm_default_tag(model)
        if tag is None:
            raise WeightsURIError(
                f'{uri}: name the pretrained tag, timm://{model}.<tag> (timm hub repos are '
                f'timm/<model>.<tag>, e.g. {scheme.example}); with timm installed the '
                "model's default tag is used"
            )
    request = _request(scheme, uri, f'{model}.{tag}')
    repo = f'timm/{model}.{tag}'
    return Weights(
        uri, scheme, model, tag, request, repo, TIMM_FILES, f'https://huggingface.co/{repo}'
    )


def _timm_default_tag(model: str) -> str | None:
    """timm's default pretrained tag of ``model`` (``None`` without timm or a tag)."""
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:
        return None
    try:
        cfg = get_pretrained_cfg(model, allow_unregistered=False)
    except (RuntimeError, ValueError):  # a model this timm does not know
        return None
    return getattr(cfg, 'tag', None) or None


def _resolve_tv(uri: str, scheme: Scheme, name: str) -> Weights:
    model, _, tag = name.partition('.')
    request = _request(scheme, uri, model)
    try:
        from torchvision.models import get_model_weights
    except ImportError:
        raise WeightsURIError(
            f"{uri}: tv:// looks the weights up in torchvision's weights enums; install "
            'torchvision (pip install mmbackbones[convert])'
        ) from None
    enum = get_model_weights(model)
    names = [w.name for w in enum]
    if not tag:
        weights = enum.DEFAULT
    elif tag.upper() in names:
        weights = enum[tag.upper()]
    else:
        raise WeightsURIError(
            f'{uri}: torchvision has no {model} weights {tag!r}; '
            f'valid: {[n.lower() for n in names]} (or none: the default)'
        )
    from urllib.parse import urlparse

    from .source import Input

    file = urlparse(weights.url).path.rsplit('/', 1)[-1]
    transforms = weights.transforms()
    hint = Input(
        'RGB',
        tuple(round(255 * m, 4) for m in transforms.mean),
        tuple(round(255 * s, 4) for s in transforms.std),
    )
    return Weights(
        uri, scheme, model, weights.name.lower(), request, weights.url, (file,), weights.url, hint
    )


def _published(uri: str, model: str, table: Mapping[str, Any], who: str) -> None:
    if model not in table:
        raise WeightsURIError(
            f'{uri}: {who} no {model!r} file; published: {sorted(table)}. For weights '
            f'you trained yourself, convert them with tools/convert_weights.py and name the '
            'file in init_cfg'
        )


def _resolve_pycls(uri: str, scheme: Scheme, name: str) -> Weights:
    _published(uri, name, PYCLS_FILES, "pycls's model zoo has")
    request = _request(scheme, uri, name)
    url = f'{PYCLS_URL}/{PYCLS_FILES[name]}'
    return Weights(uri, scheme, name, None, request, url, (url.rsplit('/', 1)[-1],), url)


def _resolve_clovaai(uri: str, scheme: Scheme, name: str) -> Weights:
    _published(uri, name, CLOVAAI_FILES, 'the ReXNet authors (clovaai/rexnet) publish')
    request = _request(scheme, uri, name)
    drive_id, file = CLOVAAI_FILES[name]
    page = _DRIVE_PAGE.format(drive_id)
    return Weights(uri, scheme, name, None, request, _DRIVE_FILE.format(drive_id), (file,), page)


_RESOLVERS = {
    'timm': _resolve_timm,
    'tv': _resolve_tv,
    'pycls': _resolve_pycls,
    'clovaai': _resolve_clovaai,
}


# --------------------------------------------------------------------------- naming
def default_checkpoint(
    family: str,
    arch: str | dict,
    kwargs: Mapping[str, Any] | None = None,
    classifier: bool = False,
) -> str | None:
    """The local file of converted weights for a backbone: what ``tools/convert_weights.py``
    writes without a DST and what a config without published weights names.

    One rule for every family: ``checkpoints/<family>-<arch>[-<argument>...]_imagenet.pth``
    in lower case with ``-`` for ``_`` (the arch alone when it already starts with the
    family), the leaf configs' backbone names. Arguments that change the tensors are
    appended (``widen_factor`` as its value, ``reduced_tail`` as ``rt``, others by value);
    layout arguments (:data:`LAYOUT_ARGS`) are not. With ``classifier`` (``--classifier``:
    an ``ImageClassifier`` file, not a backbone init) the name ends ``_imagenet-classifier.pth``.
    ``None`` for an arch dict (no name: give DST).

    Example:
        >>> default_checkpoint('ReXNet', '0.9'), default_checkpoint('RegNet', 'regnetx_3.2gf')
        ('checkpoints/rexnet-0.9_imagenet.pth', 'checkpoints/regnetx-3.2gf_imagenet.pth')
        >>> default_checkpoint('MobileNetV3', 'large', dict(reduced_tail=True))
        'checkpoints/mobilenetv3-large-rt_imagenet.pth'
        >>> default_checkpoint('ResNeXt', '101_32x4d')
        'checkpoints/resnext-101-32x4d_imagenet.pth'
    """
    if not isinstance(arch, str):
        return None
    base, a = family.lower(), arch.lower().replace('_', '-')
    parts = [a if a.startswith(base) else f'{base}-{a}']
    for key, value in sorted((kwargs or {}).items()):
        if key in LAYOUT_ARGS or value in (None, False):
            continue
        if key == 'widen_factor':
            if float(value) != 1.0:
                parts.append(f'{float(value):g}')
        elif key == 'reduced_tail':
            parts.append('rt' if value is True else f'rt-{value}')
        elif key == 'padding' and value == 'symmetric':
            continue  # the default
        else:
            parts.append(str(value).lower().replace('_', '-'))
    end = '_imagenet-classifier.pth' if classifier else '_imagenet.pth'
    return f'{CHECKPOINT_DIR}/{"-".join(parts)}{end}'


def convert_command(w: Weights, src: str | None = None) -> str:
    """The ``tools/convert_weights.py`` command that converts the URI's file by hand, and
    the file it writes.

    Example:
        >>> convert_command(resolve_uri('pycls://RegNetX-3.2GF'))
        'python tools/convert_weights.py RegNetX-3.2GF_dds_8gpu.pyth --source pycls --model RegNetX-3.2GF (writes checkpoints/regnetx-3.2gf_imagenet.pth)'
    """  # noqa: E501
    req = w.request
    model = f'{w.model}.{w.tag}' if w.scheme.name == 'timm' else w.model
    dst = default_checkpoint(req.family, req.arch, req.kwargs)
    cmd = f'python tools/convert_weights.py {src or w.files[0]} --source {w.scheme.source}'
    cmd += f' --model {model}'
    return cmd + (f' (writes {dst})' if dst else ' DST')


# ---------------------------------------------------------------------- registration
def _loader(scheme: Scheme):
    def load(filename: str, map_location: Any = None) -> dict:
        from .uri_fetch import load_uri

        return load_uri(filename, map_location)

    # mmengine logs "Loads checkpoint by <name[10:]> backend"
    load.__name__ = load.__qualname__ = f'load_from_{scheme.name}'
    load.__doc__ = f'{scheme.prefix} weights, converted to our backbone (mmbackbones).'
    return load


_registered: set[str] = set()


def register_schemes() -> list[str]:
    """Register every scheme with mmengine's ``CheckpointLoader`` (idempotent); returns
    the prefixes registered by this call. A prefix another package registered first is
    left alone, with a warning."""
    from mmengine.runner.checkpoint import CheckpointLoader

    done = []
    for s in SCHEMES.values():
        if s.prefix in _registered:
            continue
        try:
            CheckpointLoader.register_scheme(prefixes=s.prefix, loader=_loader(s))
        except KeyError:
            warnings.warn(
                f'{s.prefix} is registered by another package; mmbackbones weight URIs '
                f'{s.prefix}... are unavailable in this process',
                stacklevel=2,
            )
            continue
        _registered.add(s.prefix)
        done.append(s.prefix)
    return done


__all__ = [
    'CHECKPOINT_DIR',
    'CLOVAAI_FILES',
    'PYCLS_FILES',
    'SCHEMES',
    'Scheme',
    'Weights',
    'WeightsURIError',
    'convert_command',
    'default_checkpoint',
    'is_weights_uri',
    'register_schemes',
    'resolve_uri',
    'split_uri',
]

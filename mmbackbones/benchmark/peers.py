"""The peers table and the candidates: what the benchmark times.

:data:`COMPARISONS` maps each architecture of ours that has peers to the implementations
of the same architecture elsewhere (timm and torchvision classifiers, mmdet's and mmseg's
own backbones); :func:`candidates_for` turns a preset into :class:`Candidate` s (ours,
and each peer with a counterpart of ours computing the same thing), and
:func:`config_candidate` a whole detector / segmentor of a config. Our families come
from the registry (:func:`mmbackbones.models.backbone_families`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from mmbackbones.models import ImageClassifier, backbone_families, family_class

from .errors import BenchmarkError

PEER_SOURCES = ('timm', 'torchvision', 'mmdet', 'mmseg')

# --------------------------------------------------------------------------------------
# The peers table: architecture -> implementations of the same architecture elsewhere
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """One peer implementation of an architecture.

    Attributes:
        source: ``'timm'``, ``'torchvision'``, ``'mmdet'`` or ``'mmseg'``.
        name: timm model name, torchvision builder name, or mmdet/mmseg backbone class.
        kwargs: Extra constructor arguments (random weights are always used).
        ours: Our backbone arguments that build the *same* computation, for a
            backbone-only peer (mmdet/mmseg): taps and output stride. ``None`` for a
            classifier peer (timm/torchvision), which is compared with our classifier.
        form: Table label of the form compared (``'classifier'``, ``'backbone'``, ...).
    """

    source: str
    name: str
    kwargs: dict = field(default_factory=dict)
    ours: dict | None = None
    form: str = 'classifier'

    @property
    def impl(self) -> str:
        return f'{self.source} {self.name}'


@dataclass(frozen=True)
class Comparison:
    """An architecture of ours and its peers.

    Attributes:
        label: Table name, e.g. ``'MobileNetV3-L'``.
        family: Our backbone class.
        arch: Our preset name.
        peers: Peer implementations.
        ours: Extra arguments of our model, matching the peers' defaults (e.g. the
            EfficientNet drop-path rate, which only matters in training mode).
    """

    label: str
    family: str
    arch: str
    peers: tuple[Peer, ...]
    ours: dict = field(default_factory=dict)


# mmdet/mmseg backbones in training mode: nothing frozen, BN in training mode (mmdet's
# ResNet family defaults to norm_eval=True, which would skip the BN backward)
_MM_TRAIN = dict(frozen_stages=-1, norm_eval=False)
_EFFNET_DROP_PATH = 0.2  # the paper's / timm's / torchvision's training rate, for all


def _mmseg_mobilenet_v3(arch: str, head: int) -> Peer:
    """mmseg's MobileNetV3 (``head``: the index of its head conv): it always dilates
    itself to output stride 8 and has no classifier, so it is compared with our backbone
    at ``output_stride=8``, head conv included."""
    return Peer(
        'mmseg',
        'MobileNetV3',
        dict(arch=arch, out_indices=(head,), **_MM_TRAIN),
        ours=dict(out_indices=(-1,), output_stride=8),
        form='backbone (OS 8)',
    )


_COMPARISONS = (
    Comparison('ReXNet-1.0', 'ReXNet', '1.0', (Peer('timm', 'rexnet_100'),)),
    Comparison(
        'MobileNetV3-L',
        'MobileNetV3',
        'large',
        (
            Peer('torchvision', 'mobilenet_v3_large'),
            Peer('timm', 'mobilenetv3_large_100'),
            _mmseg_mobilenet_v3('large', head=16),
        ),
    ),
    Comparison(
        'MobileNetV3-S',
        'MobileNetV3',
        'small',
        (
            Peer('torchvision', 'mobilenet_v3_small'),
            Peer('timm', 'mobilenetv3_small_100'),
            _mmseg_mobilenet_v3('small', head=12),
        ),
    ),
    Comparison(
        'EfficientNet-B0',
        'EfficientNet',
        'b0',
        (
            Peer('torchvision', 'efficientnet_b0', dict(stochastic_depth_prob=_EFFNET_DROP_PATH)),
            Peer('timm', 'efficientnet_b0', dict(drop_path_rate=_EFFNET_DROP_PATH)),
            # out_indices=(6,): every layer up to the 1280-channel head conv
            Peer(
                'mmdet',
                'EfficientNet',
                dict(arch='b0', out_indices=(6,), drop_path_rate=_EFFNET_DROP_PATH),
                ours=dict(out_indices=(-1,)),
                form='backbone',
            ),
        ),
        ours=dict(drop_path_rate=_EFFNET_DROP_PATH),
    ),
    Comparison(
        'RegNetX-3.2GF',
        'RegNet',
        'regnetx_3.2gf',
        (
            Peer('torchvision', 'regnet_x_3_2gf'),
            Peer('timm', 'regnetx_032'),
            Peer(
                'mmdet',
                'RegNet',
                dict(arch='regnetx_3.2gf', **_MM_TRAIN),
                ours=dict(),
                form='backbone',
            ),
        ),
    ),
    Comparison(
        'ResNeXt-50 32x4d',
        'ResNeXt',
        '50_32x4d',
        (
            Peer('torchvision', 'resnext50_32x4d'),
            Peer('timm', 'resnext50_32x4d'),
            *(
                Peer(
                    source,
                    'ResNeXt',
                    dict(depth=50, groups=32, base_width=4, **_MM_TRAIN),
                    ours=dict(),
                    form='backbone',
                )
                for source in ('mmdet', 'mmseg')
            ),
        ),
    ),
)
#: (family, preset) -> its comparison
COMPARISONS: dict[tuple[str, str], Comparison] = {(c.family, c.arch): c for c in _COMPARISONS}


def all_presets() -> list[tuple[str, str]]:
    """Every ``(family, preset)`` of ours in the registry's family order, for the families
    benchmarked against peers (those of :data:`COMPARISONS`: the ImageNet families;
    AnyNet's presets are CIFAR networks).

    Example:
        >>> ('EfficientNet', 'b7') in all_presets()
        True
        >>> sorted({f for f, _ in all_presets()})
        ['EfficientNet', 'MobileNetV3', 'ReXNet', 'RegNet', 'ResNeXt']
    """
    compared = {c.family for c in _COMPARISONS}
    families = [(f, cls) for f, cls in backbone_families().items() if f in compared]
    return [(f, a) for f, cls in families for a in cls.arch_settings]


def arch_label(family: str, arch: str) -> str:
    """The table name of one of our presets (the comparison's label when it has one)."""
    if (family, arch) in COMPARISONS:
        return COMPARISONS[family, arch].label
    return f'{family} {arch}'


# --------------------------------------------------------------------------------------
# Candidates: what gets timed
# --------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One model to time.

    Attributes:
        arch: Architecture label (rows of one architecture are compared).
        impl: ``'mmbackbones'`` for ours, else ``'<source> <name>'``.
        form: What is run: ``'classifier'``, ``'backbone'``, ``'detector'``, ... Ratios
            are only taken between candidates of the same arch and form.
        build: Returns the model (CPU, random weights).
        family: Our family (for plots), empty for peers.
        kind: How a step is run: ``'tensor'`` (``model(x)``) or ``'mmdet'`` /
            ``'mmseg'`` (a whole detector/segmentor from a config).
        engine: ``''``: the model runs in PyTorch; else the runtime and precision it is
            exported to and run in, e.g. ``'onnxruntime int8'`` (:mod:`.runtimes`).
    """

    arch: str
    impl: str
    form: str
    build: Callable[[], nn.Module]
    family: str = ''
    kind: str = 'tensor'
    engine: str = ''

    @property
    def ours(self) -> bool:
        return self.impl == 'mmbackbones'


def build_ours(family: str, arch: str, form: str = 'classifier', **kwargs: Any) -> nn.Module:
    """Our model: the paper's classifier or the backbone alone (``**kwargs`` go to the
    backbone).

    Example:
        >>> m = build_ours('ReXNet', '1.0', 'backbone', out_indices=(4,))
        >>> m.out_channels
        [185]
    """
    cls = family_class(family)
    if form == 'classifier':
        return ImageClassifier(dict(type=f'mmbackbones.{cls.__name__}', arch=arch, **kwargs))
    return cls(arch=arch, **kwargs)


def build_peer(peer: Peer) -> nn.Module:
    """A peer model with random weights (no download).

    Raises:
        BenchmarkError: unknown source, or a name the source does not have.
        ImportError: the peer's package is not installed.
    """
    if peer.source == 'timm':
        import timm

        if peer.name not in timm.list_models():
            raise BenchmarkError(f'timm has no model {peer.name!r}')
        return timm.create_model(peer.name, pretrained=False, **peer.kwargs)
    if peer.source == 'torchvision':
        import torchvision.models as tvm

        if not callable(getattr(tvm, peer.name, None)):
            raise BenchmarkError(f'torchvision.models has no builder {peer.name!r}')
        return getattr(tvm, peer.name)(weights=None, **peer.kwargs)
    if peer.source in ('mmdet', 'mmseg'):
        import importlib

        module = importlib.import_module(f'{peer.source}.models.backbones')
        cls = getattr(module, peer.name, None)
        if cls is None:
            raise BenchmarkError(f'{peer.source}.models.backbones has no {peer.name!r}')
        return cls(**peer.kwargs)
    raise BenchmarkError(f'unknown peer source {peer.source!r}; valid are {list(PEER_SOURCES)}')


def _select_peers(comp: Comparison, peers: Sequence[str] | None) -> list[Peer]:
    """The comparison's peers filtered by ``peers`` (sources or ``'source name'``)."""
    if peers is None:
        return list(comp.peers)
    return [p for p in comp.peers if p.source in peers or p.impl in peers]


def validate_peers(peers: Sequence[str] | None) -> None:
    """``BenchmarkError`` naming the valid choices if a peer filter matches no known peer.

    Example:
        >>> validate_peers(['timm', 'torchvision mobilenet_v3_small'])
        >>> validate_peers(['keras'])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmbackbones.benchmark.errors.BenchmarkError: unknown peer 'keras'; valid peers are ...
    """
    if peers is None:
        return
    known = {p.impl for c in _COMPARISONS for p in c.peers}
    for name in peers:
        if name not in PEER_SOURCES and name not in known:
            raise BenchmarkError(
                f'unknown peer {name!r}; valid peers are the sources {list(PEER_SOURCES)} '
                f'or one of {sorted(known)}'
            )


def candidates_for(
    family: str,
    arch: str,
    compare: bool = True,
    peers: Sequence[str] | None = None,
    require_peers: bool = False,
) -> list[Candidate]:
    """Our model (and, with ``compare``, its peers) for one preset.

    Each backbone-only peer (mmdet/mmseg) gets a backbone-only counterpart of ours built
    to compute the same thing (same taps, same output stride).

    Args:
        family (str): Our backbone class, e.g. ``'MobileNetV3'``.
        arch (str): Its preset name, e.g. ``'large'``.
        compare (bool): Add the peers of :data:`COMPARISONS`. Default: True.
        peers (Sequence[str] | None): Only these sources / implementations.
        require_peers (bool): ``BenchmarkError`` if ``compare`` finds no peer.

    Raises:
        ValueError: ``family`` is not a registered family (the message lists them).
        BenchmarkError: an unknown preset or peer, or no peer where one is required.

    Example:
        >>> [c.impl for c in candidates_for('RegNet', 'regnetx_3.2gf', peers=['mmdet'])]
        ['mmbackbones', 'mmdet RegNet']
    """
    cls = family_class(family)
    if arch not in cls.arch_settings:
        raise BenchmarkError(
            f'{family}: unknown arch {arch!r}; valid presets are {list(cls.arch_settings)}'
        )
    validate_peers(peers)
    comp = COMPARISONS.get((family, arch))
    label = arch_label(family, arch)
    extra = comp.ours if comp else {}
    selected = _select_peers(comp, peers) if (compare and comp) else []
    if compare and require_peers and not selected:
        pairs = [f'{c.family} {c.arch}' for c in _COMPARISONS]
        raise BenchmarkError(
            f'no peers for {family} {arch!r}'
            + (f' among {list(peers)}' if peers else '')
            + f'; architectures with peers: {pairs}'
        )
    out: list[Candidate] = []
    forms = {p.form: p.ours for p in selected}
    if not selected or 'classifier' in forms:
        out.append(
            Candidate(
                label,
                'mmbackbones',
                'classifier',
                lambda: build_ours(family, arch, 'classifier', **extra),
                family,
            )
        )
    for form, kw in forms.items():
        if form == 'classifier':
            continue
        out.append(
            Candidate(
                label,
                'mmbackbones',
                form,
                lambda kw=kw: build_ours(family, arch, 'backbone', **extra, **kw),
                family,
            )
        )
    for p in selected:
        out.append(Candidate(label, p.impl, p.form, lambda p=p: build_peer(p)))
    return out


def config_model(cfg: Any) -> nn.Module:
    """The detector / segmentor of a loaded config with random weights, built by
    :func:`mmbackbones.apis.init_model` (the backbone's ``Pretrained`` init dropped,
    SyncBN run as BN, the config's ``train_cfg`` kept; returned in eval mode,
    :func:`make_step` sets the mode)."""
    from mmbackbones.apis import init_model

    return init_model(cfg)


def config_candidate(path: str) -> Candidate:
    """A whole detector (``kind='mmdet'``) or segmentor (``'mmseg'``) from a config.

    Raises:
        ValueError: the file does not exist or its ``default_scope`` is neither mmdet nor
            mmseg (:func:`mmbackbones.apis.load_config`).

    Example:
        >>> c = config_candidate('configs/mobilenetv3-small_ssdlite.py')  # doctest: +SKIP
        >>> c.form, c.kind  # doctest: +SKIP
        ('detector', 'mmdet')
    """
    from mmbackbones.apis import host_of, load_config

    cfg = load_config(path)
    name = os.path.splitext(os.path.basename(path))[0]
    kind = host_of(cfg)
    form = 'detector' if kind == 'mmdet' else 'segmentor'
    return Candidate(name, 'mmbackbones', form, lambda: config_model(cfg), kind=kind)

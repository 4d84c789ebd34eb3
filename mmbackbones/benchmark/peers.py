"""Latency benchmark: our backbones against peer implementations, side by side.

What is measured (``tools/benchmark.py`` is the command line):

* **Candidates.** Our presets, in the paper's classifier form
  (:class:`~mmbackbones.models.ImageClassifier`) or backbone-only, the peers that implement
  the same architecture (:data:`COMPARISONS`: timm and torchvision classifiers, mmdet's and
  mmseg's own backbones), and whole detectors / segmentors built from our configs.
  Peers are built with random weights, nothing is downloaded.
* **Modes.** ``'train'``: ``model.train()``, forward + backward (the loss is the sum of the
  outputs' means), unfused. ``'infer'``: ``model.eval()`` under ``no_grad``. ``'deploy'``:
  like ``'infer'``, but *our* models are first folded by ``mmbackbones.deploy.fuse``;
  peers stay unfused (the question it answers: ours deployed vs the fastest peer as is).
  ``compile='ours'`` (infer/deploy): ours also go through ``torch.compile`` with inductor
  freezing (:func:`mmbackbones.deploy.compile_for_inference`); ``compile='all'``: the
  peers too (``torch.compile`` with freezing, no fusion of ours applied to them), which is
  the like-for-like comparison of compiled models. Compilation happens in the first
  warm-up round and is not timed; compiled candidates get no peak-memory figure.
* **Fairness on a noisy machine.** All candidates of one session live in one process;
  the candidates compared with each other (same architecture and form) are timed
  *interleaved*: every round runs each of them once, in a fresh random order, so a burst
  of machine noise hits all of them alike and none always follows the same neighbour. A
  ratio "ours / peer" is the median over rounds of the per-round ratios, not the ratio
  of two medians.
* **Statistics.** Median latency, the inter-quartile range and the minimum over the rounds
  (after warm-up), throughput ``batch / median``, and the peak memory of one step: on CUDA
  ``torch.cuda.max_memory_allocated`` above the level before the step; on CPU the peak of
  live tensor storage that the step allocates (activations, tensors saved for backward,
  gradients, temporaries; weights and input excluded), tracked per operator with a
  ``TorchDispatchMode`` in a separate, untimed step.

Example:
    >>> cands = candidates_for('MobileNetV3', 'small', peers=['torchvision'])
    >>> [(c.impl, c.form) for c in cands]
    [('mmbackbones', 'classifier'), ('torchvision mobilenet_v3_small', 'classifier')]
"""

from __future__ import annotations

import csv
import datetime
import gc
import math
import os
import platform
import random
import statistics
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

MODES = ('train', 'infer', 'deploy')
#: ``--compile``: which candidates of an infer/deploy session go through ``torch.compile``
COMPILE_CHOICES = ('none', 'ours', 'all')


class BenchmarkError(ValueError):
    """A bad request (unknown backbone, arch, peer, mode, ...), said in one line."""


PEER_SOURCES = ('timm', 'torchvision', 'mmdet', 'mmseg')
FAMILIES = ('ReXNet', 'MobileNetV3', 'EfficientNet', 'RegNet', 'ResNeXt')

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

_COMPARISONS = (
    Comparison('ReXNet-1.0', 'ReXNet', '1.0', (Peer('timm', 'rexnet_100'),)),
    Comparison(
        'MobileNetV3-L',
        'MobileNetV3',
        'large',
        (
            Peer('torchvision', 'mobilenet_v3_large'),
            Peer('timm', 'mobilenetv3_large_100'),
            # mmseg's MobileNetV3 always dilates itself to output stride 8 and has no
            # classifier: compared with our backbone at output_stride=8, head conv included
            Peer(
                'mmseg',
                'MobileNetV3',
                dict(arch='large', out_indices=(16,), frozen_stages=-1, norm_eval=False),
                ours=dict(out_indices=(-1,), output_stride=8),
                form='backbone (OS 8)',
            ),
        ),
    ),
    Comparison(
        'MobileNetV3-S',
        'MobileNetV3',
        'small',
        (
            Peer('torchvision', 'mobilenet_v3_small'),
            Peer('timm', 'mobilenetv3_small_100'),
            Peer(
                'mmseg',
                'MobileNetV3',
                dict(arch='small', out_indices=(12,), frozen_stages=-1, norm_eval=False),
                ours=dict(out_indices=(-1,), output_stride=8),
                form='backbone (OS 8)',
            ),
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
            Peer(
                'mmdet',
                'ResNeXt',
                dict(depth=50, groups=32, base_width=4, **_MM_TRAIN),
                ours=dict(),
                form='backbone',
            ),
            Peer(
                'mmseg',
                'ResNeXt',
                dict(depth=50, groups=32, base_width=4, **_MM_TRAIN),
                ours=dict(),
                form='backbone',
            ),
        ),
    ),
)
#: (family, preset) -> its comparison
COMPARISONS: dict[tuple[str, str], Comparison] = {(c.family, c.arch): c for c in _COMPARISONS}


def family_class(family: str) -> type[nn.Module]:
    """Our backbone class by name; ``BenchmarkError`` listing the valid names.

    Example:
        >>> family_class('ReXNet').__name__
        'ReXNet'
    """
    import mmbackbones.models.backbones as backbones

    if family not in FAMILIES:
        raise BenchmarkError(f'unknown backbone {family!r}; valid backbones are {list(FAMILIES)}')
    return getattr(backbones, family)


def all_presets() -> list[tuple[str, str]]:
    """Every ``(family, preset)`` of ours, in family order.

    Example:
        >>> ('EfficientNet', 'b7') in all_presets()
        True
    """
    return [(f, a) for f in FAMILIES for a in family_class(f).arch_settings]


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
    """

    arch: str
    impl: str
    form: str
    build: Callable[[], nn.Module]
    family: str = ''
    kind: str = 'tensor'

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
        from mmbackbones.models import ImageClassifier

        return ImageClassifier(dict(type=f'mmbackbones.{family}', arch=arch, **kwargs))
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
        >>> validate_peers(['keras'])
        Traceback (most recent call last):
        ...
        mmbackbones.benchmark.BenchmarkError: unknown peer 'keras'; valid peers are ...
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


def load_config(path: str) -> Any:
    """``mmengine.Config`` of an mmdet/mmseg config; ``BenchmarkError`` if unusable."""
    from mmengine.config import Config

    if not os.path.isfile(path):
        raise BenchmarkError(f'config not found: {path!r}')
    cfg = Config.fromfile(path)
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in ('mmdet', 'mmseg'):
        raise BenchmarkError(f'{path}: default_scope must be mmdet or mmseg, got {scope!r}')
    return cfg


def build_config_model(cfg: Any) -> nn.Module:
    """A detector / segmentor from a loaded config, with random weights.

    The backbone's ``Pretrained`` init is dropped (no weights here) and SyncBN runs as BN,
    as mmengine's Runner does on one device.
    """
    import copy

    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    import mmbackbones.models  # noqa: F401

    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings

        import_modules_from_strings(**cfg.custom_imports)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return revert_sync_batchnorm(MODELS.build(model_cfg))


def config_candidate(path: str) -> Candidate:
    """A whole detector (``kind='mmdet'``) or segmentor (``'mmseg'``) from a config.

    Example:
        >>> c = config_candidate('configs/mobilenetv3-small_ssdlite.py')  # doctest: +SKIP
        >>> c.form, c.kind  # doctest: +SKIP
        ('detector', 'mmdet')
    """
    cfg = load_config(path)
    name = os.path.splitext(os.path.basename(path))[0]
    kind = cfg.get('default_scope', 'mmdet')
    form = 'detector' if kind == 'mmdet' else 'segmentor'
    return Candidate(name, 'mmbackbones', form, lambda: build_config_model(cfg), kind=kind)


# --------------------------------------------------------------------------------------
# Steps: one timed iteration of a candidate
# --------------------------------------------------------------------------------------


def _reduce(out: Any) -> torch.Tensor:
    """Sum of the means of every tensor in a (nested) model output: a scalar "loss"."""
    if isinstance(out, torch.Tensor):
        return out.float().mean()
    if isinstance(out, dict):
        out = list(out.values())
    return sum(_reduce(o) for o in out)


def deploy_fuse(model: nn.Module, prepack: bool = True) -> nn.Module:
    """Our deploy-time folding, ``mmbackbones.deploy.fuse``; a clear error if missing.

    ``prepack=False`` for a model about to be compiled: inductor prepacks in its graph.
    """
    try:
        from mmbackbones.deploy import fuse
    except ImportError as e:
        raise BenchmarkError(
            f'--mode deploy needs mmbackbones.deploy.fuse, which is not available ({e})'
        ) from e
    return fuse(model.eval(), prepack=prepack)


def compile_model(model: nn.Module, fused: bool, kind: str = 'tensor') -> nn.Module:
    """``torch.compile`` with inductor freezing (a clear error where it cannot run).

    ``fused``: ``model`` is already our deploy form, so it is not fused again. Only
    tensor models (``kind='tensor'``) are compiled: a whole detector's predict step has
    data-dependent post-processing.
    """
    if kind != 'tensor':
        raise BenchmarkError('compile applies to backbones and classifiers, not to a config')
    from mmbackbones.deploy import CompileUnavailableError, compile_for_inference

    try:
        return compile_for_inference(model, fuse_first=False)
    except CompileUnavailableError as e:
        raise BenchmarkError(str(e)) from e


def make_step(
    model: nn.Module,
    kind: str,
    mode: str,
    batch: int,
    shape: tuple[int, int],
    device: str = 'cpu',
) -> Callable[[], None]:
    """One iteration of ``model`` in ``mode`` on fixed random inputs (created here, once).

    ``kind='tensor'``: ``model(x)``; in training the loss is the sum of the outputs' means,
    then ``backward`` and ``zero_grad(set_to_none=True)``. ``kind='mmdet'``/``'mmseg'``: a
    detector / segmentor on random images with random boxes / label maps (preprocessed
    once, outside the step): ``mode='loss'`` + ``parse_losses`` + backward in training,
    ``mode='predict'`` (post-processing included) otherwise.

    Example:
        >>> step = make_step(nn.Conv2d(3, 4, 3), 'tensor', 'train', 2, (8, 8))
        >>> step()
    """
    if mode not in MODES:
        raise BenchmarkError(f'unknown mode {mode!r}; valid modes are {list(MODES)}')
    train = mode == 'train'
    model.train(train)
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    if kind == 'tensor':
        x = torch.randn(batch, 3, h, w, generator=gen).to(device)

        def forward() -> Any:
            return model(x)

    else:
        data = _host_inputs(model, kind, batch, shape, train, gen)

        def forward() -> Any:
            return model(**data, mode='loss' if train else 'predict')

    if train:

        def step() -> None:
            out = forward()
            loss = model.parse_losses(out)[0] if kind != 'tensor' else _reduce(out)
            loss.backward()
            model.zero_grad(set_to_none=True)

    else:

        def step() -> None:
            with torch.no_grad():
                forward()

    return step


def _host_inputs(
    model: nn.Module, kind: str, batch: int, shape: tuple[int, int], train: bool, gen
) -> dict:
    """Preprocessed random inputs for an mmdet detector or mmseg segmentor."""
    h, w = shape
    if kind == 'mmdet':
        import numpy as np
        from mmdet.testing import demo_mm_inputs

        np.random.seed(0)  # labels are drawn in [1, num_classes): all 1, valid everywhere
        with_mask = getattr(model, 'roi_head', None) is not None and getattr(
            model.roi_head, 'with_mask', False
        )
        packed = demo_mm_inputs(
            batch, [(3, h, w)] * batch, num_items=[3] * batch, num_classes=2, with_mask=with_mask
        )
    elif kind == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        num_classes = _seg_num_classes(model)
        packed = dict(
            inputs=[
                torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
                for _ in range(batch)
            ],
            data_samples=[
                SegDataSample(
                    gt_sem_seg=PixelData(
                        data=torch.randint(0, num_classes, (1, h, w), generator=gen)
                    ),
                    metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)),
                )
                for _ in range(batch)
            ],
        )
        pre = model.data_preprocessor
        if getattr(pre, 'size', None):
            pre.size = (h, w)  # else it pads every batch to the recipe's crop
    else:
        raise BenchmarkError(f'unknown step kind {kind!r}')
    return model.data_preprocessor(packed, train)


def _seg_num_classes(model: nn.Module) -> int:
    head = model.decode_head
    return head[0].num_classes if isinstance(head, nn.ModuleList) else head.num_classes


# --------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


CLOCKS = ('wall', 'cpu')


def time_round_robin(
    steps: dict[str, Callable[[], None]],
    repeats: int,
    warmup: int,
    device: str = 'cpu',
    clock: str = 'wall',
) -> dict[str, list[float]]:
    """Time every step once per round, ``repeats`` rounds, after ``warmup`` rounds.

    Every round runs the candidates in a fresh random order (seeded, so reproducible):
    a fixed or merely rotated order would always run a candidate right after the same
    neighbour, and a heavy neighbour (a large allocation freed just before, cold caches)
    would bias it. The garbage collector is off while timing.

    ``clock='wall'`` is latency (``time.perf_counter``). ``clock='cpu'`` is the CPU time of
    the process (``time.process_time``, all threads summed): with one thread it is the
    latency the step would have on an idle core, unaffected by other processes being
    scheduled on a shared machine; with several threads it is their total work, not a
    latency.

    Returns:
        Seconds per step, one list per name, in round order.

    Example:
        >>> t = time_round_robin({'a': lambda: None, 'b': lambda: None}, 3, 1)
        >>> sorted(t), len(t['a'])
        (['a', 'b'], 3)
    """
    if repeats < 1 or warmup < 0:
        raise BenchmarkError(f'need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}')
    if clock not in CLOCKS:
        raise BenchmarkError(f'unknown clock {clock!r}; valid clocks are {list(CLOCKS)}')
    if clock == 'cpu' and device.startswith('cuda'):
        raise BenchmarkError("clock 'cpu' measures CPU time; use 'wall' on CUDA")
    now = time.perf_counter if clock == 'wall' else time.process_time
    names = list(steps)
    for _ in range(warmup):
        for n in names:
            steps[n]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        rng = random.Random(0)
        for _ in range(repeats):
            for n in rng.sample(names, len(names)):
                _sync(device)
                t0 = now()
                steps[n]()
                _sync(device)
                times[n].append(now() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _storage_key(t: torch.Tensor) -> int:
    """The storage's address (0 for empty or opaque, e.g. mkldnn, tensors)."""
    try:
        st = t.untyped_storage()
        return st.data_ptr() if st.nbytes() else 0
    except (RuntimeError, NotImplementedError):
        return 0


class _LiveTensorBytes:
    """Peak bytes of tensor storage allocated while active (CPU memory accounting).

    Every operator output is seen through a ``TorchDispatchMode``; its storage counts as
    live until the last tensor seen on it is freed (``weakref.finalize`` on the tensor,
    which PyTorch keeps alive as long as autograd or a view still holds it).
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                inputs = {
                    _storage_key(t)
                    for t in tree_leaves((args, kwargs))
                    if isinstance(t, torch.Tensor)
                }
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        tracker._seen(t, inputs)
                return out

        self.mode = _Mode()
        self.live = self.peak = 0
        self._refs: dict[int, list[int]] = {}

    def _seen(self, t: torch.Tensor, inputs: set[int]) -> None:
        key = _storage_key(t)
        if not key:
            return
        ref = self._refs.get(key)
        if ref is None and key in inputs:
            return  # in place on / a view of a tensor that existed before the step
        if ref is None:
            nbytes = t.untyped_storage().nbytes()
            self._refs[key] = [nbytes, 1]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            ref[1] += 1
        weakref.finalize(t, self._free, key)

    def _free(self, key: int) -> None:
        ref = self._refs.get(key)
        if ref is None:
            return
        ref[1] -= 1
        if ref[1] == 0:
            del self._refs[key]
            self.live -= ref[0]

    def __enter__(self) -> _LiveTensorBytes:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)


def peak_memory(step: Callable[[], None], device: str = 'cpu') -> int:
    """Peak bytes one ``step`` allocates above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: live tensor storage tracked per
    operator (see :class:`_LiveTensorBytes`; allocator caches and library workspaces
    outside tensors are not seen).

    Example:
        >>> x = torch.ones(1024, requires_grad=True)
        >>> peak_memory(lambda: (x * 2).sum().backward()) >= 1024 * 4  # x * 2, then its grad
        True
    """
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    with _LiveTensorBytes() as tracker:
        step()
    return tracker.peak


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (``numpy.quantile``'s default)."""
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@dataclass
class Row:
    """One candidate's measurement in one session (mode, batch, threads)."""

    arch: str
    impl: str
    form: str
    mode: str
    batch: int
    threads: int
    height: int
    width: int
    times: list[float]
    params_m: float | None = None
    gflops: float | None = None
    peak_mem_mb: float | None = None
    family: str = ''
    ratio: float | None = None  # peer rows: ours / this peer (median of round ratios)
    ratio_fastest: float | None = None  # our rows: ours / the fastest peer, same form
    fastest_peer: str = ''
    note: str = ''

    @property
    def ours(self) -> bool:
        return self.impl == 'mmbackbones'

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1e3

    @property
    def p25_ms(self) -> float:
        return _quantile(self.times, 0.25) * 1e3

    @property
    def p75_ms(self) -> float:
        return _quantile(self.times, 0.75) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.times) * 1e3

    @property
    def throughput(self) -> float:
        return self.batch / (self.median_ms / 1e3)


def round_ratio(ours: Sequence[float], peer: Sequence[float]) -> float:
    """Median over rounds of ``ours[r] / peer[r]``.

    Example:
        >>> round_ratio([2.0, 9.0, 2.2], [1.0, 3.0, 2.0])
        2.0
    """
    return statistics.median(a / b for a, b in zip(ours, peer))


def attach_ratios(rows: list[Row]) -> None:
    """Fill ``ratio`` (peer rows) and ``ratio_fastest`` / ``fastest_peer`` (our rows):
    ours against peers of the same arch and form, measured in the same session."""
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.arch, r.form, r.mode, r.batch, r.threads), []).append(r)
    for group in groups.values():
        ours = [r for r in group if r.ours]
        peers = [r for r in group if not r.ours]
        if len(ours) != 1 or not peers:
            continue
        o = ours[0]
        for p in peers:
            p.ratio = round_ratio(o.times, p.times)
        fastest = min(peers, key=lambda p: p.median_ms)
        o.ratio_fastest, o.fastest_peer = fastest.ratio, fastest.impl


# --------------------------------------------------------------------------------------
# Running a session
# --------------------------------------------------------------------------------------


def run_session(
    candidates: Sequence[Candidate],
    mode: str,
    batch: int,
    shape: tuple[int, int],
    threads: int,
    repeats: int,
    warmup: int,
    device: str = 'cpu',
    memory: bool = True,
    flops: bool = True,
    clock: str = 'wall',
    log: Callable[[str], None] | None = None,
    compiled: str = 'none',
) -> list[Row]:
    """Build, prepare and time ``candidates`` round-robin in one session.

    Args:
        candidates (Sequence[Candidate]): What to time (see :func:`candidates_for`).
        mode (str): ``'train'``, ``'infer'`` or ``'deploy'`` (see module docstring).
        batch (int): Batch size.
        shape (tuple[int, int]): Input height and width.
        threads (int): ``torch.set_num_threads`` for the session.
        repeats (int): Timed rounds.
        warmup (int): Untimed rounds first.
        device (str): ``'cpu'`` or ``'cuda'`` / ``'cuda:N'``. Default: 'cpu'.
        memory (bool): Measure the peak memory of one step. Default: True.
        flops (bool): Count params and FLOPs (tensor models). Default: True.
        clock (str): ``'wall'`` (latency) or ``'cpu'`` (process CPU time, see
            :func:`time_round_robin`). Default: 'wall'.
        log (callable | None): Progress messages.
        compiled (str): ``'none'`` (default), ``'ours'`` or ``'all'``: which candidates
            of an infer/deploy session go through ``torch.compile`` (see module
            docstring).

    Returns:
        One :class:`Row` per candidate, with ratios attached.
    """
    from mmbackbones.complexity import count_params, measure

    if mode not in MODES:
        raise BenchmarkError(f'unknown mode {mode!r}; valid modes are {list(MODES)}')
    if mode == 'train' and batch < 2:
        raise BenchmarkError(
            "mode train needs batch >= 2: BatchNorm in training mode (e.g. in ReXNet's SE "
            'on a 1x1 map) needs more than one value per channel'
        )
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise BenchmarkError(f'device {device!r} requested but CUDA is not available')
    if compiled not in COMPILE_CHOICES:
        raise BenchmarkError(
            f'unknown compile choice {compiled!r}; valid choices are {list(COMPILE_CHOICES)}'
        )
    if compiled != 'none' and mode == 'train':
        raise BenchmarkError(
            'compile applies to infer/deploy (inductor freezing needs frozen weights); '
            'mode train is always eager'
        )
    log = log or (lambda _msg: None)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    steps: dict[str, Callable[[], None]] = {}
    rows: dict[str, Row] = {}
    for c in candidates:
        log(f'build {c.arch} | {c.impl} | {c.form}')
        model = c.build()
        params = count_params(model) / 1e6
        gflops = None
        if flops and c.kind == 'tensor':
            gflops = measure(model, shape).flops / 1e9
        note = ''
        model = model.to(device)
        compile_it = compiled == 'all' or (compiled == 'ours' and c.ours)
        if mode == 'deploy' and c.ours:
            model = deploy_fuse(model, prepack=not compile_it)
            note = 'fused'
        if compile_it:
            model = compile_model(model, fused=bool(note), kind=c.kind)
            note = f'{note}+compiled' if note else 'compiled'
        key = f'{c.arch}|{c.impl}|{c.form}'
        steps[key] = make_step(model, c.kind, mode, batch, shape, device)
        rows[key] = Row(
            c.arch,
            c.impl,
            c.form,
            mode,
            batch,
            threads,
            shape[0],
            shape[1],
            [],
            params_m=params,
            gflops=gflops,
            family=c.family,
            note=note,
        )
    # Ratios are taken within an (arch, form) group only, so each group is timed on its
    # own: its candidates have similar sizes, and none runs after a much heavier model.
    groups: dict[tuple[str, str], dict[str, Callable[[], None]]] = {}
    for key, row in rows.items():
        groups.setdefault((row.arch, row.form), {})[key] = steps[key]
    times: dict[str, list[float]] = {}
    for (arch, form), group in groups.items():
        log(f'time {arch} ({form}): {len(group)} candidates, {warmup} warm-up + {repeats} rounds')
        times.update(time_round_robin(group, repeats, warmup, device, clock))
    for key, row in rows.items():
        row.times = times[key]
        if memory and 'compiled' not in row.note:
            row.peak_mem_mb = peak_memory(steps[key], device) / 2**20
    out = list(rows.values())
    attach_ratios(out)
    return out


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform``)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def machine_info(device: str = 'cpu') -> dict[str, str]:
    """What the numbers depend on: hardware, software versions, load."""
    import importlib.metadata as md

    info = {
        'machine': f'{cpu_model()}, {os.cpu_count()} logical CPUs',
        'torch': torch.__version__,
    }
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(device)
    versions = []
    for pkg in ('torchvision', 'timm', 'mmdet', 'mmsegmentation'):
        try:
            versions.append(f'{pkg} {md.version(pkg)}')
        except md.PackageNotFoundError:
            pass
    info['peers'] = ', '.join(versions)
    if hasattr(os, 'getloadavg'):
        info['load average'] = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    return info


def _fmt(value: float | None, digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def _session_key(r: Row) -> tuple:
    return (r.mode, r.batch, r.threads, r.height, r.width)


def to_markdown(rows: Sequence[Row], meta: dict[str, str]) -> str:
    """A markdown report: a header of ``meta`` and one table per session.

    Table columns: arch, implementation, form, params (M), GFLOPs (multiply-adds at the
    input size, batch 1), median / IQR / min latency (ms), throughput (img/s), peak
    memory (MB), and the ratio ours / peer (median of per-round ratios; on our row: ours /
    the fastest peer of the same form, named).
    """
    lines = ['# Latency benchmark', '']
    lines += [f'- **{k}**: {v}' for k, v in meta.items()]
    lines.append('')
    sessions: dict[tuple, list[Row]] = {}
    for r in rows:
        sessions.setdefault(_session_key(r), []).append(r)
    for (mode, batch, threads, h, w), group in sessions.items():
        lines += [
            f'## mode {mode}, batch {batch}, {threads} thread{"s" if threads > 1 else ""}, '
            f'input {h}x{w}, {len(group[0].times)} rounds',
            '',
            '| arch | implementation | form | params (M) | GFLOPs | median (ms) | IQR (ms) '
            '| min (ms) | img/s | peak mem (MB) | ours / peer |',
            '|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|',
        ]
        for r in group:
            if r.ours and r.ratio_fastest is not None:
                ratio = f'**{r.ratio_fastest:.2f}** vs fastest ({r.fastest_peer})'
            elif r.ratio is not None:
                ratio = f'{r.ratio:.2f}'
            else:
                ratio = ''
            impl = f'**{r.impl}**' if r.ours else r.impl
            if r.note:
                impl += f' ({r.note})'
            lines.append(
                f'| {r.arch} | {impl} | {r.form} | {_fmt(r.params_m)} | {_fmt(r.gflops, 3)} '
                f'| {r.median_ms:.1f} | {r.p75_ms - r.p25_ms:.1f} | {r.min_ms:.1f} '
                f'| {r.throughput:.1f} | {_fmt(r.peak_mem_mb, 1)} | {ratio} |'
            )
        lines.append('')
    return '\n'.join(lines)


CSV_COLUMNS = (
    'arch',
    'impl',
    'form',
    'mode',
    'batch',
    'threads',
    'height',
    'width',
    'rounds',
    'params_m',
    'gflops',
    'median_ms',
    'p25_ms',
    'p75_ms',
    'min_ms',
    'throughput_img_s',
    'peak_mem_mb',
    'ratio_ours_over_peer',
    'ratio_ours_over_fastest_peer',
    'fastest_peer',
    'note',
)


def write_csv(rows: Sequence[Row], path: str) -> None:
    """One line per row, columns :data:`CSV_COLUMNS`; empty cells where not applicable."""

    def num(v: float | None, digits: int = 4) -> str:
        return '' if v is None else f'{v:.{digits}f}'

    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(
                [
                    r.arch,
                    r.impl,
                    r.form,
                    r.mode,
                    r.batch,
                    r.threads,
                    r.height,
                    r.width,
                    len(r.times),
                    num(r.params_m),
                    num(r.gflops),
                    num(r.median_ms, 3),
                    num(r.p25_ms, 3),
                    num(r.p75_ms, 3),
                    num(r.min_ms, 3),
                    num(r.throughput, 3),
                    num(r.peak_mem_mb, 3),
                    num(r.ratio),
                    num(r.ratio_fastest),
                    r.fastest_peer,
                    r.note,
                ]
            )


def write_reports(rows: Sequence[Row], meta: dict[str, str], out_dir: str) -> list[str]:
    """Write ``benchmark.md`` and ``benchmark.csv`` into ``out_dir``; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, 'benchmark.md')
    csv_path = os.path.join(out_dir, 'benchmark.csv')
    with open(md_path, 'w') as f:
        f.write(to_markdown(rows, meta))
    write_csv(rows, csv_path)
    return [md_path, csv_path]


def _series(r: Row) -> str:
    """Plot series of one of our rows: the family, with RegNetX/Y and ReXNet-lite apart."""
    if r.family == 'RegNet':
        return 'RegNetY' if 'regnety' in r.arch else 'RegNetX'
    if r.family == 'ReXNet' and 'lite' in r.arch:
        return 'ReXNet-lite'
    return r.family


def _point_label(r: Row) -> str:
    """A short point label: the preset without the family (``'regnetx_800mf'`` -> 800mf)."""
    label = r.arch.split(' ', 1)[-1]
    return label.split('_', 1)[-1] if label.startswith('regnet') else label


def plot_latency_vs_flops(
    rows: Sequence[Row], path: str, title: str = '', clock: str = 'wall'
) -> str:
    """Median latency against GFLOPs: our rows as one line per family, peers as crosses.

    Uses the first session's rows only (one mode / batch / thread count per plot).
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.gflops]
    if not rows:
        raise BenchmarkError('nothing to plot: no row with a FLOPs count')
    first = _session_key(rows[0])
    rows = [r for r in rows if _session_key(r) == first]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    series: dict[str, list[Row]] = {}
    for r in rows:
        if r.ours and r.form == 'classifier':
            series.setdefault(_series(r), []).append(r)
    for name, group in series.items():
        group = sorted(group, key=lambda r: r.gflops)
        ax.plot([r.gflops for r in group], [r.median_ms for r in group], 'o-', ms=4, label=name)
        for r in group:
            ax.annotate(
                _point_label(r),
                (r.gflops, r.median_ms),
                fontsize=6,
                alpha=0.7,
                xytext=(3, 2),
                textcoords='offset points',
            )
    peers = [r for r in rows if not r.ours and r.form == 'classifier']
    if peers:
        ax.plot(
            [r.gflops for r in peers],
            [r.median_ms for r in peers],
            'kx',
            ms=5,
            label='peers (timm / torchvision)',
        )
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('GFLOPs (multiply-adds, classifier)')
    ax.set_ylabel('median latency (ms)' if clock == 'wall' else 'median CPU time (ms)')
    mode, batch, threads, h, w = first
    default = (
        f'mmbackbones presets: {mode}, batch {batch}, {threads} thread(s), {h}x{w}, '
        f'{"wall clock" if clock == "wall" else "process CPU time"}'
    )
    ax.set_title(title or default, fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_meta(
    device: str,
    shape: tuple[int, int],
    repeats: int,
    warmup: int,
    command: str = '',
    clock: str = 'wall',
    compiled: str = 'none',
) -> dict[str, str]:
    """The markdown header: machine, versions, settings and how to read the table."""
    meta = machine_info(device)
    meta['device'] = device
    meta['input'] = f'{shape[0]}x{shape[1]}'
    meta['rounds'] = f'{repeats} timed after {warmup} warm-up, round-robin'
    meta['clock'] = 'wall (latency)' if clock == 'wall' else 'cpu (process CPU time, not latency)'
    meta['date'] = datetime.date.today().isoformat()
    if compiled != 'none':
        meta['compile'] = (
            'torch.compile (inductor, freezing) for '
            + ('ours only; peers eager' if compiled == 'ours' else 'ours and the peers')
            + '; compilation in warm-up, not timed'
        )
    if command:
        meta['command'] = f'`{command}`'
    meta['reading'] = (
        'ours / peer < 1 means ours is faster; each ratio is the median of per-round ratios '
        '(candidates interleaved in one process); classifier rows compare whole ImageNet '
        'classifiers (timm / torchvision), backbone rows compare backbones alone (mmdet / '
        'mmseg); deploy = ours fused, peers as is'
    )
    return meta

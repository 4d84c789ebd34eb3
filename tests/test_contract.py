"""The backbone contract (models/backbones/base.py), checked on every family.

One parametrised suite for all families (ReXNet and ReXNet-lite, MobileNetV3 Large and
Small, EfficientNet, AnyNet, RegNet, ResNeXt): taps and ``feature_info``, ``out_indices``
and pruning, ``frozen_stages``, ``norm_eval``, ``with_cp``, ``output_stride``,
``feature_location`` and the validation of those arguments. What differs between the
families is written down per family (:data:`FAMILIES`) from the papers' tables: the taps,
the stage of every layer, the residual of every block and the expansion tap. The family
test modules keep what is only theirs (published complexity, reference parity, block
structure, arch validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.utils.checkpoint
from helpers import build, expected_hw, nparams
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.models import AnyNet, EfficientNet, MobileNetV3, RegNet, ResNeXt, ReXNet
from mmbackbones.registry import MODELS

CLASSES = (ReXNet, MobileNetV3, EfficientNet, RegNet, ResNeXt, AnyNet)


def _stages(depths: list[int], stem_layers: int = 1, head: bool = False) -> list[int]:
    """Stage of every layer: the stem layers (0), then ``depths[k-1]`` layers of stage k,
    then the head conv in the last stage."""
    stages = [0] * stem_layers + [k for k, d in enumerate(depths, 1) for _ in range(d)]
    return stages + [len(depths)] * head


@dataclass(frozen=True)
class Family:
    """A family's representative and what its paper says about it.

    Attributes:
        name, arch: What ``build`` gets.
        first_tap: ``feature_info[0]`` as the validation messages describe it.
        num_taps: ``len(feature_info)``.
        stages: The stage of every layer of the full model (stem to head), as
            ``frozen_stages`` counts them.
        shortcuts: Inverted-residual families: the residual of each block (``'full'``,
            ``'partial'``, ``'none'``) in order, at every output stride.
        expansion: ``(layer, channels)`` of the stride-16 tap with
            ``feature_location='expansion'``: the split expansion conv of the first
            stride-32 block.
    """

    id: str
    name: str
    arch: Any
    first_tap: str
    num_taps: int
    stages: list[int]
    shortcuts: list[str] | None = None
    expansion: tuple[str, int] | None = None

    def build(self, **kw: Any) -> nn.Module:
        return build(self.name, self.arch, **kw)

    def __str__(self) -> str:
        return self.id


# A small NDS-style CIFAR net (stride-1 stem, residual basic blocks: taps at /1, /2, /4)
# and a small ImageNet-stem net of vanilla blocks stand for AnyNet's presets (27 blocks at
# full resolution); RegNet and ResNeXt are the residual bottleneck.
ANYNET_CIFAR = dict(
    stem_type='cifar', block_type='res_basic', depths=[2, 2, 2], widths=[16, 32, 64]
)
ANYNET_IMAGENET = dict(
    stem_type='imagenet', block_type='vanilla', depths=[1, 1, 2, 1], widths=[16, 32, 64, 128]
)

N, P, F = 'none', 'partial', 'full'
# ReXNet (clovaai rexnetv1.py): 16 blocks in stages [1, 2, 2, 3, 3, 5], strides
# [1, 2, 2, 2, 1, 2]; partial residual where stride 1 and c_in <= c_out (block 0 maps the
# 32-channel stem to 16: none); the head conv in the last stage. Block 11 is the first
# stride-32 block: input 128, expansion 6 -> 768 (lite: 16 + 10 * 164 / 15 = 125.3 -> a
# multiple of 8, 128, likewise).
REXNET_STAGES = _stages([1, 2, 2, 3, 3, 5], head=True)
REXNET_SHORTCUTS = [N, N, P, N, P, N, P, P, P, P, P, N, P, P, P, P]
FAMILIES = [
    Family(
        'ReXNet-1.0', 'ReXNet', '1.0', '16ch@/2 (layers.b0)', 6, REXNET_STAGES,
        REXNET_SHORTCUTS, ('b11_expand', 768),
    ),
    Family(
        'ReXNet-lite-1.0', 'ReXNet', 'lite-1.0', '16ch@/2 (layers.b0)', 6, REXNET_STAGES,
        REXNET_SHORTCUTS, ('b11_expand', 768),
    ),
    # MobileNetV3 paper Tables 1 and 2: a stage starts at the first block and at every
    # strided block, the head conv belongs to the last; a residual where stride 1 and
    # c_in == c_out. C4 is the expansion of bottleneck 13 (Large, 672) / 9 (Small, 288).
    Family(
        'MobileNetV3-large', 'MobileNetV3', 'large', '16ch@/2 (layers.b0)', 6,
        # stem | b0 | b1-b2 (/4) | b3-b5 (/8) | b6-b11 (/16) | b12-b14 + head (/32)
        [0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5],
        [F, N, F, N, F, F, N, F, F, F, N, F, N, F, F], ('b12_expand', 672),
    ),
    Family(
        'MobileNetV3-small', 'MobileNetV3', 'small', '16ch@/2 (layers.stem)', 6,
        # stem | b0 (/4) | b1-b2 (/8) | b3-b7 (/16) | b8-b10 + head (/32)
        [0, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4],
        [N, N, F, N, F, F, N, F, N, F, F], ('b8_expand', 288),
    ),
    # EfficientNet-B0, paper Table 1: stages of [1, 2, 2, 3, 3, 4, 1] MBConv blocks, the
    # head conv in stage 7; identity shortcut where stride 1 and c_in == c_out; block 11
    # (first of stage 6, MBConv6 on 112 channels) expands to 672.
    Family(
        'EfficientNet-b0', 'EfficientNet', 'b0', '16ch@/2 (layers.b0)', 6,
        _stages([1, 2, 2, 3, 3, 4, 1], head=True),
        [N, N, F, N, F, N, F, F, N, F, F, N, F, F, F, N], ('b11_expand', 672),
    ),
    Family(
        'AnyNet-cifar', 'AnyNet', ANYNET_CIFAR, '16ch@/1 (layers.s1_b2)', 3, _stages([2, 2, 2]),
    ),
    Family(
        'AnyNet-imagenet', 'AnyNet', ANYNET_IMAGENET, '32ch@/2 (layers.stem)', 5,
        _stages([1, 1, 2, 1]),
    ),
    # pycls RegNetY-400MF: stage depths [1, 3, 6, 6]
    Family(
        'RegNet-regnety_400mf', 'RegNet', 'regnety_400mf', '32ch@/2 (layers.stem)', 5,
        _stages([1, 3, 6, 6]),
    ),
    # ResNeXt-50: [3, 4, 6, 3] bottlenecks; the stem (stage 0) includes the max-pool
    Family(
        'ResNeXt-50_32x4d', 'ResNeXt', '50_32x4d', '64ch@/2 (layers.stem)', 5,
        _stages([3, 4, 6, 3], stem_layers=2),
    ),
]  # fmt: skip
_BY_ID = {f.id: f for f in FAMILIES}


def _case(fam: str, id: str | None = None, **kw: Any):
    return pytest.param(_BY_ID[fam], kw, id=id or fam)


FAMILY_CASES = [_case(f.id) for f in FAMILIES]
EXPANSION_CASES = [
    _case(f.id, f'{f.id}-expansion', feature_location='expansion') for f in FAMILIES if f.expansion
]
# with output_stride: the expansion split, and MobileNetV3's reduced tail (whose first
# stride-32 block of Small maps 48 -> 48 channels: dilated, it must still have no residual)
OUTPUT_STRIDE_CASES = [
    *FAMILY_CASES,
    *EXPANSION_CASES,
    _case('MobileNetV3-small', 'MobileNetV3-small-reduced_tail', reduced_tail=True),
    _case(
        'MobileNetV3-large',
        'MobileNetV3-large-reduced_tail-expansion',
        reduced_tail=True,
        feature_location='expansion',
    ),
]

# (class name, preset, kwargs): every preset of every family
PRESETS = [
    pytest.param(cls.__name__, arch, {}, id=f'{cls.__name__}-{arch}')
    for cls in CLASSES
    for arch in cls.arch_settings
]
# options that change the taps (expansion split, reduced tail, width), per family
VARIANT_CASES = [
    _case(f, f + ''.join(f'-{k}={v}' for k, v in kw.items()), **kw)
    for f, kw in [
        ('ReXNet-1.0', dict(feature_location='expansion')),
        ('EfficientNet-b0', dict(feature_location='expansion')),
        ('MobileNetV3-large', dict(feature_location='expansion', reduced_tail=True)),
        ('MobileNetV3-small', dict(feature_location='expansion', widen_factor=0.75)),
        ('MobileNetV3-large', dict(widen_factor=0.5, width_rule='timm')),
        (
            'MobileNetV3-small',
            dict(reduced_tail=True, output_stride=16, feature_location='expansion'),
        ),
    ]
]
TAP_CASES = FAMILY_CASES + VARIANT_CASES
_REPRESENTATIVES = [(f.name, f.arch) for f in FAMILIES]
# the shape test: every preset, and the representatives / variants that are no preset
SHAPE_CASES = PRESETS + [
    pytest.param(fam.name, fam.arch, kw, id=c.id)
    for c in TAP_CASES
    for fam, kw in [c.values]
    if kw or not isinstance(fam.arch, str)
]


def _expected_stages(fam: Family, kw: dict) -> list[int]:
    """``fam.stages``, with the split expansion layer (in the stage of its block) where
    ``kw`` asks for it; block ``bN`` is layer N + 1 (after the stem)."""
    stages = list(fam.stages)
    if kw.get('feature_location') == 'expansion':
        pos = int(fam.expansion[0][1 : -len('_expand')]) + 1
        stages.insert(pos, stages[pos])
    return stages


def _shortcuts(model: nn.Module) -> list[str]:
    """The residual of each inverted-residual block, in order (not the split layers)."""
    return [
        b.shortcut
        for n, b in model.layers.named_children()
        if re.fullmatch(r'b\d+', n) and hasattr(b, 'shortcut')
    ]


def _layer_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.layers.named_children()]


# ------------------------------------------------------------ taps and out_indices
@pytest.mark.parametrize('name,arch,kw', SHAPE_CASES)
def test_every_tap_matches_feature_info(name: str, arch: Any, kw: dict) -> None:
    """Every tap's output has the channels and the reduction ``feature_info`` says, on an
    odd, non-square input ('same' padding rounds up, height and width apart)."""
    with torch.device('meta'):
        shallow = build(name, arch, out_indices=(0,), **kw)
    n = len(shallow.feature_info)
    model = build(name, arch, out_indices=tuple(range(n)), **kw).eval()
    assert shallow.feature_info == model.feature_info  # whatever is selected
    sizes = [(65, 97)] + [(224, 224)] * ((name, arch) in _REPRESENTATIVES and not kw)
    for h, w in sizes:
        with torch.no_grad():
            outs = model(torch.rand(1, 3, h, w))
        assert isinstance(outs, tuple) and len(outs) == n
        for out, info in zip(outs, model.feature_info):
            assert out.shape[1:] == (
                info['num_chs'],
                expected_hw(h, info['reduction']),
                expected_hw(w, info['reduction']),
            )


@pytest.mark.parametrize('fam,kw', TAP_CASES)
def test_single_and_negative_indices(fam: Family, kw: dict) -> None:
    """A model built for one tap (a negative index counts from the end) reports the same
    ``feature_info``, builds nothing after the tap (not the head conv either) and returns
    that tap alone; several taps come back in depth order."""
    with torch.device('meta'):
        full = fam.build(out_indices=(0,), **kw)
    n = len(full.feature_info)
    assert n == fam.num_taps
    taps = [info['module'] for info in full.feature_info]
    x = torch.rand(1, 3, 33, 47)
    for i in range(n):
        m = fam.build(out_indices=(i - n,), **kw).eval()
        assert m.out_indices == (i,) and m.feature_info == full.feature_info
        names = [f'layers.{k}' for k in _layer_names(m)]
        assert names[-1] == taps[i] and not set(names) & set(taps[i + 1 :])
        with torch.device('meta'):
            assert _layer_names(fam.build(out_indices=(i,), **kw)) == _layer_names(m)
        with torch.no_grad():
            (out,) = m(x)
        info = full.feature_info[i]
        assert m.out_channels == [info['num_chs']]
        assert out.shape[1:] == (
            info['num_chs'],
            expected_hw(33, info['reduction']),
            expected_hw(47, info['reduction']),
        )
    m = fam.build(out_indices=(n - 1, 0, -2), **kw).eval()
    assert m.out_indices == (0, n - 2, n - 1)
    with torch.no_grad():
        outs = m(x)
    assert [o.shape[1] for o in outs] == m.out_channels


@pytest.mark.parametrize('fam,kw', FAMILY_CASES)
def test_only_needed_layers_are_built(fam: Family, kw: dict) -> None:
    shallow = fam.build(out_indices=(0,))
    deep = fam.build(out_indices=(-2,))
    with_head = fam.build(out_indices=(-1,))
    assert nparams(shallow) < nparams(deep) < nparams(with_head)
    # every registered parameter takes part in the forward pass (no DDP unused params)
    deep.train()
    sum(o.sum() for o in deep(torch.rand(2, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in deep.parameters())


# ----------------------------------------------------------------------- stages
@pytest.mark.parametrize('fam,kw', FAMILY_CASES + EXPANSION_CASES)
def test_stages(fam: Family, kw: dict) -> None:
    m = fam.build(out_indices=(-1,), **kw)
    assert m._layer_stage == _expected_stages(fam, kw)
    assert m.num_stages == fam.stages[-1]


@pytest.mark.parametrize('fam,kw', FAMILY_CASES + EXPANSION_CASES)
def test_frozen_stages(fam: Family, kw: dict) -> None:
    """``frozen_stages=k``: the layers of stages <= k (by the paper's stages, not the
    model's bookkeeping) are in eval mode without gradients, also after ``train()``, and
    a training step (an optimizer over all parameters) changes neither their weights nor
    their BN statistics; the others train."""
    stages = _expected_stages(fam, kw)

    def state(layers):
        return [t.clone() for layer in layers for t in layer.state_dict().values()]

    for k in sorted({-1, 0, 1, 3, stages[-1]}):
        model = fam.build(frozen_stages=k, out_indices=(-1,), **kw)
        model.train()
        assert len(model.layers) == len(stages)
        frozen = [layer for layer, s in zip(model.layers, stages) if s <= k]
        live = [layer for layer, s in zip(model.layers, stages) if s > k]
        for layer in frozen:
            assert not layer.training
            assert all(not p.requires_grad for p in layer.parameters())
        for layer in live:
            assert layer.training
            assert all(p.requires_grad for p in layer.parameters())
        assert bool(frozen) == (k >= 0)
        if not frozen:
            continue
        before, before_live = state(frozen), state(live)
        x = torch.rand(2, 3, 32, 32)
        if k == 1:  # a full step once; elsewhere a forward (BN statistics) is enough
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
            sum(o.mean() for o in model(x)).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
        for a, b in zip(before, state(frozen)):
            torch.testing.assert_close(a, b)
        # the rest did train (the check above cannot pass for want of a forward)
        assert not live or any(not torch.equal(a, b) for a, b in zip(before_live, state(live)))


@pytest.mark.parametrize('fam,kw', FAMILY_CASES)
def test_norm_eval(fam: Family, kw: dict) -> None:
    model = fam.build(norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    stats = [m.running_var.clone() for m in bns]
    model(torch.rand(2, 3, 32, 32))
    for m, s in zip(bns, stats):
        torch.testing.assert_close(m.running_var, s)
    # and without norm_eval they do train
    model = fam.build(norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('fam,kw', FAMILY_CASES + EXPANSION_CASES)
def test_with_cp_matches_plain(fam: Family, kw: dict, monkeypatch) -> None:
    """``with_cp`` checkpoints every layer but the stem (blocks, the split expansion
    layer, the head conv) and changes neither the outputs nor the gradients."""
    n = fam.num_taps
    out_indices = sorted({1, min(3, n - 1), n - 1})
    torch.manual_seed(0)
    plain = fam.build(out_indices=out_indices, **kw)
    cp = fam.build(out_indices=out_indices, with_cp=True, **kw)
    cp.load_state_dict(plain.state_dict())
    checkpointed = []
    original = torch.utils.checkpoint.checkpoint

    def spy(fn, *args, **kwargs):
        checkpointed.append(fn)
        return original(fn, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', spy)
    # BN in train mode; same input -> same outputs and gradients
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    # same seed: stochastic depth (EfficientNet) draws the same masks, and checkpointing
    # must replay them when it recomputes
    torch.manual_seed(1)
    out_a = plain(x)
    assert not checkpointed
    torch.manual_seed(1)
    out_b = cp(x2)
    names = [k for k, layer in cp.layers.named_children() if any(layer is f for f in checkpointed)]
    assert names == [k for k in _layer_names(cp) if k not in ('stem', 'pool')]
    assert len(checkpointed) == len(names)
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in out_a).backward()
    sum(o.sum() for o in out_b).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for (na, pa), (_, pb) in zip(plain.named_parameters(), cp.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=na)


# ---------------------------------------------------------------- output_stride
@pytest.mark.parametrize('fam,kw', OUTPUT_STRIDE_CASES)
@pytest.mark.parametrize('output_stride', [8, 16])
def test_output_stride(fam: Family, kw: dict, output_stride: int) -> None:
    """Later strides become dilation: the taps keep their index and channels and report
    their actual reduction, the OS-32 weights load as they are, and no block changes what
    it computes (a strided block turned dilated gains no residual)."""
    taps = tuple(range(fam.num_taps))
    ref = fam.build(out_indices=taps, **kw)
    model = fam.build(out_indices=taps, output_stride=output_stride, **kw).eval()
    assert model.out_strides == [min(r, output_stride) for r in ref.out_strides]
    assert model.out_channels == ref.out_channels
    model.load_state_dict(ref.state_dict())  # strict: same names, same shapes
    assert _shortcuts(model) == _shortcuts(ref)
    if fam.shortcuts:
        assert _shortcuts(model) == fam.shortcuts
    h, w = 64, 96
    with torch.no_grad():
        outs = model(torch.rand(1, 3, h, w))
    for out, s, c in zip(outs, model.out_strides, model.out_channels):
        assert out.shape[1:] == (c, expected_hw(h, s), expected_hw(w, s))
    if max(ref.out_strides) == 32:
        # the given-up strides became dilation: the last spatial conv is dilated 32 / OS
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
        assert convs[-1].stride == (1, 1)
        assert convs[-1].dilation == (32 // output_stride,) * 2


# ------------------------------------------------------------- feature_location
@pytest.mark.parametrize('fam', [f for f in FAMILIES if f.expansion], ids=str)
def test_feature_location_expansion(fam: Family) -> None:
    """The stride-16 tap becomes the expansion conv of the first stride-32 block, an
    explicit layer; one state dict serves both layouts (a load pre-hook renames
    ``bN.expand`` <-> ``bN_expand``) and the split changes no output."""
    layer, channels = fam.expansion
    m = fam.build(feature_location='expansion', out_indices=(3, 4)).eval()
    ref = fam.build(out_indices=(4,)).eval()
    assert m.out_channels == [channels, ref.out_channels[0]] and m.out_strides == [16, 32]
    assert m.feature_info[3]['module'] == f'layers.{layer}'
    m.load_state_dict(ref.state_dict(), strict=True)
    fam.build(out_indices=(4,)).load_state_dict(m.state_dict(), strict=True)
    assert nparams(m) == nparams(ref)
    block = layer[: -len('_expand')]
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        c4, c5 = m(x)
        torch.testing.assert_close(c5, ref(x)[0])
        y = x
        for name, child in ref.layers.named_children():
            if name == block:
                break
            y = child(y)
        torch.testing.assert_close(c4, getattr(ref.layers, block).expand(y))


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize('fam', FAMILIES, ids=str)
def test_contract_arguments_are_validated(fam: Family) -> None:
    n, s = fam.num_taps, fam.stages[-1]
    taps = rf'each index must be in \[{-n}, {n - 1}\]: 0: {re.escape(fam.first_tap)}'
    stages = rf'frozen_stages must be an int in \[-1, {s}\]'
    bad = [
        (dict(out_indices=(n,)), taps),
        (dict(out_indices=(-n - 1,)), taps),
        (dict(out_indices=(1, 1)), 'unique'),
        (dict(out_indices=(1, 1 - n)), 'unique'),  # the same tap twice
        (dict(out_indices=()), 'non-empty'),
        (dict(frozen_stages=s + 1), stages),
        (dict(frozen_stages=-2), stages),
        (dict(output_stride=4), r'output_stride must be one of \(8, 16, 32\)'),
        (dict(output_stride=64), r'output_stride must be one of \(8, 16, 32\)'),
        (dict(feature_location='neck'), 'feature_location must be one of'),
    ]
    if not fam.expansion:
        bad.append((dict(feature_location='expansion'), 'no expansion'))
    with torch.device('meta'):
        for kwargs, match in bad:
            with pytest.raises(ValueError, match=match):
                fam.build(**kwargs)
        # the limits themselves are valid
        assert fam.build(out_indices=(-n, n - 1), frozen_stages=s).out_indices == (0, n - 1)


@pytest.mark.parametrize('cls', CLASSES, ids=lambda c: c.__name__)
def test_registered_under_scope(cls) -> None:
    assert MODELS.scope == 'mmbackbones'
    assert MODELS.get(f'mmbackbones.{cls.__name__}') is cls


# ------------------------------------------------------------------ padding
@pytest.mark.parametrize('fam', FAMILIES, ids=str)
def test_padding_tf_same(fam: Family) -> None:
    """``padding='tf_same'`` (TensorFlow's 'SAME', for TF-trained weights) in the mobile
    families: the same layers and parameters, the same tap shapes on an odd input, a
    different function (the strided convs pad asymmetrically); the other families refuse it
    with the valid modes."""
    if 'tf_same' not in type(fam.build(out_indices=(0,))).paddings:
        with pytest.raises(ValueError, match=r"padding must be one of \('symmetric',\)"):
            fam.build(padding='tf_same')
        return
    n = fam.num_taps
    torch.manual_seed(0)
    sym = fam.build(out_indices=tuple(range(n))).eval()
    tf = fam.build(out_indices=tuple(range(n)), padding='tf_same').eval()
    tf.load_state_dict(sym.state_dict(), strict=True)
    x = torch.randn(1, 3, 65, 96)
    with torch.no_grad():
        a, b = sym(x), tf(x)
    assert [t.shape for t in a] == [t.shape for t in b]
    assert not torch.allclose(a[0], b[0])  # 96 is even: TF pads the stem (0, 1)

"""The backbone contract (models/backbones/base.py), checked on every family's presets."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.models import AnyNet, EfficientNet, MobileNetV3, RegNet, ResNeXt, ReXNet
from mmbackbones.registry import MODELS

# (class name, preset) for the generic shape test: every preset of every family.
PRESETS = [
    (cls.__name__, arch)
    for cls in (ReXNet, MobileNetV3, EfficientNet, RegNet, ResNeXt, AnyNet)
    for arch in cls.arch_settings
]
# one representative per family for the heavier contract tests
# families whose blocks have an expansion conv (feature_location='expansion')
EXPANSION_FAMILIES = ('ReXNet', 'MobileNetV3', 'EfficientNet')
REPRESENTATIVES = [
    ('ReXNet', '1.0'),
    ('ReXNet', 'lite-1.0'),
    ('MobileNetV3', 'large'),
    ('EfficientNet', 'b0'),
    ('RegNet', 'regnety_400mf'),
    ('ResNeXt', '50_32x4d'),
]


def build(name: str, arch, **kw):
    return MODELS.build(dict(type=f'mmbackbones.{name}', arch=arch, **kw))


def _expected_hw(size: int, reduction: int) -> int:
    # every stride-2 conv with 'same' padding maps n -> ceil(n / 2)
    for _ in range(int(math.log2(reduction))):
        size = math.ceil(size / 2)
    return size


@pytest.mark.parametrize('name,arch', PRESETS)
def test_every_tap_matches_feature_info(name: str, arch: str) -> None:
    full = build(name, arch, out_indices=(0,))
    n = len(full.feature_info)
    model = build(name, arch, out_indices=tuple(range(n))).eval()
    for h, w in ((224, 224), (96, 128)):
        with torch.no_grad():
            outs = model(torch.rand(1, 3, h, w))
        assert isinstance(outs, tuple) and len(outs) == n
        for out, info in zip(outs, model.feature_info):
            assert out.shape[1] == info['num_chs']
            assert out.shape[2:] == (
                _expected_hw(h, info['reduction']),
                _expected_hw(w, info['reduction']),
            )


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
def test_single_and_negative_indices(name: str, arch: str) -> None:
    full = build(name, arch, out_indices=(0,))
    n = len(full.feature_info)
    x = torch.rand(1, 3, 64, 64)
    for i in range(n):
        m = build(name, arch, out_indices=(i,)).eval()
        assert m.out_channels == [full.feature_info[i]['num_chs']]
        assert build(name, arch, out_indices=(i - n,)).out_indices == (i,)
        with torch.no_grad():
            (out,) = m(x)
        assert out.shape[1] == full.feature_info[i]['num_chs']


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
def test_only_needed_layers_are_built(name: str, arch: str) -> None:
    def nparams(m):
        return sum(p.numel() for p in m.parameters())

    shallow = build(name, arch, out_indices=(0,))
    deep = build(name, arch, out_indices=(-2,))
    with_head = build(name, arch, out_indices=(-1,))
    assert nparams(shallow) < nparams(deep) < nparams(with_head)
    # every registered parameter takes part in the forward pass (no DDP unused params)
    deep.train()
    sum(o.sum() for o in deep(torch.rand(2, 3, 64, 64))).backward()
    assert all(p.grad is not None for p in deep.parameters())


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
def test_frozen_stages(name: str, arch: str) -> None:
    probe = build(name, arch)
    for k in (0, 1, probe.num_stages):
        model = build(name, arch, frozen_stages=k, out_indices=(-1,))
        model.train()
        frozen = [layer for layer, s in zip(model.layers, model._layer_stage) if s <= k]
        live = [layer for layer, s in zip(model.layers, model._layer_stage) if s > k]
        assert frozen
        for layer in frozen:
            assert not layer.training
            assert all(not p.requires_grad for p in layer.parameters())
        for layer in live:
            assert layer.training
            assert all(p.requires_grad for p in layer.parameters())
        before = copy.deepcopy(
            [
                (m.running_mean.clone(), m.weight.clone())
                for layer in frozen
                for m in layer.modules()
                if isinstance(m, _BatchNorm)
            ]
        )
        params = [p for p in model.parameters() if p.requires_grad]
        if params:
            opt = torch.optim.SGD(params, lr=0.1)
            sum(o.mean() for o in model(torch.rand(2, 3, 64, 64))).backward()
            opt.step()
        after = [
            (m.running_mean, m.weight)
            for layer in frozen
            for m in layer.modules()
            if isinstance(m, _BatchNorm)
        ]
        for (m0, w0), (m1, w1) in zip(before, after):
            torch.testing.assert_close(m0, m1)
            torch.testing.assert_close(w0, w1)


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
def test_norm_eval(name: str, arch: str) -> None:
    model = build(name, arch, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    stats = [m.running_var.clone() for m in bns]
    model(torch.rand(2, 3, 64, 64))
    for m, s in zip(bns, stats):
        torch.testing.assert_close(m.running_var, s)
    # and without norm_eval they do train
    model = build(name, arch, norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
def test_with_cp_matches_plain(name: str, arch: str) -> None:
    torch.manual_seed(0)
    plain = build(name, arch, out_indices=(1, 3))
    cp = build(name, arch, out_indices=(1, 3), with_cp=True)
    cp.load_state_dict(plain.state_dict())
    # BN in train mode; same input -> same outputs and gradients
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    # same seed: stochastic depth (EfficientNet) draws the same masks, and checkpointing
    # must replay them when it recomputes
    torch.manual_seed(1)
    out_a = plain(x)
    torch.manual_seed(1)
    out_b = cp(x2)
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in out_a).backward()
    sum(o.sum() for o in out_b).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for (na, pa), (_, pb) in zip(plain.named_parameters(), cp.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=na)


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
@pytest.mark.parametrize('output_stride', [8, 16])
def test_output_stride(name: str, arch: str, output_stride: int) -> None:
    model = build(name, arch, output_stride=output_stride, out_indices=(-2, -1)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 128, 128))
    assert model.out_strides == [output_stride, output_stride]
    assert all(o.shape[-1] == 128 // output_stride for o in outs)
    ref = build(name, arch, out_indices=(-2, -1))
    assert model.out_channels == ref.out_channels
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


def test_feature_location_expansion_rexnet() -> None:
    # the stride-16 tap becomes the expansion conv of the first stride-32 block (block 11:
    # input 128 channels, expansion 6 -> 768); the module is an explicit split layer
    m = ReXNet('1.0', feature_location='expansion', out_indices=(3, 4)).eval()
    assert m.out_channels == [768, 185] and m.out_strides == [16, 32]
    assert m.feature_info[3]['module'] == 'layers.b11_expand'
    ref = ReXNet('1.0', out_indices=(4,))
    # one state dict serves both layouts (a pre-hook renames b11.expand <-> b11_expand)
    m.load_state_dict(ref.state_dict(), strict=True)
    ReXNet('1.0', out_indices=(4,)).load_state_dict(m.state_dict(), strict=True)
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(m(x)[1], ref.eval()(x)[0])


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(arch='bogus'), "unknown arch 'bogus'.*valid presets"),
        (dict(arch=dict(widthmult=1.0)), 'unknown arch keys'),
        (dict(out_indices=(9,)), r'each index must be in \[-6, 5\]: 0: 16ch@/2'),
        (dict(out_indices=(1, 1)), 'unique'),
        (dict(frozen_stages=9), r'frozen_stages must be an int in \[-1, 6\]'),
        (dict(frozen_stages=-2), 'frozen_stages'),
        (dict(output_stride=4), r'output_stride must be one of \(8, 16, 32\)'),
        (dict(feature_location='neck'), 'feature_location must be one of'),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReXNet(**kwargs)


def test_registered_under_scope() -> None:
    assert MODELS.get('mmbackbones.ReXNet') is ReXNet
    assert MODELS.scope == 'mmbackbones'


@pytest.mark.parametrize('name,arch', REPRESENTATIVES)
@pytest.mark.parametrize('output_stride', [8, 16])
def test_output_stride_keeps_the_blocks(name: str, arch: str, output_stride: int) -> None:
    """Dilation must not change what a block is: a strided block turned into a dilated one
    gains no residual (it would no longer match pretrained weights), and the expansion
    split still works."""
    ref = build(name, arch, out_indices=(-2,))
    m = build(name, arch, out_indices=(-2,), output_stride=output_stride)
    m.load_state_dict(ref.state_dict())
    assert [getattr(b, 'shortcut', None) for b in m.layers] == [
        getattr(b, 'shortcut', None) for b in ref.layers
    ]
    if name not in EXPANSION_FAMILIES:
        return
    exp = build(
        name, arch, out_indices=(3, 4), output_stride=output_stride, feature_location='expansion'
    )
    assert exp.out_strides == [min(16, output_stride), output_stride]

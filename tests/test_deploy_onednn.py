"""Deploy mode's prepacked oneDNN convolutions (OneDNNConv2d, ResidualDeploy) against
``nn.Conv2d`` and the unfused blocks."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn as nn

from mmbackbones.deploy import fuse, onednn, policy, randomize_bn
from mmbackbones.deploy.modules import OneDNNConv2d, ResidualDeploy, onednn_available
from mmbackbones.models.backbones import ResNeXt
from mmbackbones.models.layers import ResBasicBlock, ResBottleneckBlock

# where PyTorch's private oneDNN ops fail their self-test, fuse() uses the portable forms
# (tests/test_deploy.py::test_fuse_falls_back_when_the_onednn_probe_fails)
pytestmark = pytest.mark.skipif(not onednn_available(), reason=onednn.probe().reason)

CL = torch.channels_last


def _conv(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1):
    torch.manual_seed(0)
    return nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups).eval()


CONVS = {
    'dense-3x3-s2': lambda: _conv(8, 16, 3, stride=2),
    'grouped-3x3': lambda: _conv(16, 16, 3, groups=4),
    'depthwise-5x5-d2': lambda: _conv(16, 16, 5, dilation=2, groups=16),
    'pointwise': lambda: _conv(16, 24, 1),
    'pointwise-s2': lambda: _conv(16, 24, 1, stride=2),
}
ACTS = {
    'none': lambda: None,
    'relu': nn.ReLU,
    'relu6': nn.ReLU6,
    'hardswish': nn.Hardswish,
    'silu': nn.SiLU,
    'sigmoid': nn.Sigmoid,
    'hardsigmoid': nn.Hardsigmoid,
}


def _run(m: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m(*args)


@pytest.mark.parametrize('act', sorted(ACTS))
@pytest.mark.parametrize('conv', sorted(CONVS))
@pytest.mark.parametrize('pointwise_path', ['gemm', 'onednn'])
def test_onednn_conv_equals_conv_and_act(conv: str, act: str, pointwise_path: str, monkeypatch):
    if pointwise_path == 'onednn':
        monkeypatch.setattr(policy, 'POINTWISE_MIN_MACS', 0)
    ref_conv, ref_act = CONVS[conv](), ACTS[act]()
    fused = OneDNNConv2d.from_conv(copy.deepcopy(ref_conv), copy.deepcopy(ref_act))
    x = torch.randn(2, ref_conv.in_channels, 13, 11).to(memory_format=CL)
    ref = ref_conv(x) if ref_act is None else ref_act(ref_conv(x))
    out = _run(fused, x)
    assert out.shape == ref.detach().shape
    assert (out - ref).abs().max().item() <= 1e-5
    assert ref.abs().max().item() > 0.1
    # NCHW input: same values
    assert (_run(fused, x.contiguous()) - ref).abs().max().item() <= 1e-5


def test_onednn_conv_rejects_an_activation_onednn_lacks() -> None:
    with pytest.raises(ValueError, match='fuses only.*ReLU.*got GELU'):
        OneDNNConv2d.from_conv(_conv(8, 8, 3), nn.GELU())


def test_fuse_keeps_other_activations_after_the_prepacked_conv() -> None:
    from mmbackbones.models.layers import ConvNormAct

    torch.manual_seed(0)
    layer = ConvNormAct(8, 16, 3, norm_cfg=dict(type='BN'), act_cfg=dict(type='GELU'))
    layer = randomize_bn(layer).eval()
    fused = fuse(layer)
    assert isinstance(fused.conv, OneDNNConv2d) and fused.conv.act is None
    assert isinstance(fused.act, nn.GELU)
    x = torch.randn(1, 8, 9, 9)
    assert (_run(fused, x) - _run(layer, x)).abs().max().item() <= 1e-5


def test_onednn_conv_packs_once_per_shape_and_follows_weight_changes() -> None:
    conv = _conv(8, 8, 3, groups=2)
    fused = OneDNNConv2d.from_conv(copy.deepcopy(conv), nn.ReLU())
    a, b = torch.randn(1, 8, 10, 10), torch.randn(1, 8, 7, 9)
    _run(fused, a), _run(fused, b), _run(fused, a)
    assert len(fused._packs) == 2
    # new weights, loaded in place: the packed copies are rebuilt
    new = _conv(8, 8, 3, groups=2)
    with torch.no_grad():
        new.weight.mul_(-2.0)
    fused.load_state_dict(new.state_dict())
    assert (_run(fused, a) - torch.relu(new(a))).abs().max().item() <= 1e-5
    # bounded: the oldest shape goes first
    for size in range(3, 3 + OneDNNConv2d.MAX_PACKS + 2):
        _run(fused, torch.randn(1, 8, size, size))
    assert len(fused._packs) == OneDNNConv2d.MAX_PACKS


def test_onednn_conv_state_is_the_convs_and_copies() -> None:
    conv = _conv(8, 16, 3)
    fused = OneDNNConv2d.from_conv(copy.deepcopy(conv), nn.Hardswish())
    x = torch.randn(1, 8, 9, 9)
    ref = _run(fused, x)  # packs
    assert fused.state_dict().keys() == conv.state_dict().keys()
    assert 'act' not in conv._modules
    for clone in (copy.deepcopy(fused), torch.load(_saved(fused), weights_only=False)):
        assert clone._packs == {}
        assert torch.equal(_run(clone, x), ref)


def _saved(m: nn.Module) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    return buf


def test_onednn_conv_with_autograd_takes_the_plain_path() -> None:
    conv = _conv(8, 16, 3)
    fused = OneDNNConv2d.from_conv(copy.deepcopy(conv), nn.SiLU())
    x = torch.randn(1, 8, 9, 9, requires_grad=True)
    fused(x).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    nn.functional.silu(conv(x2)).sum().backward()
    assert (x.grad - x2.grad).abs().max().item() <= 1e-5


@pytest.mark.parametrize('inplace', [False, True])
def test_onednn_conv_forward_add(inplace: bool) -> None:
    conv = _conv(8, 16, 3)
    fused = OneDNNConv2d.from_conv(copy.deepcopy(conv))
    x = torch.randn(1, 8, 9, 9).to(memory_format=CL)
    other = torch.randn(1, 16, 9, 9).to(memory_format=CL)
    keep = other.clone()
    ref = torch.relu(conv(x) + other)
    out = _run(lambda a, b: fused.forward_add(a, b, nn.ReLU(), inplace=inplace), x, other)
    assert (out - ref).abs().max().item() <= 1e-5
    # in place: the result is written into `other`; otherwise `other` is left alone
    assert (out.data_ptr() == other.data_ptr()) == inplace
    assert torch.equal(other, keep) != inplace
    with pytest.raises(ValueError, match='without its own activation'):
        OneDNNConv2d.from_conv(conv, nn.ReLU()).forward_add(x, other, nn.ReLU())


@pytest.mark.parametrize(
    'block',
    [
        lambda: ResBottleneckBlock(16, 16, group_w=4),  # identity shortcut
        lambda: ResBottleneckBlock(16, 32, stride=2, group_w=8, se_ratio=0.25),
        lambda: ResBasicBlock(16, 16),
        lambda: ResBasicBlock(8, 16, stride=2),
    ],
)
def test_residual_deploy_equals_block_and_keeps_its_input(block) -> None:
    torch.manual_seed(0)
    model = randomize_bn(block()).eval()
    fused = fuse(model)
    assert isinstance(fused, ResidualDeploy)
    x = torch.randn(1, model.in_channels, 12, 12).to(memory_format=CL)
    keep = x.clone()
    ref = _run(model, x)
    out = _run(fused, x)
    assert (out - ref).abs().max().item() <= 1e-5
    assert torch.equal(x, keep)  # the identity shortcut was not overwritten
    assert fused.state_dict().keys() == fuse(model, prepack=False).state_dict().keys()


def test_resnext_taps_survive_the_fused_residual_adds(monkeypatch) -> None:
    """Every stage's output is returned and is also the next block's identity input."""
    monkeypatch.setattr(policy, 'POINTWISE_MIN_MACS', 0)
    torch.manual_seed(0)
    arch = dict(depths=(2, 2, 2, 2), cardinality=4, base_width=4, widths=(32, 64, 96, 128))
    model = randomize_bn(ResNeXt(arch, out_indices=(1, 2, 3, 4))).eval()
    fused = fuse(model)
    assert sum(isinstance(m, ResidualDeploy) for m in fused.modules()) == 8
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(_run(model, x), _run(fused, x)):
        assert (a - b).abs().max().item() <= 1e-5


def test_residual_deploy_needs_a_lone_onednn_conv_last() -> None:
    block = fuse(ResBottleneckBlock(16, 16, group_w=4).eval(), prepack=False)
    with pytest.raises(ValueError, match='lone OneDNNConv2d'):
        ResidualDeploy(block.proj, block.f, block.act)


def test_onednn_conv_is_built_around_the_convs_parameters() -> None:
    """from_conv and fuse adopt the conv's own Parameter objects (nothing is copied)."""
    from mmbackbones.models.layers import ConvNormAct

    conv, act = _conv(8, 16, 3), nn.ReLU()
    fused = OneDNNConv2d.from_conv(conv, act)
    assert fused.weight is conv.weight and fused.bias is conv.bias and fused.act is act
    assert fused.state_dict().keys() == conv.state_dict().keys()
    assert 'act' not in conv._modules and not fused.training
    # a conv layer without BN (nothing folded): the prepacked form keeps its Parameters
    layer = ConvNormAct(8, 16, 3, act_cfg=dict(type='ReLU')).eval()
    weight, bias, keys = layer.conv.weight, layer.conv.bias, layer.state_dict().keys()
    fuse(layer, inplace=True)
    assert isinstance(layer.conv, OneDNNConv2d) and 'act' not in layer._modules
    assert layer.conv.weight is weight and layer.conv.bias is bias
    assert layer.state_dict().keys() == keys
    x = torch.randn(1, 8, 9, 9)
    ref = torch.relu(nn.functional.conv2d(x, weight, bias, padding=1))
    assert (_run(layer, x) - ref).abs().max().item() <= 1e-5


def test_onednn_conv_constructor() -> None:
    conv = OneDNNConv2d(8, 16, 3, padding=1, act=nn.ReLU6())
    assert conv.post_op == ('hardtanh', [0.0, 6.0]) and conv._pointwise == 0
    assert OneDNNConv2d(8, 16, 1)._pointwise == 8 * 16
    with pytest.raises(ValueError, match="not 'same'"):
        OneDNNConv2d(8, 16, 3, padding='same')

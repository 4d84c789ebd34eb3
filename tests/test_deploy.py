"""Deploy mode (mmbackbones.deploy.fuse): fused == unfused for every family."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.deploy import fold_bn, fuse, randomize_bn
from mmbackbones.models import ImageClassifier
from mmbackbones.models.backbones import (
    AnyNet,
    EfficientNet,
    MobileNetV3,
    RegNet,
    ResNeXt,
    ReXNet,
)

TINY_RESNEXT = dict(depths=(1, 1, 2, 1), cardinality=8, base_width=4, widths=(64, 128, 256, 512))

FAMILIES = {
    'rexnet-1.0': lambda: ReXNet('1.0', out_indices=(0, 1, 2, 3, 4, 5)),
    'rexnet-lite-1.0': lambda: ReXNet('lite-1.0'),
    'rexnet-expansion': lambda: ReXNet('1.0', out_indices=(3, 5), feature_location='expansion'),
    'mobilenetv3-large': lambda: MobileNetV3('large', out_indices=(0, 1, 2, 3, 4, 5)),
    'mobilenetv3-small': lambda: MobileNetV3('small', feature_location='expansion'),
    'efficientnet-b0': lambda: EfficientNet('b0'),
    'regnetx-400mf': lambda: RegNet('regnetx_400mf'),
    'regnety-400mf': lambda: RegNet('regnety_400mf'),  # SE in the bottleneck
    'resnext-tiny': lambda: ResNeXt(TINY_RESNEXT),
    'anynet-vanilla': lambda: AnyNet('nds_v56'),
    'anynet-basic-os8': lambda: AnyNet(
        dict(block_type='res_basic', depths=[1, 1, 1, 1], widths=[16, 32, 48, 64]),
        output_stride=8,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['50_32x4d'])
def test_fused_equals_unfused_resnext50(arch: str) -> None:
    torch.manual_seed(0)
    model = randomize_bn(ResNeXt(arch)).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref, out = model(x), fuse(model)(x)
    assert min(float(t.abs().max()) for t in ref) > 0.1
    assert _max_diff(out, ref) <= 1e-5


def _max_diff(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def test_fold_bn_hand_computed() -> None:
    # y = gamma * (w * x + b - mean) / sqrt(var + eps) + beta
    #   = 0.5 * (2 * 3 + 0.5 - 1) / sqrt(4) + 1 = 2.375
    conv = nn.Conv2d(1, 1, 1, bias=True)
    conv.weight.data.fill_(2.0)
    conv.bias.data.fill_(0.5)
    bn = nn.BatchNorm2d(1, eps=0.0).eval()
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(4.0)
    bn.weight.data.fill_(0.5)
    bn.bias.data.fill_(1.0)
    fused = fold_bn(conv, bn)
    assert fused(torch.full((1, 1, 1, 1), 3.0)).item() == pytest.approx(2.375, abs=1e-6)


def test_fold_bn_rejects_unfoldable() -> None:
    with pytest.raises(ValueError, match='track_running_stats'):
        fold_bn(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ValueError, match='channels'):
        fold_bn(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(5))


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_fused_equals_unfused(name: str) -> None:
    torch.manual_seed(0)
    model = randomize_bn(FAMILIES[name]()).eval()
    original = copy.deepcopy(model.state_dict())
    fused = fuse(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model(x), fused(x)
    assert len(out) == len(ref)
    assert [t.shape for t in out] == [t.shape for t in ref]
    # the features are unit-scale, so 1e-5 is a real bound (a wrong fold gives ~0.1)
    assert min(float(t.abs().max()) for t in ref) > 0.1
    assert _max_diff(out, ref) <= 1e-5
    assert fused.out_channels == model.out_channels
    assert fused.out_indices == model.out_indices
    assert not _has_bn(fused)
    assert not fused.training
    # inplace=False left the original untouched
    assert _has_bn(model)
    state = model.state_dict()
    assert state.keys() == original.keys()
    assert all(torch.equal(state[k], original[k]) for k in state)


def test_fuse_changes_what_it_must() -> None:
    """Random BN statistics make fusion non-trivial: skipping them would be caught."""
    torch.manual_seed(0)
    model = MobileNetV3('small').eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = model(x)
        randomize_bn(model)
        assert _max_diff(model(x), plain) > 1e-2


def test_fuse_nchw_and_inplace() -> None:
    torch.manual_seed(0)
    model = randomize_bn(ReXNet('1.0')).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        nchw = fuse(model, channels_last=False)
        assert _max_diff(nchw(x), ref) <= 1e-5
        assert all(t.is_contiguous() for t in nchw(x))
        same = fuse(model, inplace=True)
        assert same is model and not _has_bn(model)
        assert _max_diff(model(x), ref) <= 1e-5


def test_fuse_switches_to_eval() -> None:
    model = randomize_bn(MobileNetV3('small')).train()
    fused = fuse(model, inplace=True)
    assert not any(m.training for m in fused.modules())


def test_fuse_classifier_with_bn_head() -> None:
    """ImageClassifier around ReXNet-lite: its classifier's conv -> BN is folded too."""
    torch.manual_seed(0)
    model = randomize_bn(ImageClassifier(dict(type='ReXNet', arch='lite-1.0'), 10)).eval()
    fused = fuse(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (fused(x) - model(x)).abs().max() <= 1e-5
    assert not _has_bn(fused)


def test_fuse_rejects_non_module() -> None:
    with pytest.raises(TypeError, match='nn.Module'):
        fuse('ReXNet')  # type: ignore[arg-type]


@pytest.mark.slow  # mmseg's import
def test_fuse_mmseg_head_conv_modules() -> None:
    """mmcv ConvModules (LR-ASPP head) are folded; the segmentor's logits are unchanged."""
    from mmbackbones.deploy import build_model_from_config

    torch.manual_seed(0)
    model = randomize_bn(build_model_from_config('configs/mobilenetv3-small_lraspp_cityscapes.py'))
    fused = fuse(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model._forward(x), fused._forward(x)
    assert float(ref.abs().max()) > 0.1
    assert (out - ref).abs().max() <= 1e-5
    assert not _has_bn(fused)


def test_fuse_keeps_nchw_for_dilated_depthwise_convs() -> None:
    """Default layout: channels-last, except with dilated depthwise convs (output stride
    8/16), which oneDNN runs slower in NHWC."""

    def weight_layout(m: torch.nn.Module) -> bool:
        conv = next(c for c in m.modules() if isinstance(c, torch.nn.Conv2d))
        return conv.weight.is_contiguous(memory_format=torch.channels_last)

    assert weight_layout(fuse(MobileNetV3('small')))
    assert not weight_layout(fuse(MobileNetV3('small', output_stride=8)))
    assert weight_layout(fuse(MobileNetV3('small', output_stride=8), channels_last=True))

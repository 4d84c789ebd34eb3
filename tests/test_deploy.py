"""Deploy mode (mmbackbones.deploy.fuse): fused == unfused for every family."""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.deploy import compile as compile_mod
from mmbackbones.deploy import fold_bn, fuse, randomize_bn
from mmbackbones.deploy.modules import PointwiseConv2d, SpaceToBatchConv2d
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
    # dilation 2 and 4 (5x5 depthwise at dilation 4 runs on sub-grids in deploy mode)
    'mobilenetv3-large-os8': lambda: MobileNetV3('large', out_indices=(1, 5), output_stride=8),
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
    from mmbackbones.apis import init_model

    torch.manual_seed(0)
    model = randomize_bn(init_model('configs/mobilenetv3-small_lraspp_cityscapes.py'))
    fused = fuse(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model._forward(x), fused._forward(x)
    assert float(ref.abs().max()) > 0.1
    assert (out - ref).abs().max() <= 1e-5
    assert not _has_bn(fused)


@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('layout', ['nchw', 'nhwc', 'strided'])
def test_pointwise_conv_equals_conv(bias: bool, batch: int, layout: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 7, 1, bias=bias)
    pw = PointwiseConv2d.from_conv(conv)
    x = torch.randn(batch, 12, 9, 6)
    if layout == 'nhwc':
        x = x.to(memory_format=torch.channels_last)
    elif layout == 'strided':  # neither layout: conv's own path
        x = torch.randn(batch, 12, 9, 12)[..., ::2]
    with torch.no_grad():
        out = pw(x)
        assert (out - conv(x)).abs().max() <= 1e-5
    if layout == 'nhwc':
        assert out.is_contiguous(memory_format=torch.channels_last)
    assert pw.state_dict().keys() == conv.state_dict().keys()


def test_pointwise_conv_applies_only_to_plain_1x1() -> None:
    assert PointwiseConv2d.applies_to(nn.Conv2d(4, 4, 1))
    for conv in (nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 1, stride=2), nn.Conv2d(4, 4, 1, groups=2)):
        assert not PointwiseConv2d.applies_to(conv)
    with pytest.raises(ValueError, match='1x1, stride-1'):
        PointwiseConv2d.from_conv(nn.Conv2d(4, 4, 3))


@pytest.mark.parametrize(
    'k,d,groups,size',
    [(5, 4, 8, (28, 28)), (5, 4, 8, (30, 27)), (3, 6, 4, (13, 17)), (7, 2, 8, (9, 9))],
)
def test_space_to_batch_conv_equals_dilated_conv(k: int, d: int, groups: int, size) -> None:
    """Against nn.Conv2d itself: sizes not divisible by the dilation pad with zeros."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, k, padding=d * (k // 2), dilation=d, groups=groups)
    s2b = SpaceToBatchConv2d.from_conv(conv)
    x = torch.randn(2, 8, *size).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref, out = conv(x), s2b(x)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= 1e-5
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert (s2b(x.contiguous()) - ref).abs().max() <= 1e-5  # NCHW: conv's own path


def test_space_to_batch_conv_applies_past_the_fast_span() -> None:
    def dw(k: int, d: int, **kw) -> nn.Conv2d:
        return nn.Conv2d(8, 8, k, padding=d * (k // 2), dilation=d, groups=8, **kw)

    # span (k - 1) * d + 1: 9 stays native, 13 / 17 swap
    assert not SpaceToBatchConv2d.applies_to(dw(5, 2))
    assert not SpaceToBatchConv2d.applies_to(dw(3, 4))
    assert SpaceToBatchConv2d.applies_to(dw(3, 6)) and SpaceToBatchConv2d.applies_to(dw(5, 4))
    assert not SpaceToBatchConv2d.applies_to(dw(5, 4, stride=2))
    assert not SpaceToBatchConv2d.applies_to(nn.Conv2d(8, 8, 5, padding=8, dilation=4))
    with pytest.raises(ValueError, match='dilation spanning'):
        SpaceToBatchConv2d.from_conv(dw(3, 2))


def test_fuse_swaps_convs_by_layout() -> None:
    """Channels-last by default: the OS-8 MobileNetV3's dilation-4 5x5 depthwise convs run
    on sub-grids, its 1x1 convs as GEMMs, the rest as plain convs; in NCHW, the 1x1 convs
    are GEMMs too and the dilated ones plain."""
    torch.manual_seed(0)
    model = randomize_bn(MobileNetV3('large', output_stride=8, out_indices=(5,))).eval()

    def kinds(m: nn.Module) -> set[type]:
        return {type(c) for c in m.modules() if isinstance(c, nn.Conv2d)}

    nhwc, nchw = fuse(model), fuse(model, channels_last=False)
    assert kinds(nhwc) == {nn.Conv2d, PointwiseConv2d, SpaceToBatchConv2d}
    assert kinds(nchw) == {nn.Conv2d, PointwiseConv2d}
    x = torch.randn(1, 3, 70, 90)  # 9x12 at output stride 8: not divisible by 4
    with torch.no_grad():
        ref = model(x)
        for fused in (nhwc, nchw):
            assert _max_diff(fused(x), ref) <= 1e-5
    assert nhwc(x)[0].is_contiguous(memory_format=torch.channels_last)


def test_compile_for_inference_equals_unfused() -> None:
    """fuse + torch.compile (inductor freezing) against the unfused eager model."""
    from mmbackbones.deploy import compile_for_inference

    torch.manual_seed(0)
    model = randomize_bn(ReXNet('1.0', out_indices=(2, 5))).eval()
    compiled = compile_for_inference(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model(x), compiled(x)
    assert min(float(t.abs().max()) for t in ref) > 0.1
    assert _max_diff(out, ref) <= 1e-4
    assert _has_bn(model)  # the input model is left as it was


def test_compile_for_inference_without_compiler(monkeypatch) -> None:
    """Inductor's config names a compiler that is not on PATH: a clear error, up front."""
    from mmbackbones.deploy import CompileUnavailableError, compile_for_inference

    monkeypatch.setattr(compile_mod, '_inductor_cxx', lambda: (None, 'no-such-cxx-mmbackbones'))
    assert compile_mod.compiler_names() == ('no-such-cxx-mmbackbones',)
    assert compile_mod.cpp_compiler() is None
    with pytest.raises(CompileUnavailableError, match='needs a C\\+\\+ compiler.*no-such-cxx'):
        compile_for_inference(MobileNetV3('small'))


def test_cpp_compiler_reads_inductors_config() -> None:
    inductor_config = pytest.importorskip('torch._inductor.config')
    names = tuple(n for n in inductor_config.cpp.cxx if n)
    assert compile_mod.compiler_names() == names


def test_cpp_compiler_portable_fallback(monkeypatch, tmp_path) -> None:
    """Without inductor's private config: ``$CXX``, then c++/g++/clang++ on PATH."""
    monkeypatch.setattr(compile_mod, '_inductor_cxx', lambda: None)
    monkeypatch.setenv('CXX', 'my-cxx')
    assert compile_mod.compiler_names() == ('my-cxx', 'c++', 'g++', 'clang++')
    monkeypatch.setenv('PATH', str(tmp_path))
    assert compile_mod.cpp_compiler() is None
    fake = tmp_path / 'g++'
    fake.write_text('#!/bin/sh\n')
    fake.chmod(0o755)
    assert compile_mod.cpp_compiler() == str(fake)
    monkeypatch.delenv('CXX')
    assert compile_mod.compiler_names() == compile_mod.PORTABLE_CXX
    assert os.path.basename(compile_mod.cpp_compiler()) == 'g++'


def test_deploy_forms_are_built_around_the_same_parameters() -> None:
    """from_conv builds the form by its constructor and adopts the conv's Parameter
    objects: nothing is copied, the state-dict keys are the conv's."""
    conv = nn.Conv2d(8, 16, 1)
    pw = PointwiseConv2d.from_conv(conv)
    assert type(pw) is PointwiseConv2d
    assert pw.weight is conv.weight and pw.bias is conv.bias
    assert pw.state_dict().keys() == conv.state_dict().keys()
    nobias = nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8, bias=False).eval()
    s2b = SpaceToBatchConv2d.from_conv(nobias)
    assert s2b.weight is nobias.weight and s2b.bias is None and not s2b.training
    assert s2b.state_dict().keys() == {'weight'}
    # through fuse(inplace=True): convs with nothing to fold keep their Parameters
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nobias, nn.Conv2d(8, 4, 1)
    ).eval()
    params, keys = dict(model.named_parameters()), model.state_dict().keys()
    fused = fuse(model, inplace=True)
    assert [type(m) for m in fused] == [
        nn.Conv2d,
        nn.ReLU,
        PointwiseConv2d,
        SpaceToBatchConv2d,
        PointwiseConv2d,
    ]
    assert all(p is params[name] for name, p in fused.named_parameters())
    assert fused.state_dict().keys() == keys
    assert all(t.device.type == 'cpu' for t in fused.state_dict().values())  # none on meta


def test_hooked_convs_are_left_alone() -> None:
    """A conv with a forward hook stays an nn.Conv2d, so its hook keeps running."""
    model = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)).eval()
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    fused = fuse(model, inplace=True)
    assert [type(m) for m in fused] == [nn.Conv2d, PointwiseConv2d]
    with torch.no_grad():
        fused(torch.randn(1, 8, 4, 4))
    assert seen == [torch.Size([1, 8, 4, 4])]

"""Weight conversion (``mmbackbones.convert``, ``tools/convert_weights.py``).

* timm and torchvision (installed): the reference is built with random weights and
  randomised BN statistics, saved, converted (library and CLI), loaded strictly into our
  backbone, and every tap is compared in eval mode with the reference's intermediate features
  (forward hooks on timm's modules, torchvision's ``create_feature_extractor``).
* clovaai/rexnet and pycls (no package): state dicts are generated from *their published
  module naming* (rexnetv1.py / rexnetv1_lite.py; pycls anynet.py / blocks.py / effnet.py),
  written out here position by position, and the round trip ours -> theirs -> ours must be
  the identity (tensors and outputs).
* Bad input: one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import os
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from conftest import REPO, run_tool
from torch.nn.modules.batchnorm import _BatchNorm

import mmbackbones.models.backbones as B
from mmbackbones.convert import SOURCES, ConversionError, convert, convert_file, resolve
from mmbackbones.convert.core import expected_state

TOOL = osp.join('tools', 'convert_weights.py')
TOL = 1e-5  # max abs difference allowed, float32


# ----------------------------------------------------------------------------- helpers
def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so eval-mode parity means something."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BN statistic random (small, so deep nets stay in range)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return randomize_bn(model, seed)


def ours_from(result, **over) -> nn.Module:
    """Our backbone from the converted file's backbone config, every tap, strictly loaded."""
    cfg = {**result.backbone, **over}
    cls = getattr(B, cfg.pop('type').split('.', 1)[1])
    n = len(cls(out_indices=(-1,), **cfg).feature_info)
    model = cls(out_indices=tuple(range(n)), **cfg).eval()
    model.load_state_dict(result.state_dict, strict=True)
    return model


def hook_outputs(model: nn.Module, names: list[str], x: torch.Tensor) -> list[torch.Tensor]:
    outs: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: outs.__setitem__(n, o.clone())
        )
        for n in names
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [outs[n] for n in names]


def max_diff(ours: tuple, ref: list) -> float:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape, (a.shape, b.shape)
    return max((a - b).abs().max().item() for a, b in zip(ours, ref))


X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------ timm: numerical parity
# reference taps: the module outputs our feature_info taps correspond to (strides 2..32,
# then the head conv for the mobile families)
TIMM_TAPS = {
    'rexnet_100': ['features.0', 'features.2', 'features.4', 'features.10', 'features.15',
                   'features.16'],
    'mobilenetv3_large_100': ['blocks.0', 'blocks.1', 'blocks.2', 'blocks.4', 'blocks.5',
                              'blocks.6'],
    'mobilenetv3_small_100': ['bn1', 'blocks.0', 'blocks.1', 'blocks.3', 'blocks.4', 'blocks.5'],
    'efficientnet_b0': ['blocks.0', 'blocks.1', 'blocks.2', 'blocks.4', 'blocks.6', 'bn2'],
    'regnetx_004': ['stem', 's1', 's2', 's3', 's4'],
    'regnety_004': ['stem', 's1', 's2', 's3', 's4'],
    'resnext50_32x4d': ['act1', 'layer1', 'layer2', 'layer3', 'layer4'],
}  # fmt: skip


@pytest.mark.parametrize('name', sorted(TIMM_TAPS))
def test_timm_parity(name: str, tmp_path) -> None:
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    ref = randomize_bn(timm.create_model(name, pretrained=False)).eval()
    src = str(tmp_path / f'{name}.pth')
    torch.save(ref.state_dict(), src)
    req = resolve(SOURCES['timm'], model=name)
    dst = str(tmp_path / 'ours.pth')
    res = convert_file(src, dst, req, others=list(SOURCES.values()))
    dropped = [k for k, _, _ in res.dropped]
    assert dropped and all(
        k.startswith(('head.fc.', 'classifier.', 'conv_head.', 'fc.')) for k in dropped
    )
    ours = ours_from(res)
    with torch.no_grad():
        d = max_diff(ours(X), hook_outputs(ref, TIMM_TAPS[name], X))
    print(f'[measured] timm {name}: max|diff| {d:.1e}')  # visible with -s
    assert d <= TOL


# ----------------------------------------------------- torchvision: numerical parity
TV_TAPS = {
    'mobilenet_v3_large': [f'features.{i}' for i in (1, 3, 6, 12, 15, 16)],
    'mobilenet_v3_small': [f'features.{i}' for i in (0, 1, 3, 8, 11, 12)],
    'efficientnet_b0': [f'features.{i}' for i in (1, 2, 3, 5, 7, 8)],
    'regnet_y_400mf': ['stem'] + [f'trunk_output.block{i}' for i in range(1, 5)],
    'regnet_x_3_2gf': ['stem'] + [f'trunk_output.block{i}' for i in range(1, 5)],
    # torchvision's own rounding: converts to an AnyNet arch with its exact widths
    'regnet_x_400mf': ['stem'] + [f'trunk_output.block{i}' for i in range(1, 5)],
    'resnext50_32x4d': ['relu', 'layer1', 'layer2', 'layer3', 'layer4'],
}


@pytest.mark.parametrize('name', sorted(TV_TAPS))
def test_torchvision_parity(name: str, tmp_path) -> None:
    tvm = pytest.importorskip('torchvision.models')
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.manual_seed(0)
    ref = randomize_bn(getattr(tvm, name)(weights=None)).eval()
    src = str(tmp_path / f'{name}.pth')
    torch.save(ref.state_dict(), src)
    req = resolve(SOURCES['torchvision'], model=name)
    res = convert_file(src, str(tmp_path / 'ours.pth'), req)
    assert all(k.startswith(('classifier.', 'fc.')) for k, _, _ in res.dropped)
    ours = ours_from(res)
    extractor = create_feature_extractor(ref, return_nodes=TV_TAPS[name]).eval()
    with torch.no_grad():
        d = max_diff(ours(X), list(extractor(X).values()))
    print(f'[measured] torchvision {name}: max|diff| {d:.1e}')  # visible with -s
    assert d <= TOL


def test_expansion_layout_and_timm_width_rule() -> None:
    """feature_location='expansion' (SSDLite C4) gets the split expansion conv; timm's
    0.75 MobileNetV3 converts with its width rule."""
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    ref = randomize_bn(timm.create_model('mobilenetv3_large_075', pretrained=False)).eval()
    res = convert(
        ref.state_dict(), 'timm', model='mobilenetv3_large_075', feature_location='expansion'
    )
    assert res.backbone['feature_location'] == 'expansion'
    assert any(k.startswith('layers.b12_expand.') for k in res.state_dict)
    ours = ours_from(res)
    taps = ['blocks.0', 'blocks.1', 'blocks.2', 'blocks.5.0.bn1', 'blocks.5', 'blocks.6']
    assert max_diff(ours(X), hook_outputs(ref, taps, X)) <= TOL


# ---------------------------------------------------- clovaai: published naming rules
def _bn(prefix: str, bn: nn.Module) -> dict:
    return {f'{prefix}.{k}': v for k, v in bn.state_dict().items()}


def clovaai_state_dict(model: B.ReXNet) -> dict:
    """Our ReXNet as the authors' ``ReXNetV1`` / ``ReXNetV1_lite`` state dict.

    Written from rexnetv1.py / rexnetv1_lite.py: ``features`` = [conv, BN, act] stem, one
    ``LinearBottleneck`` per block, [conv, BN, act] head (v1: + pool); a block's ``out`` is
    v1: [conv, BN, Swish]? dw-conv, BN, SE?, ReLU6, conv, BN and lite: [conv, BN, ReLU6]?
    dw-conv, BN, ReLU6, conv, BN; SE ``fc`` = conv, BN, ReLU, conv, Sigmoid.
    """
    lite = model.arch['lite']
    L = model.layers
    sd = {'features.0.weight': L.stem.conv.weight, **_bn('features.1', L.stem.bn)}
    blocks = [m for n, m in L.named_children() if re.fullmatch(r'b\d+', n)]
    for i, blk in enumerate(blocks):
        mods: list = []  # the published ``out`` Sequential, activations as None
        if blk.expand is not None:
            mods += [blk.expand.conv, blk.expand.bn, None]
        mods += [blk.dw.conv, blk.dw.bn]
        if lite:
            mods += [None]
        elif blk.se is not None:
            mods += ['se']
        if not lite:
            mods += [None]  # ReLU6
        mods += [blk.project.conv, blk.project.bn]
        for p, m in enumerate(mods):
            pre = f'features.{3 + i}.out.{p}'
            if m == 'se':
                se = blk.se
                sd.update({f'{pre}.fc.0.weight': se.fc1.weight, f'{pre}.fc.0.bias': se.fc1.bias})
                sd.update(_bn(f'{pre}.fc.1', se.bn))
                sd.update({f'{pre}.fc.3.weight': se.fc2.weight, f'{pre}.fc.3.bias': se.fc2.bias})
            elif isinstance(m, nn.Conv2d):
                sd[f'{pre}.weight'] = m.weight
            elif m is not None:
                sd.update(_bn(pre, m))
    h = 3 + len(blocks)
    sd[f'features.{h}.weight'] = L.head.conv.weight
    sd.update(_bn(f'features.{h + 1}', L.head.bn))
    c = L.head.conv.out_channels
    if lite:  # output = conv(1280->1024, bias), BN, ReLU6, Dropout, conv
        sd.update(
            {'output.0.weight': torch.randn(1024, c, 1, 1), 'output.0.bias': torch.randn(1024)}
        )
        sd.update(_bn('output.1', nn.BatchNorm2d(1024)))
        sd.update(
            {'output.4.weight': torch.randn(1000, 1024, 1, 1), 'output.4.bias': torch.randn(1000)}
        )
    else:  # output = Dropout, conv
        sd.update(
            {'output.1.weight': torch.randn(1000, c, 1, 1), 'output.1.bias': torch.randn(1000)}
        )
    return {k: v.detach().clone() for k, v in sd.items()}


@pytest.mark.parametrize('arch', ['1.0', '1.3', 'lite-1.0', 'lite-1.5'])
def test_clovaai_round_trip(arch: str) -> None:
    ours = randomize(B.ReXNet(arch, out_indices=(0, 1, 2, 3, 4, 5))).eval()
    theirs = clovaai_state_dict(ours)
    # the published layout: 16 blocks at features.3..18, the head conv at features.19
    assert 'features.19.weight' in theirs and 'features.18.out.0.weight' in theirs
    assert ('features.3.out.2.fc.0.weight' in theirs) is False  # block 0 of v1 has no SE
    if arch == '1.0':
        assert 'features.6.out.5.fc.3.weight' in theirs  # first SE block: t=6, SE at out.5
        assert theirs['features.6.out.7.weight'].shape == (50, 228, 1, 1)  # project after ReLU6
    if arch == 'lite-1.0':
        assert theirs['features.4.out.6.weight'].shape[0] % 8 == 0
    res = convert(theirs, 'clovaai', 'ReXNet', arch)
    assert sorted(k for k, _, _ in res.dropped) == sorted(
        k for k in theirs if k.startswith('output.')
    )
    mine = ours.state_dict()
    assert res.state_dict.keys() == mine.keys()
    assert all(torch.equal(res.state_dict[k], mine[k]) for k in mine)
    back = ours_from(res)
    with torch.no_grad():
        assert max_diff(back(X), list(ours(X))) == 0
    assert res.meta['input']['color_order'] == 'RGB' and res.meta['bn_eps'] == 1e-5


def test_clovaai_lite_file_is_recognised() -> None:
    theirs = clovaai_state_dict(B.ReXNet('lite-1.3', out_indices=(5,)))
    with pytest.raises(ConversionError, match=r"clovaai 'rexnet_lite_1.3'.*--arch lite-1.3"):
        convert(theirs, 'clovaai', 'ReXNet', '1.3')


# ------------------------------------------------------ pycls: published naming rules
def pycls_anynet_state_dict(model: B.AnyNet) -> dict:
    """Our AnyNet/RegNet/ResNeXt as pycls's ``AnyNet`` state dict (anynet.py, blocks.py):
    ``stem.{conv,bn}``; ``s<i>.b<j>`` with ``proj`` + ``bn`` and ``f.{a,a_bn,b,b_bn,
    se.f_ex.0,se.f_ex.2,c,c_bn}``; ``head.fc``."""
    L = model.layers
    sd = {'stem.conv.weight': L.stem.conv.weight, **_bn('stem.bn', L.stem.bn)}
    for name, blk in L.named_children():
        m = re.fullmatch(r's(\d+)_b(\d+)', name)
        if not m:
            continue
        pre = f's{m[1]}.b{m[2]}'
        if blk.proj is not None:
            sd[f'{pre}.proj.weight'] = blk.proj.conv.weight
            sd.update(_bn(f'{pre}.bn', blk.proj.bn))
        for c in 'abc':
            sd[f'{pre}.f.{c}.weight'] = getattr(blk.f, c).conv.weight
            sd.update(_bn(f'{pre}.f.{c}_bn', getattr(blk.f, c).bn))
        if hasattr(blk.f, 'se'):
            for fc, idx in (('fc1', 0), ('fc2', 2)):
                sd[f'{pre}.f.se.f_ex.{idx}.weight'] = getattr(blk.f.se, fc).weight
                sd[f'{pre}.f.se.f_ex.{idx}.bias'] = getattr(blk.f.se, fc).bias
    w = model.feature_info[-1]['num_chs']
    sd.update({'head.fc.weight': torch.randn(1000, w), 'head.fc.bias': torch.randn(1000)})
    return {k: v.detach().clone() for k, v in sd.items()}


def pycls_effnet_state_dict(model: B.EfficientNet) -> dict:
    """Our EfficientNet as pycls's ``EffNet`` state dict (effnet.py): ``stem.{conv,bn}``;
    ``s<i>.b<j>.{exp,exp_bn,dwise,dwise_bn,se.f_ex.0,se.f_ex.2,lin_proj,lin_proj_bn}``;
    ``head.{conv,conv_bn,fc}``."""
    from mmbackbones.models.backbones.efficientnet import efficientnet_layout

    L = model.layers
    sd = {'stem.conv.weight': L.stem.conv.weight, **_bn('stem.bn', L.stem.bn)}
    _, cfgs, _ = efficientnet_layout(model.arch)
    counts: dict[int, int] = {}
    for i, cfg in enumerate(cfgs):
        counts[cfg.stage] = counts.get(cfg.stage, 0) + 1
        pre, blk = f's{cfg.stage}.b{counts[cfg.stage]}', getattr(L, f'b{i}')
        if blk.expand is not None:
            sd[f'{pre}.exp.weight'] = blk.expand.conv.weight
            sd.update(_bn(f'{pre}.exp_bn', blk.expand.bn))
        sd[f'{pre}.dwise.weight'] = blk.dw.conv.weight
        sd.update(_bn(f'{pre}.dwise_bn', blk.dw.bn))
        for fc, idx in (('fc1', 0), ('fc2', 2)):
            sd[f'{pre}.se.f_ex.{idx}.weight'] = getattr(blk.se, fc).weight
            sd[f'{pre}.se.f_ex.{idx}.bias'] = getattr(blk.se, fc).bias
        sd[f'{pre}.lin_proj.weight'] = blk.project.conv.weight
        sd.update(_bn(f'{pre}.lin_proj_bn', blk.project.bn))
    sd['head.conv.weight'] = L.head.conv.weight
    sd.update(_bn('head.conv_bn', L.head.bn))
    w = L.head.conv.out_channels
    sd.update({'head.fc.weight': torch.randn(1000, w), 'head.fc.bias': torch.randn(1000)})
    return {k: v.detach().clone() for k, v in sd.items()}


@pytest.mark.parametrize(
    'family,arch,model',
    [('RegNet', 'regnetx_400mf', 'RegNetX-400MF'), ('RegNet', 'regnety_400mf', 'RegNetY-400MF'),
     ('ResNeXt', '50_32x4d', 'X-50-32x4d'), ('EfficientNet', 'b0', 'EN-B0')],
)  # fmt: skip
def test_pycls_round_trip(family: str, arch, model: str | None, tmp_path) -> None:
    if model == 'X-50-32x4d':  # the preset resolves; the tensors: a shallower twin below
        assert resolve(SOURCES['pycls'], model=model).arch == arch
        arch, model = dict(depths=[3, 1, 1, 1]), None
    ours = randomize(getattr(B, family)(arch, out_indices=(-1,))).eval()
    make = pycls_effnet_state_dict if family == 'EfficientNet' else pycls_anynet_state_dict
    theirs = make(ours)
    if family == 'ResNeXt':  # X-50-32x4d: stage 1 block 1 projects 64 -> 256, groups 32
        assert theirs['s1.b1.proj.weight'].shape == (256, 64, 1, 1)
        assert theirs['s1.b1.f.b.weight'].shape == (128, 4, 3, 3)
    # pycls checkpoints: {'model_state': ...} (+ epoch, optimizer), often pre-1.6 format
    src = str(tmp_path / f'{model}.pyth')
    torch.save(
        {'epoch': 99, 'model_state': theirs, 'optimizer_state': {'state': {}}},
        src,
        _use_new_zipfile_serialization=False,
    )
    req = resolve(SOURCES['pycls'], family if model is None else None, arch, model=model)
    assert (req.family, req.arch) == (family, arch)
    res = convert_file(src, str(tmp_path / 'ours.pth'), req)
    assert [k for k, _, _ in res.dropped] == ['head.fc.weight', 'head.fc.bias']
    mine = ours.state_dict()
    assert res.state_dict.keys() == mine.keys()
    assert all(torch.equal(res.state_dict[k], mine[k]) for k in mine)
    assert res.meta['input'] == dict(
        color_order='BGR', mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395]
    )
    assert res.meta['data_preprocessor']['bgr_to_rgb'] is False
    if family == 'EfficientNet':  # pycls BN eps 1e-5, ours defaults to 1e-3
        assert res.backbone['norm_cfg']['eps'] == 1e-5
    # --rgb: the folded model on RGB input equals the original on BGR input
    rgb = convert_file(src, str(tmp_path / 'rgb.pth'), req, rgb=True)
    assert rgb.meta['input']['color_order'] == 'RGB' and rgb.meta['rgb_folded']
    assert rgb.meta['data_preprocessor'] == dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True
    )
    with torch.no_grad():
        folded, bgr = ours_from(rgb)(X), list(ours_from(res)(X.flip(1)))
    # the same sums in another order: float32 rounding relative to the activations' scale
    scale = max(1.0, max(t.abs().max().item() for t in bgr))
    assert max_diff(folded, bgr) <= TOL * scale


# ---------------------------------------------------------------- strict accounting
@pytest.fixture(scope='module')
def rexnet_sd() -> dict:
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    return randomize_bn(timm.create_model('rexnet_100', pretrained=False)).state_dict()


def test_partial_load_never_passes(rexnet_sd) -> None:
    missing = {k: v for k, v in rexnet_sd.items() if k != 'features.7.conv_dw.bn.weight'}
    with pytest.raises(
        ConversionError, match=r'1 of our keys missing \(first: layers\.b7\.dw\.bn\.weight'
    ):
        convert(missing, 'timm', 'ReXNet', '1.0')
    extra = {**rexnet_sd, 'features.3.extra.weight': torch.zeros(1)}
    with pytest.raises(
        ConversionError, match=r'fit no timm ReXNet layout \(first: features\.3\.extra'
    ):
        convert(extra, 'timm', 'ReXNet', '1.0')
    wrong = {**rexnet_sd, 'features.5.conv_pwl.conv.weight': torch.zeros(3, 3, 1, 1)}
    with pytest.raises(ConversionError, match=r'shape mismatches \(first: layers\.b5\.project'):
        convert(wrong, 'timm', 'ReXNet', '1.0')


def test_out_indices_writes_only_built_layers(rexnet_sd) -> None:
    res = convert(rexnet_sd, 'timm', 'ReXNet', '1.0', out_indices=(1, 2, 3, 4))
    assert res.backbone['out_indices'] == (1, 2, 3, 4)
    head = [k for k, _, why in res.dropped if why.startswith('layer not built')]
    assert head == [k for k in rexnet_sd if k.startswith('features.16.')]
    B.ReXNet('1.0').load_state_dict(res.state_dict, strict=True)  # the default taps


def test_wrong_arch_names_the_right_one() -> None:
    timm = pytest.importorskip('timm')
    with torch.device('meta'):
        sd = timm.create_model('rexnet_130', pretrained=False).state_dict()
    with pytest.raises(ConversionError) as e:
        convert(sd, 'timm', 'ReXNet', '1.0')
    msg = str(e.value)
    assert 'stem.conv.weight file (42, 3, 3, 3) vs ours (32, 3, 3, 3)' in msg
    assert "it looks like timm 'rexnet_130'" in msg and '--arch 1.3' in msg
    assert '\n' not in msg


def test_wrong_family_and_source_are_named() -> None:
    tvm = pytest.importorskip('torchvision.models')
    with torch.device('meta'):
        sd = tvm.mobilenet_v3_small(weights=None).state_dict()
    with pytest.raises(
        ConversionError, match=r"a torchvision file, torchvision 'mobilenet_v3_small'"
    ):
        convert(sd, 'timm', 'ReXNet', '1.0')


def test_tf_ports_are_refused() -> None:
    with pytest.raises(ConversionError, match="'same' .*padding"):
        resolve(SOURCES['timm'], model='tf_efficientnet_b0.ns_jft_in1k')
    with pytest.raises(ConversionError, match="'same' .*padding"):
        resolve(SOURCES['timm'], model='tf_mobilenetv3_large_100')
    # identical tensors: the PyTorch-native model must be named
    with pytest.raises(ConversionError, match='needs --model'):
        resolve(SOURCES['timm'], 'EfficientNet', 'b0')
    with pytest.raises(ConversionError, match='is EfficientNet'):
        resolve(SOURCES['timm'], 'EfficientNet', 'b1', model='efficientnet_b0')
    assert resolve(SOURCES['timm'], 'EfficientNet', 'b0', model='efficientnet_b0').bn_eps == 1e-5


@pytest.mark.slow
def test_every_preset_builds() -> None:
    # every published model of every source is one of our buildable archs
    for src in SOURCES.values():
        for name, p in src.presets.items():
            expected_state(p.family, p.arch, p.kwargs)
            assert p.family in src.mappers, (src.name, name)


@pytest.mark.slow
def test_every_published_model_converts(monkeypatch) -> None:
    """Every timm / torchvision model name in our tables: the reference's own state dict
    (built on the meta device) converts strictly, keys and shapes."""
    timm = pytest.importorskip('timm')
    tvm = pytest.importorskip('torchvision.models')
    from torchvision.models import regnet as tv_regnet

    real = tv_regnet.RegNet

    def regnet_on_meta(block_params, weights, progress, **kwargs):  # widths computed on CPU
        with torch.device('meta'):
            return real(block_params, **kwargs)

    monkeypatch.setattr(tv_regnet, '_regnet', regnet_on_meta)
    for source, make in (('timm', timm.create_model), ('torchvision', tvm.get_model)):
        for name in SOURCES[source].presets:
            if name.startswith('regnet_'):  # torchvision: widths on CPU, modules on meta
                ref = make(name, weights=None)
            else:
                with torch.device('meta'):
                    ref = make(name) if source == 'timm' else make(name, weights=None)
            res = convert(ref.state_dict(), source, model=name)
            assert res.dropped, name


def test_cli_constants_agree() -> None:
    # the CLI's argparse choices (kept there to answer --help without importing torch)
    import importlib.util

    spec = importlib.util.spec_from_file_location('convert_weights', osp.join(REPO, TOOL))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert set(cli.SOURCES) == set(SOURCES)
    from mmbackbones.convert import FAMILIES

    assert set(cli.FAMILIES) == set(FAMILIES)


def test_regnet_tables_match_timm() -> None:
    timm_regnet = pytest.importorskip('timm.models.regnet')
    from mmbackbones.convert import timm as conv_timm

    for name, p in conv_timm.PRESETS.items():
        if not name.startswith('regnet') or name.endswith('_tv'):
            continue
        cfg = timm_regnet.model_cfgs[name]
        arch = p.arch if isinstance(p.arch, dict) else B.RegNet.arch_settings[p.arch]
        assert (arch['w0'], arch['wa'], arch['wm'], arch['group_w'], arch['depth']) == (
            cfg.w0, cfg.wa, cfg.wm, cfg.group_size, cfg.depth
        ), name  # fmt: skip
        assert arch.get('se_ratio', 0.0) == cfg.se_ratio, name


# ------------------------------------------------------------- files and mmengine
def test_cli_and_pretrained_init(rexnet_sd, tmp_path) -> None:
    """The CLI end to end, then mmengine's Pretrained init in a detector-like wrapper: the
    backbone's init_cfg loads keys relative to the backbone."""
    from mmengine.model import BaseModule

    from mmbackbones.registry import MODELS

    src, dst = str(tmp_path / 'rexnet_100.safetensors'), str(tmp_path / 'ck' / 'rexnet.pth')
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in rexnet_sd.items()}, src)
    r = run_tool(
        [TOOL, src, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0'],
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert 'dropped head.fc.weight (1000, 1280): classifier' in r.stdout
    assert 'bgr_to_rgb=True' in r.stdout and 'strict load OK' in r.stdout
    ck = torch.load(dst, weights_only=True)  # plain data only
    assert ck['meta']['backbone'] == dict(type='mmbackbones.ReXNet', arch='1.0')
    assert ck['meta']['input']['color_order'] == 'RGB'

    class Detector(BaseModule):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = MODELS.build(
                dict(
                    type='mmbackbones.ReXNet',
                    arch='1.0',
                    init_cfg=dict(type='Pretrained', checkpoint=dst),
                )
            )

    det = Detector()
    det.init_weights()
    loaded = det.backbone.state_dict()
    assert 'layers.head.conv.weight' not in loaded  # not built: default out_indices
    assert all(torch.equal(v, ck['state_dict'][k]) for k, v in loaded.items())


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned > pwned.txt',))


def _run(argv: list[str], capsys) -> tuple[int, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location('convert_weights', osp.join(REPO, TOOL))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    return e.value.code, err


def _one_line_error(code: int, err: str) -> None:
    assert code == 2
    assert err.startswith('error: ') and err.count('\n') == 1, err
    assert 'Traceback' not in err


def test_bad_input_in_process(rexnet_sd, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = str(tmp_path / 'rexnet_100.pth')
    torch.save({'state_dict': rexnet_sd}, good)
    dst = str(tmp_path / 'out.pth')
    # wrong arch: names the file's arch
    code, err = _run(
        [good, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.5'], capsys
    )
    _one_line_error(code, err)
    assert "timm 'rexnet_100'" in err and '--arch 1.0' in err
    # wrong family
    code, err = _run([good, dst, '--source', 'timm', '--model', 'mobilenetv3_small_100'], capsys)
    _one_line_error(code, err)
    assert "timm 'rexnet_100'" in err
    # a pickle carrying code is refused, and never runs
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': rexnet_sd, 'x': _Evil()}, evil)
    code, err = _run(
        [evil, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0'], capsys
    )
    _one_line_error(code, err)
    assert 'refusing to load' in err and not osp.exists(tmp_path / 'pwned.txt')
    legacy = str(tmp_path / 'evil_legacy.pth')
    torch.save({'x': _Evil()}, legacy, _use_new_zipfile_serialization=False)
    code, err = _run(
        [legacy, dst, '--source', 'clovaai', '--backbone', 'ReXNet', '--arch', '1.0'], capsys
    )
    _one_line_error(code, err)
    assert 'refusing to load' in err and not osp.exists(tmp_path / 'pwned.txt')
    # truncated files: zip, legacy, safetensors
    for fmt in ('zip', 'legacy'):
        full = str(tmp_path / f'full_{fmt}.pth')
        torch.save(rexnet_sd, full, _use_new_zipfile_serialization=fmt == 'zip')
        cut = str(tmp_path / f'cut_{fmt}.pth')
        with open(full, 'rb') as f, open(cut, 'wb') as g:
            g.write(f.read()[: os.path.getsize(full) // 2])
        code, err = _run(
            [cut, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0'], capsys
        )
        _one_line_error(code, err)
        assert 'truncated' in err or 'corrupt' in err
    from safetensors.torch import save_file

    st = str(tmp_path / 'w.safetensors')
    save_file({k: v.contiguous() for k, v in rexnet_sd.items()}, st)
    with open(st, 'r+b') as f:
        f.truncate(os.path.getsize(st) // 2)
    code, err = _run(
        [st, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0'], capsys
    )
    _one_line_error(code, err)
    # unknown source, unknown model, missing file, no state dict
    for argv, what in [
        ([good, dst, '--source', 'keras'], 'invalid choice'),
        ([good, dst, '--source', 'timm', '--model', 'vit_base'], 'unknown timm model'),
        ([good, dst, '--source', 'timm', '--model', 'tf_efficientnet_b3'], "'same'"),
        ([str(tmp_path / 'nope.pth'), dst, '--source', 'timm'], 'does not exist'),
        ([good, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '9.9'], 'unknown arch'),
        ([good, dst, '--source', 'clovaai', '--backbone', 'RegNet', '--arch', 'regnetx_400mf'],
         'publishes no RegNet'),
        ([good, dst, '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0', '--key', 'ema'],
         "no dict entry 'ema'"),
    ]:  # fmt: skip
        code, err = _run(argv, capsys)
        _one_line_error(code, err)
        assert what in err, err
    assert not osp.exists(dst)


def test_bad_input_subprocess(tmp_path) -> None:
    """As a user sees it: a fresh process, one line, exit code 2, no traceback."""
    cut = str(tmp_path / 'cut.pth')
    with open(cut, 'wb') as f:
        f.write(b'PK\x03\x04' + b'\x00' * 100)  # a zip header, then nothing
    for argv in (
        [cut, 'out.pth', '--source', 'tensorflow', '--backbone', 'ReXNet', '--arch', '1.0'],
        [cut, 'out.pth', '--source', 'timm', '--backbone', 'ReXNet', '--arch', '1.0'],
    ):
        r = run_tool([osp.join(REPO, TOOL), *argv], cwd=str(tmp_path), timeout=300)
        assert r.returncode == 2 and r.stdout == ''
        assert r.stderr.startswith('error: ') and r.stderr.count('\n') == 1, r.stderr

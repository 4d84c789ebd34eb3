"""Weight conversion (``mmbackbones.convert``, ``tools/convert_weights.py``).

* timm and torchvision (installed): the reference is built with random weights and
  randomised BN statistics, saved, converted (library and CLI), loaded strictly into our
  backbone, and every tap is compared in eval mode with the reference's intermediate features
  (forward hooks on timm's modules, torchvision's ``create_feature_extractor``).
* clovaai/rexnet and pycls (no package): ``tests/manifests/`` holds the key -> shape list of
  published files (rexnetv1_1.0.pth, rexnet_lite_1.0.pth, pycls RegNetX-3.2GF, RegNetY-400MF,
  X-50-32x4d, EN-B0), recorded once from the authors' own model classes. A file of random
  tensors of those shapes, written as the authors write it, must convert strictly, with
  hand-checked anchors landing in the right layers, and fail when one tensor is off.
* Bad input: one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import json
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
from mmbackbones.convert.target import expected_state
from mmbackbones.models import backbone_families

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


# ------------------------------------- clovaai and pycls: manifests of the published files
# tests/manifests/<source>_<model>.json: every key and shape of a file the authors publish,
# recorded from the authors' own model classes (clovaai/rexnet rexnetv1.py /
# rexnetv1_lite.py, facebookresearch/pycls anynet.py / regnet.py / effnet.py; see each
# file's "reference" and "obtained"). No package to install, no network: random tensors of
# those shapes stand in for the weights.
MANIFESTS = osp.join(osp.dirname(osp.abspath(__file__)), 'manifests')
MANIFEST_NAMES = sorted(f[: -len('.json')] for f in os.listdir(MANIFESTS) if f.endswith('.json'))

#: What the authors' code makes their classifier (the tensors a conversion must drop):
#: clovaai ``self.output``, pycls ``AnyHead.fc`` / ``EffHead.fc``.
CLASSIFIER_PREFIX = {'clovaai': 'output.', 'pycls': 'head.fc.'}

#: Per manifest, keys of the authors' module tree and the layer of ours each must land in,
#: read off their code by hand (positions in clovaai's Sequentials; pycls's stage/block
#: names) and our layer names (``layers.<stem|b<i>|s<i>_b<j>|head>``). The first pair is a
#: conv weight, the second a BatchNorm entry (the negative tests change or drop them).
ANCHORS = {
    # features = [conv, BN, SiLU] stem, 16 blocks at 3..18, head conv at 19 (BN 20); block 3
    # (features.6, t=6, the first with SE): out = [conv, BN, SiLU, dw, BN, SE, ReLU6, conv, BN]
    'clovaai_rexnetv1_1.0': {
        'features.6.out.7.weight': 'layers.b3.project.conv.weight',
        'features.6.out.8.running_var': 'layers.b3.project.bn.running_var',
        'features.0.weight': 'layers.stem.conv.weight',
        'features.19.weight': 'layers.head.conv.weight',
        'features.20.bias': 'layers.head.bn.bias',
        'features.3.out.0.weight': 'layers.b0.dw.conv.weight',  # t=1: no expansion
        'features.6.out.0.weight': 'layers.b3.expand.conv.weight',
        'features.6.out.5.fc.0.weight': 'layers.b3.se.fc1.weight',
        'features.6.out.5.fc.1.running_mean': 'layers.b3.se.bn.running_mean',
        'features.6.out.5.fc.3.bias': 'layers.b3.se.fc2.bias',
    },
    # lite: no SE, ReLU6 after the dw conv: out = [conv, BN, ReLU6, dw, BN, ReLU6, conv, BN]
    'clovaai_rexnet_lite_1.0': {
        'features.4.out.6.weight': 'layers.b1.project.conv.weight',
        'features.4.out.4.running_var': 'layers.b1.dw.bn.running_var',
        'features.4.out.3.weight': 'layers.b1.dw.conv.weight',
        'features.4.out.0.weight': 'layers.b1.expand.conv.weight',
        'features.19.weight': 'layers.head.conv.weight',
    },
    'pycls_RegNetX-3.2GF': {
        's4.b1.f.b.weight': 'layers.s4_b1.f.b.conv.weight',
        's2.b3.f.c_bn.running_var': 'layers.s2_b3.f.c.bn.running_var',
        'stem.conv.weight': 'layers.stem.conv.weight',
        's1.b1.proj.weight': 'layers.s1_b1.proj.conv.weight',
        's1.b1.bn.weight': 'layers.s1_b1.proj.bn.weight',
    },
    'pycls_RegNetY-400MF': {
        's2.b1.f.se.f_ex.0.weight': 'layers.s2_b1.f.se.fc1.weight',
        's3.b2.f.a_bn.running_var': 'layers.s3_b2.f.a.bn.running_var',
        's2.b1.f.se.f_ex.2.bias': 'layers.s2_b1.f.se.fc2.bias',
        's4.b1.proj.weight': 'layers.s4_b1.proj.conv.weight',
    },
    'pycls_X-50-32x4d': {
        's3.b6.f.b.weight': 'layers.s3_b6.f.b.conv.weight',
        's4.b3.f.c_bn.running_var': 'layers.s4_b3.f.c.bn.running_var',
        's1.b1.proj.weight': 'layers.s1_b1.proj.conv.weight',
        'stem.bn.running_mean': 'layers.stem.bn.running_mean',
    },
    # stages s1..s7 of 1, 2, 2, 3, 3, 4, 1 blocks: our b0..b15 in order
    'pycls_EN-B0': {
        's7.b1.lin_proj.weight': 'layers.b15.project.conv.weight',
        's2.b1.exp_bn.running_var': 'layers.b1.expand.bn.running_var',
        's1.b1.dwise.weight': 'layers.b0.dw.conv.weight',
        's4.b3.se.f_ex.0.weight': 'layers.b7.se.fc1.weight',
        's6.b4.dwise_bn.bias': 'layers.b14.dw.bn.bias',
        'head.conv.weight': 'layers.head.conv.weight',
        'head.conv_bn.running_var': 'layers.head.bn.running_var',
    },
}


def load_manifest(name: str) -> dict:
    with open(osp.join(MANIFESTS, f'{name}.json')) as f:
        return json.load(f)


def manifest_state_dict(manifest: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the manifest's keys and shapes (BN variances positive)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in manifest['tensors'].items():
        if key.endswith('.num_batches_tracked'):
            sd[key] = torch.randint(1, 10**9, (), generator=g)
        elif key.endswith('.running_var'):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.1
    return sd


def fingerprint(t: torch.Tensor) -> tuple:
    return tuple(t.shape), t.double().sum().item(), t.double().abs().sum().item()


def save_published(manifest: dict, sd: dict, path: str) -> None:
    """Write ``sd`` as the authors' file is written: pre-1.6 torch format (2020), pycls
    wrapping it in its checkpoint dict."""
    obj = sd
    if manifest['container'] == 'model_state':  # pycls save_checkpoint
        obj = {'epoch': 99, 'model_state': sd, 'optimizer_state': {'state': {}}, 'cfg': ''}
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def test_manifests_describe_published_files() -> None:
    assert {n.split('_', 1)[0] for n in MANIFEST_NAMES} == {'clovaai', 'pycls'}
    assert set(ANCHORS) == set(MANIFEST_NAMES)
    for name in MANIFEST_NAMES:
        m = load_manifest(name)
        assert name == f'{m["source"]}_{m["model"]}'
        assert SOURCES[m['source']].find(m['model']) is not None, name
        assert re.search(r'@ [0-9a-f]{40}', m['reference']), name
        assert m['file'].endswith(('.pth', '.pyth')) and m['obtained'], name
        assert set(ANCHORS[name]) <= set(m['tensors']), name
        assert all(isinstance(s, list) for s in m['tensors'].values()), name


@pytest.mark.parametrize('name', MANIFEST_NAMES)
def test_published_file_converts_strictly(name: str, tmp_path) -> None:
    """The published file's every tensor is converted once or dropped as the classifier, the
    result loads strictly into the backbone the model name resolves to, and the anchors land
    where the authors' module tree says."""
    m = load_manifest(name)
    theirs = manifest_state_dict(m)
    src = str(tmp_path / m['file'])
    save_published(m, theirs, src)
    req = resolve(SOURCES[m['source']], model=m['model'])
    res = convert_file(src, str(tmp_path / 'ours.pth'), req, others=list(SOURCES.values()))
    assert res.meta['src_state_dict'] == (
        "['model_state']" if m['container'] else 'top level'
    )  # fmt: skip
    classifier = sorted(k for k in theirs if k.startswith(CLASSIFIER_PREFIX[m['source']]))
    assert classifier and sorted(k for k, _, _ in res.dropped) == classifier
    assert len(res.state_dict) == len(theirs) - len(classifier)
    # every tensor kept, once, untouched: the converted values are the file's values
    source_of = {fingerprint(v): k for k, v in theirs.items()}
    assert len(source_of) == len(theirs)  # random: no two alike
    kept = sorted(source_of[fingerprint(v)] for v in res.state_dict.values())
    assert kept == sorted(k for k in theirs if k not in classifier)
    for their_key, our_key in ANCHORS[name].items():
        assert torch.equal(res.state_dict[our_key], theirs[their_key]), (their_key, our_key)
    model = ours_from(res)  # strict=True, every layer
    assert set(model.state_dict()) == set(res.state_dict)
    assert res.meta['bn_eps'] == 1e-5 and res.meta['model'] == m['model']


@pytest.mark.parametrize('name', MANIFEST_NAMES)
def test_published_file_with_a_wrong_tensor_fails(name: str) -> None:
    """One tensor of another shape, or one missing: the converter's error, naming ours."""
    m = load_manifest(name)
    theirs = manifest_state_dict(m)
    (conv, our_conv), (bn, our_bn) = list(ANCHORS[name].items())[:2]
    wider = theirs[conv].shape[0] + 8
    bad = {**theirs, conv: torch.zeros(wider, *theirs[conv].shape[1:])}
    shape = rf'1 shape mismatches \(first: {re.escape(our_conv)} file \({wider}, '
    with pytest.raises(ConversionError, match=shape):
        convert(bad, m['source'], model=m['model'])
    missing = {k: v for k, v in theirs.items() if k != bn}
    gone = rf'1 of our keys missing \(first: {re.escape(our_bn)}\)'
    with pytest.raises(ConversionError, match=gone):
        convert(missing, m['source'], model=m['model'])


def test_pycls_file_input_convention_and_rgb_fold(tmp_path) -> None:
    """pycls weights expect BGR (meta, data_preprocessor); --rgb folds the stem conv so the
    model on RGB input computes what the original computes on BGR input."""
    m = load_manifest('pycls_EN-B0')
    src = str(tmp_path / m['file'])
    save_published(m, manifest_state_dict(m), src)
    req = resolve(SOURCES['pycls'], model='EN-B0')
    assert (req.family, req.arch) == ('EfficientNet', 'b0')
    res = convert_file(src, str(tmp_path / 'ours.pth'), req)
    assert res.meta['input'] == dict(
        color_order='BGR', mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395]
    )
    assert res.meta['data_preprocessor']['bgr_to_rgb'] is False
    assert res.backbone['norm_cfg']['eps'] == 1e-5  # pycls BN eps; ours defaults to 1e-3
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


def test_clovaai_file_without_bn_counters() -> None:
    """Files saved without BatchNorm num_batches_tracked convert; the counters are filled."""
    m = load_manifest('clovaai_rexnetv1_1.0')
    theirs = {
        k: v for k, v in manifest_state_dict(m).items() if not k.endswith('num_batches_tracked')
    }
    res = convert(theirs, 'clovaai', 'ReXNet', '1.0')
    assert any('num_batches_tracked counters with 0' in n for n in res.notes)
    ours_from(res)


def test_clovaai_lite_file_is_recognised() -> None:
    theirs = manifest_state_dict(load_manifest('clovaai_rexnet_lite_1.0'))
    with pytest.raises(ConversionError, match=r"clovaai 'rexnet_lite_1.0'.*--arch lite-1.0"):
        convert(theirs, 'clovaai', 'ReXNet', '1.0')


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


def test_tf_ports_need_their_model_name() -> None:
    # timm's TensorFlow ports convert with TF's padding and BN eps (parity:
    # test_convert_tf.py); the tensors alone cannot tell them from the PyTorch-native ones
    req = resolve(SOURCES['timm'], model='tf_efficientnet_b0.ns_jft_in1k')
    assert (req.kwargs, req.bn_eps) == (dict(padding='tf_same'), 1e-3)
    req = resolve(SOURCES['timm'], model='tf_mobilenetv3_large_100')
    assert req.kwargs['padding'] == 'tf_same' and req.bn_eps == 1e-3
    with pytest.raises(ConversionError, match="'minimal' variants"):
        resolve(SOURCES['timm'], model='tf_mobilenetv3_large_minimal_100')
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


def test_sources_name_registered_families() -> None:
    for src in SOURCES.values():
        assert set(src.mappers) <= set(backbone_families()), src.name
        assert {p.family for p in src.presets.values()} <= set(src.mappers), src.name


def test_cli_choices_follow_the_registry(capsys) -> None:
    cli = _cli()
    for family in backbone_families():
        args = cli.parse_args(['a.pth', 'b.pth', '--source', 'pycls', '--backbone', family])
        assert args.backbone == family
    for source in SOURCES:
        assert cli.parse_args(['a.pth', 'b.pth', '--source', source]).source == source
    with pytest.raises(SystemExit) as e:
        cli.parse_args(['a.pth', 'b.pth', '--source', 'timm', '--backbone', 'ResNet'])
    _one_line_error(e.value.code, capsys.readouterr().err)


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


def _cli():
    """``tools/convert_weights.py`` as a module (the CLI in this process)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location('convert_weights', osp.join(REPO, TOOL))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        _cli().main(argv)
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
        ([good, dst, '--source', 'timm', '--model', 'tf_mobilenetv3_small_minimal_100'],
         'minimal'),
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

"""TensorFlow-trained weights and the ImageNet classifier in the converter.

* ``--source efficientnet_pytorch``: the package's reference models (``efficientnet_pytorch``
  for B0-B8, its Lite fork ``efficientnet_lite_pytorch`` for Lite0-4, the class the Lite0
  weights package was made for), random weights and BN statistics, against our backbone on
  every tap; every model name's state dict converts strictly.
* timm's ``tf_*`` ports (``padding='tf_same'``) against timm's ``features_only`` model (and
  the full model for the one tap it does not return), on an even and an odd input size.
* ``--classifier``: the written file loads strictly into ``ImageClassifier(meta['backbone'],
  meta['num_classes'])`` and gives the reference model's logits; ``meta['preprocess']``.
"""

from __future__ import annotations

import os.path as osp

import pytest
import torch
import torch.nn as nn
from conftest import REPO, run_tool
from helpers import randomize_bn, timm_model

import mmbackbones.models.backbones as B
from mmbackbones.convert import SOURCES, ConversionError, convert, convert_file, resolve
from mmbackbones.models import ImageClassifier

TOL = 1e-4  # max abs difference allowed on every tap (the bound)
X_EVEN = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
X_ODD = torch.randn(1, 3, 67, 93, generator=torch.Generator().manual_seed(2))


def _ours(result, **over) -> nn.Module:
    """Our backbone from the conversion's config, every tap, strictly loaded."""
    cfg = {**result.backbone, **over}
    cls = getattr(B, cfg.pop('type').split('.', 1)[1])
    n = len(cls(out_indices=(-1,), **cfg).feature_info)
    model = cls(out_indices=tuple(range(n)), **cfg).eval()
    model.load_state_dict(result.state_dict, strict=True)
    return model


def _max_diff(ours, ref) -> float:
    assert [tuple(a.shape) for a in ours] == [tuple(b.shape) for b in ref]
    return max((a - b).abs().max().item() for a, b in zip(ours, ref))


# ------------------------------------------------------------- efficientnet_pytorch
def _package(name: str) -> nn.Module:
    """The package's model of ``name``: B* from efficientnet_pytorch, Lite* from its fork."""
    mod = 'efficientnet_lite_pytorch' if 'lite' in name else 'efficientnet_pytorch'
    pkg = pytest.importorskip(mod)
    return pkg.EfficientNet.from_name(name.replace('adv-', ''))


def _package_taps(ref: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The package's endpoints (its ``extract_endpoints``, which the Lite fork lacks): the
    last block output at each reduction, the last block's, then the head conv's."""
    outs = []
    h = ref._swish(ref._bn0(ref._conv_stem(x)))
    prev = h
    for block in ref._blocks:
        h = block(h, drop_connect_rate=None)
        if prev.shape[2] > h.shape[2]:
            outs.append(prev)
        prev = h
    return [*outs, h, ref._swish(ref._bn1(ref._conv_head(h)))]


@pytest.mark.parametrize('name', ['efficientnet-b0', 'efficientnet-lite0'])
def test_efficientnet_pytorch_parity(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    ref = randomize_bn(_package(name)).eval()
    src = str(tmp_path / f'{name}.pth')
    torch.save(ref.state_dict(), src)
    req = resolve(SOURCES['efficientnet_pytorch'], model=name)
    res = convert_file(src, str(tmp_path / 'ours.pth'), req, others=list(SOURCES.values()))
    assert res.backbone['padding'] == 'tf_same' and res.meta['bn_eps'] == 1e-3
    assert [k for k, _, _ in res.dropped] == ['_fc.weight', '_fc.bias']
    ours = _ours(res)
    # the package pads statically for its 224 input: any multiple of 32 pads alike
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        d = max(_max_diff(ours(t), _package_taps(ref, t)) for t in (X_EVEN, x))
        # the same weights with PyTorch's symmetric padding are far off
        off = _max_diff(_ours(res, padding='symmetric')(X_EVEN), _package_taps(ref, X_EVEN))
    print(f'[measured] efficientnet_pytorch {name}: max|diff| {d:.1e} (symmetric: {off:.1e})')
    assert d <= TOL and off > 100 * TOL


def test_efficientnet_pytorch_names_and_every_model_converts() -> None:
    """Every model name of the package (``EfficientNet.from_name``) converts strictly, keys
    and shapes; B needs --model, and the input conventions of the three kinds of file."""
    src = SOURCES['efficientnet_pytorch']
    for name in src.presets:
        if name in ('efficientnet-l2', 'adv-efficientnet-b8'):
            continue  # the largest: efficientnet-b8 stands for the arithmetic
        if name.startswith('adv-') and name != 'adv-efficientnet-b0':
            continue  # the same tensors as efficientnet-b*
        with torch.device('meta'):
            ref = _package(name)
        res = convert(ref.state_dict(), 'efficientnet_pytorch', model=name)
        assert res.dropped, name
    with pytest.raises(ConversionError, match='needs --model'):
        resolve(src, 'EfficientNet', 'b0')
    assert resolve(src, model='efficientnet-lite0').preset.input.mean == (127.0,) * 3
    assert resolve(src, model='adv-efficientnet-b3').preset.input.std == (127.5,) * 3
    assert resolve(src, model='efficientnet-b3').preset.input is None  # ImageNet's


# ------------------------------------------------------------------ timm tf_* ports
# taps timm's features_only model does not return: our index -> the full model's module
TF_EXTRA = {
    'tf_efficientnet_b0': {5: 'bn2'},  # the head conv (+ BN, act)
    'tf_mobilenetv3_large_100': {4: 'blocks.5'},  # features_only's /32 tap is the head
}


@pytest.mark.parametrize('name', sorted(TF_EXTRA))
def test_timm_tf_ports_parity(name: str) -> None:
    torch.manual_seed(0)
    full = randomize_bn(timm_model(name)).eval()
    feat = timm_model(name, features_only=True).eval()
    feat.load_state_dict({k: full.state_dict()[k] for k in feat.state_dict()}, strict=True)
    res = convert(full.state_dict(), 'timm', model=name)
    assert res.backbone['padding'] == 'tf_same' and res.meta['bn_eps'] == 1e-3
    ours = _ours(res)
    extra = TF_EXTRA[name]
    for x in (X_EVEN, X_ODD):
        got: dict[int, torch.Tensor] = {}
        hooks = [
            full.get_submodule(m).register_forward_hook(
                lambda mod, i, o, t=t, got=got: got.__setitem__(t, o)
            )
            for t, m in extra.items()
        ]
        with torch.no_grad():
            mine, taps = ours(x), list(feat(x))
            full(x)
        for h in hooks:
            h.remove()
        ref = [got[t] if t in extra else taps.pop(0) for t in range(len(mine))]
        d = _max_diff(mine, ref)
        print(f'[measured] timm {name} {tuple(x.shape)}: max|diff| {d:.1e}')
        assert d <= TOL


def test_timm_input_conventions_follow_pretrained_cfg() -> None:
    """The colour statistics our timm presets record are timm's ``pretrained_cfg`` ones, for
    every published tag of every model name we convert."""
    timm = pytest.importorskip('timm')
    from timm.models import get_pretrained_cfg

    src = SOURCES['timm']
    checked = 0
    for name in {n.split('.')[0] for n in src.presets}:
        for tagged in timm.list_pretrained(name + '.*'):
            if tagged.split('.')[0] != name:
                continue
            preset = src.find(tagged)[1]
            inp = preset.input or src.input
            cfg = get_pretrained_cfg(tagged)
            assert inp.mean == pytest.approx([m * 255 for m in cfg.mean]), tagged
            assert inp.std == pytest.approx([s * 255 for s in cfg.std]), tagged
            checked += 1
    assert checked > 100


# ------------------------------------------------------------------------ --classifier
CLASSIFIER_CASES = [
    ('timm', 'tf_efficientnet_b0'),
    ('timm', 'mobilenetv3_large_100'),  # conv_head is the classifier's hidden layer
    ('timm', 'rexnet_100'),  # a linear layer into our 1x1 conv
    ('torchvision', 'regnet_y_400mf'),
    ('efficientnet_pytorch', 'efficientnet-b0'),
]


def _reference(source: str, name: str) -> nn.Module:
    if source == 'timm':
        return timm_model(name)
    if source == 'torchvision':
        tvm = pytest.importorskip('torchvision.models')
        return tvm.get_model(name, weights=None)
    return _package(name)


@pytest.mark.parametrize('source,name', CLASSIFIER_CASES)
def test_classifier_gives_the_reference_logits(source: str, name: str, tmp_path) -> None:
    torch.manual_seed(0)
    ref = randomize_bn(_reference(source, name)).eval()
    # keys sorted as a safetensors file lists them (timm MobileNetV3: classifier first)
    src = str(tmp_path / 'src.pth')
    torch.save(dict(sorted(ref.state_dict().items())), src)
    dst = str(tmp_path / 'cls.pth')
    res = convert_file(src, dst, resolve(SOURCES[source], model=name), classifier=True)
    assert res.dropped == [] and res.meta['num_classes'] == 1000
    ckpt = torch.load(dst, weights_only=True)
    meta = ckpt['meta']
    model = ImageClassifier(meta['backbone'], num_classes=meta['num_classes']).eval()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    with torch.no_grad():
        d = (model(X_EVEN) - ref(X_EVEN)).abs().max().item()
    assert d <= TOL, (name, d)
    pre = meta['preprocess']
    assert set(pre) == {'input_size', 'resize', 'interpolation', 'color_order', 'mean', 'std'}
    assert pre['color_order'] == 'RGB' and pre['resize'] > pre['input_size'] >= 224


def test_classifier_preprocess_by_source() -> None:
    pytest.importorskip('timm')
    src = SOURCES['efficientnet_pytorch']
    # the authors' evaluation: centre crop size / (size + 32), bicubic, at the model's size
    t = src.eval_transform('efficientnet-b3', src.presets['efficientnet-b3'])
    assert (t.size, t.resize, t.interpolation) == (300, 332, 'bicubic')
    # timm's pretrained_cfg: tf_efficientnet_b3 is evaluated at 300 with crop_pct 0.904
    timm_src = SOURCES['timm']
    t = timm_src.eval_transform('tf_efficientnet_b3', timm_src.presets['tf_efficientnet_b3'])
    assert (t.size, t.resize, t.interpolation) == (300, int(300 / 0.904), 'bicubic')


def test_without_classifier_nothing_changes(tmp_path) -> None:
    ref = timm_model('efficientnet_b0', device='meta')
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in ref.state_dict().items()}
    plain = convert(sd, 'timm', model='efficientnet_b0')
    assert all(k.startswith('layers.') for k in plain.state_dict)
    assert 'preprocess' not in plain.meta and 'num_classes' not in plain.meta
    assert [k for k, _, _ in plain.dropped] == ['classifier.weight', 'classifier.bias']
    full = convert(sd, 'timm', model='efficientnet_b0', classifier=True)
    assert {k[len('backbone.') :] for k in full.state_dict if k.startswith('backbone.')} == set(
        plain.state_dict
    )
    with pytest.raises(ConversionError, match='needs every layer'):
        convert(sd, 'timm', model='efficientnet_b0', classifier=True, out_indices=(1, 2))
    no_head = {k: v for k, v in sd.items() if not k.startswith('classifier.')}
    with pytest.raises(ConversionError, match='no classifier'):
        convert(no_head, 'timm', model='efficientnet_b0', classifier=True)
    wrong = {**sd, 'classifier.weight': torch.zeros(1000, 1000)}
    with pytest.raises(ConversionError, match='does not fit'):
        convert(wrong, 'timm', model='efficientnet_b0', classifier=True)


@pytest.mark.slow  # a fresh process: about 10 s
def test_cli_classifier(tmp_path) -> None:
    torch.manual_seed(0)
    ref = _package('efficientnet-lite0').eval()
    src = str(tmp_path / 'lite0.pth')
    torch.save(ref.state_dict(), src)
    dst = str(tmp_path / 'ours.pth')
    r = run_tool(
        [osp.join(REPO, 'tools', 'convert_weights.py'), src, dst, '--source',
         'efficientnet_pytorch', '--model', 'efficientnet-lite0', '--classifier'],
        cwd=str(tmp_path), timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert 'classifier: 1000 classes; evaluate at 224x224' in r.stdout
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['backbone']['arch'] == 'lite0' and meta['preprocess']['mean'] == [127.0] * 3

"""Weight URIs (``mmbackbones.convert.uri*``): published weights named in a config, fetched
into the ecosystem's cache and converted on load; settings the weights need; every config's
weights tied to the converter.

No network: the caches are laid out in a temp dir as the ecosystem lays them out, holding
reference models with random weights.

* Hugging Face cache (``timm://``): ``<HF_HUB_CACHE>/models--timm--<hub name>/refs/main`` ->
  ``snapshots/<commit>/`` with what timm's own ``save_for_hf`` writes (``model.safetensors``
  or ``pytorch_model.bin``, and ``config.json``); offline as with ``HF_HUB_OFFLINE=1``.
* ``TORCH_HOME/hub/checkpoints/<published file name>`` (``tv://``: torchvision's
  ``state_dict()``; ``pycls://`` / ``clovaai://``: files of the published keys and shapes,
  ``tests/manifests/``, written as the authors write them).

The loaded backbone must reproduce the reference model's features (timm / torchvision,
every tap) or the file's tensors (pycls / clovaai).
"""

from __future__ import annotations

import copy
import hashlib
import os.path as osp
import re
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO, run_tool
from test_configs import NAMES, _build, _load
from test_convert import (
    ANCHORS,
    TIMM_TAPS,
    TV_TAPS,
    hook_outputs,
    load_manifest,
    manifest_state_dict,
    max_diff,
    randomize_bn,
    save_published,
)

from mmbackbones.convert import SOURCES, convert_file, resolve
from mmbackbones.convert.uri import (
    CLOVAAI_FILES,
    PYCLS_FILES,
    SCHEMES,
    WeightsURIError,
    default_checkpoint,
    is_weights_uri,
    resolve_uri,
)
from mmbackbones.convert.uri_check import WeightsSettingsError, check_config
from mmbackbones.convert.uri_fetch import WeightsNotFoundError, load_uri
from mmbackbones.registry import MODELS

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
TOL = 1e-5


# ----------------------------------------------------------------------------- caches
@pytest.fixture
def caches(tmp_path, monkeypatch) -> SimpleNamespace:
    """Empty Hugging Face and torch caches in ``tmp_path``, downloads off (as
    ``HF_HOME=... HF_HUB_OFFLINE=1 TORCH_HOME=...`` before the run)."""
    from huggingface_hub import constants

    hf, torch_home = tmp_path / 'hf' / 'hub', tmp_path / 'torch'
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hf))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    return SimpleNamespace(hf=hf, torch=torch_home / 'hub' / 'checkpoints')


def hf_snapshot(hf_cache, hub_name: str):
    """The snapshot folder of ``timm/<hub name>`` at a (made-up) commit that ``refs/main``
    points at: the Hugging Face cache layout."""
    repo = hf_cache / f'models--timm--{hub_name}'
    commit = hashlib.sha1(hub_name.encode()).hexdigest()
    snap = repo / 'snapshots' / commit
    snap.mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(commit)
    return snap


def timm_reference(hf_cache, hub_name: str, safetensors: bool = True) -> torch.nn.Module:
    """A timm model with random weights, saved into the HF cache as timm publishes it."""
    timm = pytest.importorskip('timm')
    from timm.models import save_for_hf

    torch.manual_seed(0)
    ref = randomize_bn(timm.create_model(hub_name, pretrained=False)).eval()
    save_for_hf(ref, hf_snapshot(hf_cache, hub_name), safe_serialization=safetensors)
    return ref


def torchvision_reference(torch_cache, uri: str) -> torch.nn.Module:
    """A torchvision model with random weights, saved where torchvision caches its file."""
    tvm = pytest.importorskip('torchvision.models')
    w = resolve_uri(uri)
    torch.manual_seed(0)
    ref = randomize_bn(getattr(tvm, w.model)(weights=None)).eval()
    torch_cache.mkdir(parents=True, exist_ok=True)
    torch.save(ref.state_dict(), torch_cache / w.files[0])
    return ref


def all_taps(family: str, arch: str, **kw) -> torch.nn.Module:
    """Our backbone with every tap, from a config dict (with its ``init_cfg``)."""
    n = len(MODELS.build(dict(type=f'mmbackbones.{family}', arch=arch, **kw)).feature_info)
    return MODELS.build(
        dict(type=f'mmbackbones.{family}', arch=arch, out_indices=tuple(range(n)), **kw)
    )


def pretrained(uri: str) -> dict:
    return dict(type='Pretrained', checkpoint=uri)


# ------------------------------------------------------------------- loading, parity
def test_timm_uri_loads_from_the_hf_cache(caches) -> None:
    """timm://rexnet_100.nav_in1k: model.safetensors from the HF cache, offline, through
    mmengine's Pretrained init; every tap equals timm's."""
    ref = timm_reference(caches.hf, 'rexnet_100.nav_in1k')
    ours = all_taps('ReXNet', '1.0', init_cfg=pretrained('timm://rexnet_100.nav_in1k'))
    ours.init_weights()
    d = max_diff(ours.eval()(X), hook_outputs(ref, TIMM_TAPS['rexnet_100'], X))
    print(f'[measured] timm://rexnet_100.nav_in1k: max|diff| {d:.1e}')
    assert d <= TOL
    ck = load_uri('timm://rexnet_100.nav_in1k')
    assert ck['meta']['uri'] == 'timm://rexnet_100.nav_in1k' and ck['meta']['bn_eps'] == 1e-5
    assert ck['meta']['src'].startswith(str(caches.hf)) and ck['meta']['src'].endswith(
        'model.safetensors'
    )
    assert ck['meta']['data_preprocessor'] == dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True
    )


def test_timm_uri_pytorch_model_bin_and_tag_statistics(caches) -> None:
    """A repo with pytorch_model.bin only (timm's older uploads); the input statistics come
    from the repo's config.json: this tag's are 0.5/0.5, not ImageNet's."""
    name = 'mobilenetv3_large_100.ra4_e3600_r224_in1k'
    ref = timm_reference(caches.hf, name, safetensors=False)
    kw = dict(width_rule='timm', norm_cfg=dict(type='BN', eps=1e-5))
    ours = all_taps('MobileNetV3', 'large', init_cfg=pretrained(f'timm://{name}'), **kw)
    ours.init_weights()
    d = max_diff(ours.eval()(X), hook_outputs(ref, TIMM_TAPS['mobilenetv3_large_100'], X))
    assert d <= TOL
    meta = load_uri(f'timm://{name}')['meta']
    assert meta['src'].endswith('pytorch_model.bin')
    assert meta['data_preprocessor'] == dict(
        mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True
    )  # fmt: skip


def test_tv_uri_loads_from_torch_home(caches) -> None:
    """tv://mobilenet_v3_small: torchvision's file name in TORCH_HOME/hub/checkpoints."""
    from torchvision.models.feature_extraction import create_feature_extractor

    ref = torchvision_reference(caches.torch, 'tv://mobilenet_v3_small')
    assert (caches.torch / 'mobilenet_v3_small-047dcff4.pth').is_file()
    ours = all_taps('MobileNetV3', 'small', init_cfg=pretrained('tv://mobilenet_v3_small'))
    ours.init_weights()
    extractor = create_feature_extractor(ref, return_nodes=TV_TAPS['mobilenet_v3_small'])
    with torch.no_grad():
        d = max_diff(ours.eval()(X), list(extractor.eval()(X).values()))
    print(f'[measured] tv://mobilenet_v3_small: max|diff| {d:.1e}')
    assert d <= TOL


@pytest.mark.parametrize(
    'uri,manifest',
    [('pycls://RegNetX-3.2GF', 'pycls_RegNetX-3.2GF'),
     ('clovaai://rexnetv1_1.0', 'clovaai_rexnetv1_1.0')],
)  # fmt: skip
def test_published_files_load_from_torch_home(caches, uri: str, manifest: str) -> None:
    """pycls / clovaai: the published file (its keys and shapes, written as the authors
    write it) under its own name in TORCH_HOME/hub/checkpoints; the anchors land."""
    m = load_manifest(manifest)
    w = resolve_uri(uri)
    assert w.files == (m['file'],)
    theirs = manifest_state_dict(m)
    caches.torch.mkdir(parents=True)
    save_published(m, theirs, str(caches.torch / m['file']))
    ck = load_uri(uri)
    for their_key, our_key in ANCHORS[manifest].items():
        assert torch.equal(ck['state_dict'][our_key], theirs[their_key]), their_key
    want = SOURCES[SCHEMES[uri.split(':')[0]].source].input.data_preprocessor()
    assert ck['meta']['data_preprocessor'] == want
    req = w.request
    MODELS.build(
        dict(type=f'mmbackbones.{req.family}', arch=req.arch, out_indices=(-1,))
    ).load_state_dict(ck['state_dict'], strict=True)


# ---------------------------------------------------------------- acceptance: a config
def test_canonical_config_loads_timm_weights_with_no_manual_step(caches) -> None:
    """configs/rexnet_fasterrcnn_fpn.py, HF cache pre-filled, offline: building the model
    and init_weights() (as the runner does) loads the converted timm weights."""
    ref = timm_reference(caches.hf, 'rexnet_100.nav_in1k')
    cfg = _load('rexnet_fasterrcnn_fpn')
    assert cfg.model.backbone.init_cfg.checkpoint == 'timm://rexnet_100.nav_in1k'
    assert check_config(cfg) is True  # tools/train.py's check: settings match, file cached
    model = _build(cfg, copy.deepcopy(cfg.model))
    model.init_weights()
    taps = TIMM_TAPS['rexnet_100']
    want = [hook_outputs(ref, taps, X)[i] for i in model.backbone.out_indices]
    d = max_diff(model.backbone.eval()(X), want)
    print(f'[measured] rexnet_fasterrcnn_fpn backbone vs timm: max|diff| {d:.1e}')
    assert d <= TOL


@pytest.mark.slow
def test_canonical_config_in_a_fresh_process(tmp_path) -> None:
    """As a user runs it: HF_HOME and HF_HUB_OFFLINE=1 set before Python starts; the same
    config loads from a pre-filled cache and fails with the one-line message without it."""
    timm = pytest.importorskip('timm')
    from timm.models import save_for_hf

    script = tmp_path / 'init.py'
    script.write_text(
        'import sys, torch\n'
        'from mmengine.config import Config\n'
        'from mmengine.registry import init_default_scope\n'
        'from mmengine.utils import import_modules_from_strings\n'
        f'cfg = Config.fromfile({osp.join(REPO, "configs", "rexnet_fasterrcnn_fpn.py")!r})\n'
        "init_default_scope('mmdet')\n"
        'import_modules_from_strings(**cfg.custom_imports)\n'
        'from mmdet.registry import MODELS\n'
        'model = MODELS.build(cfg.model)\n'
        'try:\n'
        '    model.init_weights()\n'
        'except FileNotFoundError as e:\n'
        "    print('ERROR', e); sys.exit(3)\n"
        "w = model.backbone.state_dict()['layers.b5.dw.conv.weight']\n"
        "torch.save(w, sys.argv[1])\n"
    )
    hf_home = tmp_path / 'hf'
    env = {'HF_HOME': str(hf_home), 'HF_HUB_OFFLINE': '1'}
    out = str(tmp_path / 'w.pt')
    res = run_tool([str(script), out], cwd=str(tmp_path), env=env, timeout=600)
    assert res.returncode == 3, res.stderr[-2000:]
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith('ERROR'))
    assert 'timm://rexnet_100.nav_in1k' in line and 'HF_HUB_OFFLINE=1' in line
    assert str(hf_home / 'hub' / 'models--timm--rexnet_100.nav_in1k') in line
    assert 'python tools/convert_weights.py model.safetensors --source timm' in line
    ref = timm.create_model('rexnet_100.nav_in1k', pretrained=False)
    save_for_hf(ref, hf_snapshot(hf_home / 'hub', 'rexnet_100.nav_in1k'), safe_serialization=True)
    res = run_tool([str(script), out], cwd=str(tmp_path), env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert torch.equal(torch.load(out), ref.state_dict()['features.5.conv_dw.conv.weight'])


# ------------------------------------------------------------------- no file, offline
@pytest.mark.parametrize(
    'uri', ['timm://rexnet_100.nav_in1k', 'tv://efficientnet_b0', 'pycls://RegNetX-4.0GF',
            'clovaai://rexnet_lite_1.0'],
)  # fmt: skip
def test_empty_cache_offline_is_one_clear_line(caches, monkeypatch, uri: str) -> None:
    """The URI, the cache path looked in, the convert command; nothing downloaded."""

    def no_download(*a, **k):
        raise AssertionError('offline: nothing may be downloaded')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_download)
    with pytest.raises(WeightsNotFoundError) as e:
        load_uri(uri)
    msg = str(e.value)
    assert '\n' not in msg and msg.startswith(f'{uri}: the weights are not in the cache')
    assert 'HF_HUB_OFFLINE=1' in msg
    w = resolve_uri(uri)
    where = (
        caches.hf / f'models--{w.location.replace("/", "--")}'
        if uri.startswith('timm')
        else caches.torch / w.files[0]
    )
    assert f'looked in {where}' in msg
    dst = default_checkpoint(w.request.family, w.request.arch, w.request.kwargs)
    cmd = f'python tools/convert_weights.py {w.files[0]} --source {w.scheme.source} --model'
    assert cmd in msg and f'(writes {dst})' in msg


def test_failed_download_names_the_reason(caches, monkeypatch) -> None:
    """Online, a download that fails (here: a web page instead of the weights, as a quota
    page of Google Drive) is the same one line, with the reason; nothing is cached."""
    monkeypatch.setattr('huggingface_hub.constants.HF_HUB_OFFLINE', False)
    monkeypatch.delenv('HF_HUB_OFFLINE')

    def web_page(url, dst, hash_prefix=None, progress=True):
        with open(dst, 'w') as f:
            f.write('<!DOCTYPE html><html>Quota exceeded</html>')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', web_page)
    with pytest.raises(WeightsNotFoundError, match=r'the download failed \(the server sent a web'):
        load_uri('clovaai://rexnetv1_1.3')
    assert not caches.torch.exists() or not list(caches.torch.iterdir())


def test_unknown_names_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(WeightsURIError, match=r"valid: \['imagenet1k_v1', 'imagenet1k_v2'\]"):
        resolve_uri('tv://mobilenet_v3_large.imagenet1k_v9')
    with pytest.raises(WeightsURIError, match=r"publish no 'rexnetv1_0.9' file"):
        resolve_uri('clovaai://rexnetv1_0.9')
    with pytest.raises(WeightsURIError, match=r"model zoo has no 'RegNetX-3\.2gf' file"):
        resolve_uri('pycls://RegNetX-3.2gf')
    with pytest.raises(WeightsURIError, match='not a weight URI of ours; the schemes are'):
        resolve_uri('torchvision://resnet50')
    assert not is_weights_uri('torchvision://resnet50') and not is_weights_uri('open-mmlab://x')


# ---------------------------------------------------------------- settings mismatch
def test_bn_eps_mismatch_fails_before_loading(caches) -> None:
    """timm MobileNetV3 weights (BN eps 1e-5, timm's width rule) into our default
    MobileNetV3 (eps 1e-3): init_weights names both keys, before looking for the file."""
    backbone = MODELS.build(
        dict(
            type='mmbackbones.MobileNetV3',
            arch='large',
            init_cfg=pretrained('timm://mobilenetv3_large_100.ra_in1k'),
        )
    )
    with pytest.raises(WeightsSettingsError) as e:
        backbone.init_weights()
    msg = str(e.value)
    assert "model.backbone.width_rule='timm'" in msg
    assert 'model.backbone.norm_cfg.eps=1e-05 (now 0.001)' in msg


def test_converted_file_settings_are_checked_too(tmp_path) -> None:
    """A file tools/convert_weights.py wrote (timm efficientnet_b0: eps 1e-5) into an
    EfficientNet with the family's eps 1e-3: the same error, from the file's meta."""
    timm = pytest.importorskip('timm')
    src, dst = tmp_path / 'b0.pth', tmp_path / 'ours.pth'
    torch.save(timm.create_model('efficientnet_b0', pretrained=False).state_dict(), src)
    convert_file(str(src), str(dst), resolve(SOURCES['timm'], model='efficientnet_b0'))
    bb = dict(type='mmbackbones.EfficientNet', arch='b0', init_cfg=pretrained(str(dst)))
    with pytest.raises(WeightsSettingsError, match=r'norm_cfg\.eps=1e-05 \(now 0\.001\)'):
        MODELS.build(bb).init_weights()
    MODELS.build(dict(bb, norm_cfg=dict(type='BN', eps=1e-5))).init_weights()


def test_config_settings_mismatch_names_the_keys(caches) -> None:
    """tools/train.py's check (no download): SSDLite's BN eps 1e-3 with ReXNet weights
    (1e-5); pycls's BGR weights with an RGB data_preprocessor."""
    cfg = _load('rexnet_ssdlite')
    cfg.model.backbone.norm_cfg.eps = 1e-3
    with pytest.raises(WeightsSettingsError, match=r'model\.backbone\.norm_cfg\.eps=1e-05'):
        check_config(cfg, fetch=False)
    cfg = _load('regnetx-3.2gf_fasterrcnn_fpn')
    cfg.model.data_preprocessor.update(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True
    )
    with pytest.raises(WeightsSettingsError) as e:
        check_config(cfg, fetch=False)
    msg = str(e.value)
    assert msg.startswith('pycls://RegNetX-3.2GF holds RegNet(arch=')
    assert (
        'model.data_preprocessor: mean=[103.53, 116.28, 123.675], '
        'std=[57.375, 57.12, 58.395], bgr_to_rgb=False'
    ) in msg
    cfg = _load('rexnet_fasterrcnn_fpn')
    cfg.model.backbone.arch = '1.3'
    with pytest.raises(WeightsSettingsError, match=r"model\.backbone\.arch='1\.0'"):
        check_config(cfg, fetch=False)


def test_missing_local_file_says_how_to_make_it() -> None:
    from mmbackbones.utils.checks import check_pretrained

    cfg = _load('rexnet-0.9_fasterrcnn_fpn')
    with pytest.raises((FileNotFoundError, ValueError)) as e:
        check_pretrained(cfg)
    assert 'checkpoints/rexnet-0.9_imagenet.pth' in str(e.value)
    assert 'convert_weights.py' in str(e.value)


# ------------------------------------------------- mmengine's own schemes still work
def test_mmengine_torchvision_scheme_still_loads_mmdet_resnet(caches) -> None:
    """mmdet's ResNet configs use torchvision://resnet50: in the same process as our
    schemes, mmengine's own loader still reads torchvision's raw file from TORCH_HOME."""
    import mmdet.models  # noqa: F401  (registers ResNet)
    from mmdet.registry import MODELS as DET
    from mmengine.runner.checkpoint import CheckpointLoader

    tvm = pytest.importorskip('torchvision.models')
    assert all(s.prefix in CheckpointLoader._schemes for s in SCHEMES.values())
    torch.manual_seed(0)
    ref = tvm.resnet18(weights=None)
    caches.torch.mkdir(parents=True)
    torch.save(ref.state_dict(), caches.torch / 'resnet18-f37072fd.pth')
    net = DET.build(dict(type='ResNet', depth=18, init_cfg=pretrained('torchvision://resnet18')))
    net.init_weights()
    assert torch.equal(
        net.state_dict()['layer3.1.conv2.weight'], ref.state_dict()['layer3.1.conv2.weight']
    )
    assert CheckpointLoader._get_checkpoint_loader('torchvision://resnet18').__name__ == (
        'load_from_torchvision'
    )
    assert CheckpointLoader._get_checkpoint_loader('open-mmlab://resnet50_caffe').__name__ == (
        'load_from_openmmlab'
    )


# ------------------------------------------------------ every config, tied to the converter
def _published(family: str, arch, kwargs: dict) -> list[str]:
    """Every URI of published weights of this backbone (timm's hub tags, torchvision's
    enums, pycls's zoo, the authors' files)."""
    timm = pytest.importorskip('timm')
    tvm = pytest.importorskip('torchvision.models')
    found = []

    def same(p) -> bool:
        return p.family == family and p.arch == arch and p.kwargs == kwargs

    for name, p in SOURCES['timm'].presets.items():
        if same(p) and not SOURCES['timm'].refusal(name):
            found += [f'timm://{n}' for n in timm.list_pretrained(f'{name}.*')]
    for name, p in SOURCES['torchvision'].presets.items():
        if same(p) and name in tvm.list_models():
            found.append(f'tv://{name}')
    found += [f'pycls://{n}' for n in PYCLS_FILES if same(SOURCES['pycls'].presets[n])]
    found += [f'clovaai://{n}' for n in CLOVAAI_FILES if same(SOURCES['clovaai'].presets[n])]
    return found


def _weight_kwargs(backbone: dict) -> dict:
    from mmbackbones.convert.uri import LAYOUT_ARGS

    skip = LAYOUT_ARGS | {'type', 'arch'}
    return {k: v for k, v in backbone.items() if k not in skip}


@pytest.mark.parametrize('name', NAMES)
def test_config_weights_are_tied_to_the_converter(caches, name: str) -> None:
    """A URI resolves with our schemes to this backbone and the config's settings match
    it; a local file is the converter's default name for the backbone, and only where no
    weights are published (its comment says so)."""
    cfg = _load(name)
    bb = cfg.model.backbone
    init = bb.get('init_cfg')
    if init is None:
        assert name.endswith('lraspp_cityscapes'), 'from scratch only in the LR-ASPP rows'
        return
    ckpt = init.checkpoint
    family = bb.type.split('.', 1)[1]
    if is_weights_uri(ckpt):
        req = resolve_uri(ckpt).request
        assert (req.family, req.arch) == (family, bb.arch)
        assert check_config(cfg, fetch=False) is True
        return
    kwargs = _weight_kwargs(bb)
    assert ckpt == default_checkpoint(family, bb.arch, kwargs)
    assert _published(family, bb.arch, kwargs) == [], f'{name}: published weights exist'
    with open(osp.join(REPO, 'configs', f'{name}.py')) as f:
        assert re.search(r'No (published|public) ImageNet weights', f.read()), name


def test_published_lookup_finds_the_configs_weights() -> None:
    """The lookup above is not vacuous: it finds the weights the URI configs name."""
    assert 'timm://rexnet_100.nav_in1k' in _published('ReXNet', '1.0', {})
    assert 'tv://mobilenet_v3_large' in _published('MobileNetV3', 'large', {})
    assert 'pycls://RegNetX-4.0GF' in _published('RegNet', 'regnetx_4.0gf', {})
    assert 'clovaai://rexnetv1_1.3' in _published('ReXNet', '1.3', {})
    assert _published('ReXNet', '2.2', {}) == []


# ---------------------------------------------------------------- one naming rule
def test_converter_writes_the_name_configs_use(tmp_path, monkeypatch, capsys) -> None:
    """tools/convert_weights.py without DST writes checkpoints/<backbone>_imagenet.pth."""
    import importlib.util

    timm = pytest.importorskip('timm')
    spec = importlib.util.spec_from_file_location(
        'convert_weights', osp.join(REPO, 'tools', 'convert_weights.py')
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = tmp_path / 'model.pth'
    torch.save(timm.create_model('rexnet_100', pretrained=False).state_dict(), src)
    monkeypatch.chdir(tmp_path)
    assert tool.main([str(src), '--source', 'timm', '--model', 'rexnet_100']) == 0
    assert (tmp_path / 'checkpoints' / 'rexnet-1.0_imagenet.pth').is_file()
    assert 'wrote checkpoints/rexnet-1.0_imagenet.pth' in capsys.readouterr().out
    # --classifier writes an ImageClassifier file, never the backbone file a config reads
    argv = [str(src), '--source', 'timm', '--model', 'rexnet_100', '--classifier']
    assert tool.main(argv) == 0
    assert (tmp_path / 'checkpoints' / 'rexnet-1.0_imagenet-classifier.pth').is_file()


def test_docs_name_only_default_files() -> None:
    """Every checkpoints/*_imagenet.pth in README.md and docs/ is a default name."""
    from mmbackbones.models import family_class

    names = set()
    for family in SOURCES['timm'].mappers.keys() | {'AnyNet'}:
        for arch in family_class(family).arch_settings:
            names.add(default_checkpoint(family, arch))
    names |= {
        default_checkpoint('MobileNetV3', a, dict(reduced_tail=True)) for a in ('large', 'small')
    }
    for doc in ('README.md', 'docs/weights.md'):
        with open(osp.join(REPO, doc)) as f:
            found = set(re.findall(r'checkpoints/[\w.-]+_imagenet\.pth', f.read()))
        assert found <= names, f'{doc}: {sorted(found - names)}'

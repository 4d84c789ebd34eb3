"""Drop-in use: mmdet's own configs, unchanged through ``_base_``, with ReXNet swapped in."""

from __future__ import annotations

import os.path as osp
import runpy
from collections.abc import Callable

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config

DROPIN_TOOL = osp.join(REPO, 'tools', 'dropin.py')

DROPIN = """
_base_ = '{base}'
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmbackbones.ReXNet', arch='1.0',
                  out_indices=(1, 2, 3, 4)),
    neck=dict(in_channels=[38, 61, 128, 185]))
"""


def _det_loss(model, with_mask: bool, h: int = 128, w: int = 160) -> dict:
    from mmdet.testing import demo_mm_inputs

    packed = demo_mm_inputs(2, [[3, h, w], [3, w, h]], num_classes=80, with_mask=with_mask)
    data = model.data_preprocessor(packed, True)
    return model(**data, mode='loss')


def _loss_step(
    cfg: Config, with_mask: bool, family: str = 'ReXNet', loss: Callable | None = None
) -> dict:
    """Build the config's model (its host's registry), one loss step on small random
    inputs (``loss(model)``; default: mmdet's demo inputs); every backbone weight gets a
    gradient."""
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS

    import_modules_from_strings(**cfg.custom_imports)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    losses = loss(model) if loss is not None else _det_loss(model, with_mask)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert torch.isfinite(total)
    assert type(model.backbone).__name__ == family
    assert type(model.backbone).__module__.startswith('mmbackbones.models.backbones.')
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    return losses


@pytest.mark.parametrize(
    'base,with_mask',
    [
        ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', False),
        ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', True),
    ],
)
def test_rexnet_drops_into_mmdet_config(tmp_path, base: str, with_mask: bool) -> None:
    path = tmp_path / 'dropin.py'
    path.write_text(DROPIN.format(base=base))
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type == 'mmbackbones.ReXNet'
    losses = _loss_step(cfg, with_mask)
    assert ('loss_mask' in losses) == with_mask


# ------------------------------------------------------------------ mmseg's `pretrained`
# mmseg's EncoderDecoder copies a config's model.pretrained into the backbone; its base
# configs set 'open-mmlab://resnet50_v1c'. Only the backbone is replaced here, as a user
# would on a first try.
MMSEG_CONFIGS = [
    'fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py',
]
SEG_DROPIN = """
_base_ = 'mmseg::{base}'
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, type='mmbackbones.{family}', arch={arch!r}))
"""


def _seg_model(tmp_path, base: str, family: str, arch: str, **model):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    path = tmp_path / 'cfg.py'
    path.write_text(SEG_DROPIN.format(base=base, family=family, arch=arch))
    cfg = Config.fromfile(str(path))
    cfg.model.update(model)
    init_default_scope('mmseg')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('base', MMSEG_CONFIGS)
def test_mmseg_base_pretrained_stops_with_one_line(tmp_path, base: str) -> None:
    with pytest.raises(ValueError) as e:
        _seg_model(tmp_path, base, 'ReXNet', '1.0')
    msg = str(e.value)
    assert "pretrained='open-mmlab://resnet50_v1c'" in msg and '\n' not in msg
    assert 'set model.pretrained=None' in msg and 'model.backbone.init_cfg' in msg


@pytest.mark.parametrize(
    'family,arch',
    [('ReXNet', '1.0'), ('MobileNetV3', 'large'), ('EfficientNet', 'b0'),
     ('RegNet', 'regnetx_400mf'), ('ResNeXt', '50_32x4d'), ('AnyNet', 'nds_r56')],
)  # fmt: skip
def test_mmseg_pretrained_none_builds_every_family(tmp_path, family: str, arch: str) -> None:
    model = _seg_model(tmp_path, MMSEG_CONFIGS[0], family, arch, pretrained=None)
    assert type(model.backbone).__name__ == family
    assert type(model.backbone).__module__.startswith('mmbackbones.')


def test_mmseg_pretrained_of_ours_becomes_the_pretrained_init(tmp_path) -> None:
    """A weight file our converter wrote, given as model.pretrained, loads as the
    backbone's Pretrained init (with mmseg's deprecation note)."""
    timm = pytest.importorskip('timm')
    from mmbackbones.convert import SOURCES, convert_file, resolve

    src, dst = tmp_path / 'rexnet_100.pth', tmp_path / 'rexnet_1.0_ours.pth'
    torch.save(timm.create_model('rexnet_100', pretrained=False).state_dict(), src)
    convert_file(str(src), str(dst), resolve(SOURCES['timm'], model='rexnet_100'))
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = _seg_model(tmp_path, MMSEG_CONFIGS[0], 'ReXNet', '1.0', pretrained=str(dst))
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(dst))
    model.init_weights()
    ours = torch.load(dst, weights_only=True)['state_dict']
    w = 'layers.b5.dw.conv.weight'
    assert torch.equal(model.backbone.state_dict()[w], ours[w])
    # a file that is not ours is refused like the host's checkpoint
    torch.save({'state_dict': ours}, tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match='not a weight file of ours'):
        _seg_model(
            tmp_path, MMSEG_CONFIGS[0], 'ReXNet', '1.0', pretrained=str(tmp_path / 'plain.pth')
        )


# ------------------------------------------------------------ tools/dropin.py (issue 18)
# The rewriter: mmbackbones.dropin (library) and tools/dropin.py (CLI). Host configs as mmdet
# and mmseg ship them; expected taps and channels computed by hand from the families' taps
# (ReXNet x1.0: 16@/2, 38@/4, 61@/8, 128@/16, 185@/32, head 1280@/32).
RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
HOST_CONFIGS = {
    'retinanet': RETINANET,
    'fcos': 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'mmdet::atss/atss_r50_fpn_1x_coco.py',
    'cascade-mask-rcnn': 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    'yolof': 'mmdet::yolof/yolof_r50-c5_8xb8-1x_coco.py',
    'deformable-detr': 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'centernet': 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py',
    'rtmdet': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    **{name: f'mmseg::{MMSEG_CONFIGS[i]}' for i, name in enumerate(
        ('fcn', 'pspnet', 'deeplabv3plus', 'upernet'))},
    'semantic-fpn': 'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py',
}  # fmt: skip
FAMILIES = {
    'ReXNet': '1.0',
    'MobileNetV3': 'large',
    'EfficientNet': 'b0',
    'RegNet': 'regnetx_400mf',
    'ResNeXt': '50_32x4d',
}
# (host, out_indices, output_stride, {key: value}) for ReXNet x1.0
HAND = [
    ('retinanet', (1, 2, 3, 4), 32, {'model.neck.in_channels': [38, 61, 128, 185]}),
    ('yolof', (4,), 32, {'model.neck.in_channels': 185}),  # DilatedEncoder: C5 only
    ('deformable-detr', (2, 3, 4), 32, {'model.neck.in_channels': [61, 128, 185]}),
    ('centernet', (1, 2, 3, 4), 32, {'model.neck.in_channels': 185}),  # reads the last
    ('rtmdet', (2, 3, 4), 32, {'model.neck.in_channels': [61, 128, 185]}),
    # d8: strides 4, 8, 8, 8; the decode head reads output 3, the auxiliary one output 2
    ('fcn', (1, 2, 3, 4), 8, {'model.decode_head.in_channels': 185,
                              'model.auxiliary_head.in_channels': 128}),
    ('deeplabv3plus', (1, 2, 3, 4), 8, {'model.decode_head.in_channels': 185,
                                        'model.decode_head.c1_in_channels': 38,
                                        'model.auxiliary_head.in_channels': 128}),
    ('upernet', (1, 2, 3, 4), 32, {'model.decode_head.in_channels': [38, 61, 128, 185],
                                   'model.auxiliary_head.in_channels': 128}),
    ('semantic-fpn', (1, 2, 3, 4), 32, {'model.neck.in_channels': [38, 61, 128, 185]}),
]  # fmt: skip


def _get(cfg: dict, key: str):
    for k in key.split('.'):
        cfg = cfg[k]
    return cfg


@pytest.mark.parametrize('host,out_indices,output_stride,keys', HAND, ids=[h[0] for h in HAND])
def test_dropin_taps_and_channels_by_hand(host, out_indices, output_stride, keys) -> None:
    from mmbackbones.dropin import dropin_overrides, plan_dropin

    plan = plan_dropin(HOST_CONFIGS[host], 'ReXNet', '1.0')
    assert plan.out_indices == out_indices and plan.output_stride == output_stride
    assert plan.out_strides == plan.host_backbone.strides
    overrides = dropin_overrides(HOST_CONFIGS[host], 'ReXNet', '1.0')
    backbone = overrides['model']['backbone']
    assert backbone['_delete_'] is True and backbone['type'] == 'mmbackbones.ReXNet'
    assert backbone['out_indices'] == out_indices
    assert backbone.get('output_stride', 32) == output_stride
    for key, value in keys.items():
        assert _get(overrides, key) == value, key
    if host.startswith(('fcn', 'deeplab', 'upernet', 'semantic')):
        assert overrides['model']['pretrained'] is None  # mmseg: the base's ResNet checkpoint
    else:
        assert 'pretrained' not in overrides['model']


def test_dropin_retinanet_rexnet_measures_the_host_and_keeps_the_rest() -> None:
    from mmbackbones.dropin import plan_dropin

    plan = plan_dropin(RETINANET, 'ReXNet', '1.0')
    host = plan.host_backbone
    assert (host.type, host.channels, host.strides, host.dilated) == (
        'ResNet',
        [256, 512, 1024, 2048],
        [4, 8, 16, 32],
        False,
    )
    assert plan.out_channels == [38, 61, 128, 185]
    assert plan.taps[5]['head'] and not any(t['head'] for t in plan.taps[:5])
    # only what must change: RetinaNet's preprocessor is already RGB ImageNet
    assert [c.key for c in plan.changes] == [
        'custom_imports',
        *[f'model.backbone.{k}' for k in ('_delete_', 'type', 'arch', 'out_indices')],
        'model.neck.in_channels',
    ]
    assert any('data_preprocessor unchanged' in n for n in plan.notes)


def test_choose_taps_refuses_what_we_cannot_give() -> None:
    from mmbackbones.dropin import DropInError, choose_taps

    rexnet = [2, 4, 8, 16, 32, 32]  # nominal reductions, head conv last
    assert choose_taps(rexnet, [8, 16, 32], False) == ((2, 3, 4), 32)
    assert choose_taps(rexnet, [8, 16, 16], True) == ((2, 3, 4), 16)  # deepest at /16
    assert choose_taps(rexnet, [16], True) == ((4,), 16)  # a -d16 host's C5: ours, dilated
    assert choose_taps(rexnet, [16], False) == ((3,), 32)  # an undilated host's C4
    assert choose_taps(rexnet, [2, 4], False) == ((0, 1), 32)
    with pytest.raises(DropInError, match='lacks a stride-64 tap'):
        choose_taps(rexnet, [8, 16, 32, 64], False, 'ReXNet')
    with pytest.raises(DropInError, match='lacks a stride-2 tap'):
        choose_taps([4, 8, 16, 32], [2, 4, 8], False)
    with pytest.raises(DropInError, match='supports output_stride 8, 16 or 32'):
        choose_taps(rexnet, [2, 4, 4], True)
    with pytest.raises(DropInError, match='not in increasing order'):
        choose_taps(rexnet, [32, 16], False)


def test_dropin_regnet_gets_pycls_input_and_dilation(tmp_path) -> None:
    from mmbackbones.dropin import dropin_overrides

    o = dropin_overrides(HOST_CONFIGS['fcn'], 'RegNet', 'regnetx_400mf', no_syncbn=True)
    assert o['model']['data_preprocessor'] == dict(
        mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], bgr_to_rgb=False
    )
    assert o['model']['backbone']['output_stride'] == 8
    assert 'norm_cfg' not in o['model']['backbone']  # --no-syncbn: our default BN
    assert o['model']['decode_head']['norm_cfg'] == {'type': 'BN'}
    # without --no-syncbn our backbone keeps the host backbone's SyncBN
    o = dropin_overrides(HOST_CONFIGS['fcn'], 'MobileNetV3', 'large')
    assert o['model']['backbone']['norm_cfg'] == dict(type='SyncBN', eps=1e-3, momentum=0.01)
    assert 'norm_cfg' not in o['model']['decode_head']
    # FCOS: the host's caffe BGR stats become ours (RGB ImageNet)
    o = dropin_overrides(HOST_CONFIGS['fcos'], 'ReXNet', '1.0')
    assert o['model']['data_preprocessor']['bgr_to_rgb'] is True


def test_dropin_config_text_is_the_overrides_with_a_reason_per_key(tmp_path) -> None:
    """The written file, loaded by mmengine, is the host config merged with the overrides;
    every key it sets has a comment line above it; ruff leaves it as it is."""
    import subprocess
    import sys

    from mmbackbones.dropin import dropin_config, dropin_overrides, plan_dropin, resolve_host

    host = HOST_CONFIGS['deeplabv3plus']
    out = tmp_path / 'configs' / 'my_deeplabv3plus.py'
    text = dropin_config(host, 'ReXNet', '1.0', weights='ckpt/rexnet.pth', out=str(out))
    assert out.read_text() == text
    assert f"_base_ = '{host}'" in text
    loaded = Config.fromfile(str(out))
    expected = Config.fromfile(resolve_host(host)[0])
    expected.merge_from_dict(dropin_overrides(host, 'ReXNet', '1.0', weights='ckpt/rexnet.pth'))
    model = loaded.model.to_dict()
    assert model.pop('_scope_') == 'mmseg'  # mmengine marks a base from another package
    assert model == expected.model.to_dict()
    assert loaded.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='ckpt/rexnet.pth')
    assert loaded.model.decode_head.c1_in_channels == 38
    comments = ' '.join(
        line.strip()[2:] for line in text.splitlines() if line.strip().startswith('# ')
    )
    plan = plan_dropin(host, 'ReXNet', '1.0', weights='ckpt/rexnet.pth')
    for change in plan.changes:
        assert ' '.join(change.why.split()) in comments, change.key
    ruff = [sys.executable, '-m', 'ruff']
    cfg = ['--config', 'pyproject.toml']
    for cmd in (['format', '--check', *cfg, str(out)], ['check', *cfg, str(out)]):
        res = subprocess.run(ruff + cmd, cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_dropin_host_given_as_a_file_is_referenced_relative_to_the_output(tmp_path) -> None:
    from mmbackbones.dropin import dropin_config

    host = tmp_path / 'mine' / 'retinanet.py'
    host.parent.mkdir()
    host.write_text(f"_base_ = '{RETINANET}'\n")
    out = tmp_path / 'configs' / 'rexnet.py'
    text = dropin_config(str(host), 'MobileNetV3', 'small', out=str(out), check=True)
    assert "_base_ = '../mine/retinanet.py'" in text
    assert Config.fromfile(str(out)).model.neck.in_channels == [16, 24, 48, 96]


@pytest.mark.parametrize(
    'argv,message',
    [
        ([RETINANET, '--backbone', 'ResNet'], "unknown backbone family 'ResNet'"),
        (['mmdet::retinanet/nope.py', '--backbone', 'ReXNet'], "unknown host config"),
        ([RETINANET, '--backbone', 'ReXNet', '--arch', '9.9'], "ReXNet: unknown arch '9.9'"),
        ([RETINANET, '--backbone', 'AnyNet', '--arch', 'nds_r56'], 'lacks a stride-8 tap'),
        (['mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py', '--backbone', 'ReXNet'],
         'has no neck'),
    ],
    ids=['family', 'host', 'arch', 'stride', 'no-neck'],
)  # fmt: skip
def test_dropin_tool_bad_input_is_one_line_exit_2(argv, message, capsys) -> None:
    main = runpy.run_path(DROPIN_TOOL)['main']
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith('error: ') and message in err, err


def test_dropin_tool_writes_the_config_and_prints_its_choices(tmp_path) -> None:
    out = tmp_path / 'my_retinanet_rexnet.py'
    res = run_tool(
        [DROPIN_TOOL, RETINANET, '--backbone', 'ReXNet', '--arch', '1.0', '-o', str(out)],
        cwd=str(tmp_path),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'backbone ResNet gives 4 outputs: 256ch@/4, 512ch@/8, 1024ch@/16, 2048ch@/32' in (
        res.stdout
    )
    assert 'chose out_indices (1, 2, 3, 4): 38ch@/4, 61ch@/8, 128ch@/16, 185ch@/32' in res.stdout
    assert 'model.neck.in_channels: [256, 512, 1024, 2048] -> [38, 61, 128, 185]' in res.stdout
    assert Config.fromfile(str(out)).model.neck.in_channels == [38, 61, 128, 185]


# --------------------------------------------------------- the drop-in matrix (loss step)
# Every host x family: the rewritten config (no_syncbn) builds and takes one loss step on
# small random inputs. Fast: one family per kind of consumer (FPN dense heads, two-stage
# with masks, a single C5 input, DETR's ChannelMapper, CenterNet's neck, RTMDet's PAFPN,
# mmseg heads on a dilated backbone, DeepLabV3+'s low-level branch, UPerNet's list, mmseg's
# FPN neck), the families rotating; the rest of the matrix is slow.
FAST = {
    'retinanet': 'ReXNet',
    'cascade-mask-rcnn': 'RegNet',
    'yolof': 'ResNeXt',
    'deformable-detr': 'MobileNetV3',
    'centernet': 'EfficientNet',
    'rtmdet': 'MobileNetV3',
    'fcn': 'RegNet',
    'deeplabv3plus': 'ReXNet',
    'upernet': 'EfficientNet',
    'semantic-fpn': 'ResNeXt',
}
MATRIX = [
    pytest.param(host, family, id=f'{host}-{family}', marks=() if FAST.get(host) == family
                 else pytest.mark.slow)
    for host in HOST_CONFIGS for family in FAMILIES
]  # fmt: skip


def _cpu_sized_heads(model: dict) -> None:
    """The test's budget, not the drop-in: what reads the backbone stays as written; the
    heads far from it get smaller (R-CNN: 64 RoIs per stage from 300 proposals; Deformable
    DETR: 30 queries, one encoder and one decoder layer)."""
    from mmbackbones.utils.nested import walk_config

    for parent, key, value in walk_config(model):
        if key == 'num' and str(parent.get('type', '')).endswith('Sampler') and value > 64:
            parent[key] = 64
        elif key == 'max_per_img' and value > 300:
            parent[key] = 300
        elif key == 'num_layers' and isinstance(value, int) and value > 1:
            parent[key] = 1
    if 'num_queries' in model:
        model['num_queries'] = 30


def _seg_loss(model, size: int = 64) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, size, size)))
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    return model(**data, mode='loss')


@pytest.mark.parametrize('host,family', MATRIX)
def test_dropin_matrix_loss_step(tmp_path, host: str, family: str) -> None:
    from mmbackbones.dropin import dropin_config

    out = tmp_path / 'dropin.py'
    dropin_config(HOST_CONFIGS[host], family, FAMILIES[family], no_syncbn=True, out=str(out))
    cfg = Config.fromfile(str(out))
    assert 'SyncBN' not in str(cfg.model)
    _cpu_sized_heads(cfg.model)
    if HOST_CONFIGS[host].startswith('mmseg'):
        cfg.model.data_preprocessor.size = (64, 64)  # the test's image size, not 512x1024
        losses = _loss_step(cfg, False, family, _seg_loss)
        assert any(k.startswith('aux') for k in losses) == ('auxiliary_head' in cfg.model)
    else:
        mask = host == 'cascade-mask-rcnn'
        losses = _loss_step(cfg, mask, family, lambda m: _det_loss(m, mask, 96, 128))
        assert ('s0.loss_mask' in losses) == (host == 'cascade-mask-rcnn')


# ------------------------------------------------------- the hosts' own tools/train.py
@pytest.mark.slow
@pytest.mark.parametrize(
    'host,family,metric,extra',
    [
        # two iterations from scratch score every box under RetinaNet's 0.05: keep them all
        ('retinanet', 'ReXNet', r'coco/bbox_mAP: \d', {'model.test_cfg.score_thr': 0.0}),
        ('deeplabv3plus', 'MobileNetV3', r'Iter\(val\).*mIoU: \d+\.\d+', {}),
    ],
    ids=['mmdet', 'mmseg'],
)
def test_host_train_py_runs_a_dropin_config(
    host: str, family: str, metric: str, extra: dict, tmp_path, request: pytest.FixtureRequest
) -> None:
    """The written config, pointed at the built-in data, trains two iterations and
    validates on 4 images with mmdet's / mmseg's own train.py."""

    from test_host_tools import FEW_ITERS, NO_WORKERS, run_host_train

    from mmbackbones.datasets import apply_builtin_data
    from mmbackbones.dropin import dropin_config

    scope = HOST_CONFIGS[host].split('::')[0]
    data_root = request.getfixturevalue('builtin_root' if scope == 'mmdet' else 'seg_root')
    written = tmp_path / 'dropin.py'
    dropin_config(HOST_CONFIGS[host], family, FAMILIES[family], no_syncbn=True, out=str(written))
    cfg = apply_builtin_data(Config.fromfile(str(written)), data_root)
    cfg.merge_from_dict({**FEW_ITERS, **NO_WORKERS, 'val_dataloader.dataset.indices': 4, **extra})
    cfg.dump(str(tmp_path / 'dropin_builtin.py'))
    run_host_train(scope, str(tmp_path / 'dropin_builtin.py'), tmp_path, metric)

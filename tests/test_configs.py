"""Every shipped config (``configs/*.py``): it loads, follows the config conventions, builds,
its neck takes the backbone's channels, and it takes a loss and a predict step on CPU.
Model sizes against the papers, and the ``--builtin-data`` switch.

Parameter counts (``test_params_match_paper``): the papers' figures are reproduced with
these class counts, which is how the test builds each model:

* R-CNNs: COCO's 80 classes, mmdet's heads. This reproduces the ReXNet paper's own
  baselines too (mmdet's ResNet-50 Faster R-CNN: 41.75M, paper 41.8M).
* SSDLite: 90 classes + background, the TF Object Detection API's label map, which the
  MobileNetV3 paper used and the ReXNet paper's SSDLite rows follow. The TF API also puts
  3 anchors instead of 6 on the lowest (stride-16) level, which mmdet's
  ``SSDAnchorGenerator`` cannot express; our counts are higher by exactly those
  predictors, and with them removed they match to 3% (``test_ssdlite_params_tf_layout``).
"""

from __future__ import annotations

import ast
import copy
import functools
import glob
import os.path as osp
import re
from decimal import Decimal
from typing import Any, Callable

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config, ConfigDict

from mmbackbones.utils.nested import walk_config

CONFIG_DIR = osp.join(REPO, 'configs')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
TRAIN = osp.join(REPO, 'tools', 'train.py')
CUSTOM_IMPORTS = dict(imports=['mmbackbones.models'], allow_failed_imports=False)
GPUS = 8  # the detection recipes are the papers' / mmdet's 8-GPU recipes


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


@functools.cache
def _load_cached(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))


def _load(name: str) -> Config:
    """``Config.fromfile`` (resolving ``mmdet::`` bases takes a while): a fresh copy."""
    return copy.deepcopy(_load_cached(name))


NAMES = [_name(p) for p in CONFIGS]


def _kind(cfg: Config) -> str:
    """'ssdlite', 'faster', 'mask' (mmdet) or 'segmentation' (mmseg)."""
    from mmbackbones.datasets.builtin import task_of

    if task_of(cfg) == 'segmentation':
        return 'segmentation'
    model = cfg.model
    if model.type == 'SingleStageDetector' and model.bbox_head.type.endswith('SSDHead'):
        return 'ssdlite'
    if model.type == 'FasterRCNN':
        return 'faster'
    if model.type == 'MaskRCNN':
        return 'mask'
    raise AssertionError(
        f'unknown detector {model.type}: add its kind to tests/test_configs.py::_kind'
    )


def _model_cfg(cfg: Config) -> ConfigDict:
    """The model config without the Pretrained backbone init (no weights here)."""
    model = copy.deepcopy(cfg.model)
    init_cfg = model.backbone.pop('init_cfg', None)
    assert init_cfg is None or init_cfg['type'] == 'Pretrained'
    return model


def _registry(cfg: Config, what: str = 'MODELS') -> Any:
    """The host's registry (mmdet or mmseg, by ``default_scope``), scope initialised."""
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    scope = cfg.default_scope
    init_default_scope(scope)
    import_modules_from_strings(**cfg.custom_imports)
    if scope == 'mmdet':
        import mmdet.registry as registry
    else:
        import mmseg.registry as registry
    return getattr(registry, what)


def _build(cfg: Config, model_cfg: ConfigDict, device: str = 'cpu') -> torch.nn.Module:
    """Build the model; on the ``'meta'`` device (no memory, no init) to count params."""
    from mmengine.model import revert_sync_batchnorm

    with torch.device(device):
        model = _registry(cfg).build(model_cfg)
    # SyncBN (the SSDLite recipe) runs as BN on one device, as mmengine's Runner does
    return revert_sync_batchnorm(model)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- conventions
def _pipelines(cfg: Config) -> dict[str, list]:
    from mmbackbones.datasets.builtin import _datasets

    out = {}
    for split in ('train', 'val', 'test'):
        for i, ds in enumerate(_datasets(cfg[f'{split}_dataloader'])):
            out[f'{split}[{i}]'] = ds.pipeline
    return out


# input size of each kind's recipe: SSDLite 320x320, R-CNN the ReXNet paper's 1200x800
INPUT_SIZE = {'ssdlite': (320, 320), 'faster': (1200, 800), 'mask': (1200, 800)}


@pytest.mark.parametrize('name', NAMES)
def test_config_conventions(name: str) -> None:
    """DESIGN.md "Configs": scoped backbone, custom_imports, Pretrained ImageNet weights,
    auto_scale_lr with the recipe's batch, the recipe's input size."""
    cfg = _load(name)
    kind = _kind(cfg)
    assert 'mmbackbones.models' in cfg.custom_imports.imports
    assert cfg.custom_imports.allow_failed_imports is False
    backbone = cfg.model.backbone
    assert backbone.type.startswith('mmbackbones.'), 'unscoped types resolve to host classes'
    init_cfg = backbone.get('init_cfg')
    # every detection recipe fine-tunes ImageNet weights; a segmentation recipe may train
    # from scratch (the MobileNetV3 paper's LR-ASPP rows), with no init_cfg
    if kind != 'segmentation' or init_cfg is not None:
        assert init_cfg.type == 'Pretrained'
        # a weight URI, or the converter's default file where none is published
        # (tests/test_weights_uri.py ties each to the converter)
        uri = r'(timm|tv|pycls|clovaai)://\S+'
        assert re.fullmatch(rf'{uri}|checkpoints/[\w.-]+_imagenet\.pth', init_cfg.checkpoint)
    assert cfg.auto_scale_lr.enable is True
    if kind == 'segmentation':
        assert cfg.auto_scale_lr.base_batch_size > 0
        return
    # the lr of every detection recipe here is given for 8 GPUs x batch_size images
    assert cfg.auto_scale_lr.base_batch_size == GPUS * cfg.train_dataloader.batch_size
    num_classes = [v for k, v in _walk(cfg.model) if k == 'num_classes']
    assert num_classes and set(num_classes) == {80}  # COCO
    for where, pipeline in _pipelines(cfg).items():
        scales = [tuple(t.scale) for t in pipeline if t.type == 'Resize']
        assert scales == [INPUT_SIZE[kind]], f'{where}: Resize scales {scales}'
        loads = [t for t in pipeline if t.type == 'LoadAnnotations']
        assert all(t.get('with_mask', False) == (kind == 'mask') for t in loads), where


def _walk(node: Any):
    """``(key, value)`` of every dict entry of a nested config."""
    for parent, key, value in walk_config(node):
        if isinstance(parent, dict):
            yield key, value


def test_every_config_is_checked() -> None:
    assert len(NAMES) >= 25, 'configs/ went missing'
    assert 'rexnet_fasterrcnn_fpn' in NAMES


# ------------------------------------------------------------------------- structure
# Recipes live in configs/_base_/, one file each, and inherit only host configs or each
# other; a leaf config (configs/{backbone}_{task}.py) holds its backbone and the neck/head
# channels, and inherits a recipe or a config of its own family, never another family's.
BASE_DIR = osp.join(CONFIG_DIR, '_base_')
RECIPES = {  # recipe base -> its _base_
    'faster-rcnn_fpn_1x_coco-1200x800.py': 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask-rcnn_fpn_1x_coco-1200x800.py': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'ssdlite_8xb24-600e_coco-320.py': 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
    # the ReXNet paper's SSDLite: mmdet's with SyncBN, 8 x 32 images, lr 0.01
    'ssdlite_syncbn_8xb32-600e_coco-320.py': osp.join(BASE_DIR, 'ssdlite_8xb24-600e_coco-320.py'),
    'lraspp_4xb4-320k_cityscapes-512x1024.py': 'mmseg::_base_/models/lraspp_m-v3-d8.py',
}
FAMILIES = ('rexnet', 'mobilenetv3', 'efficientnet', 'regnetx', 'resnext')
ALL_FILES = sorted(glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True))


def _is_recipe(path: str) -> bool:
    return osp.basename(osp.dirname(path)) == '_base_'


def _family(path: str) -> str | None:
    """A leaf config's backbone family (its name up to the first '-' or '_'); None for a
    recipe base."""
    return None if _is_recipe(path) else re.match(r'[a-z0-9]+', _name(path)).group(0)


def _bases(path: str) -> list[str]:
    """``_base_`` of a config file, read with ``ast`` (nothing is loaded): a string or a
    list; local entries as normalised paths, ``scope::`` ones as written."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            entries = [value] if isinstance(value, str) else list(value)
            return [
                e if '::' in e else osp.normpath(osp.join(osp.dirname(path), e)) for e in entries
            ]
    return []


def _ancestors(path: str, _seen: tuple[str, ...] = ()) -> list[str]:
    """Every local config ``path`` inherits, recursively (host configs left out)."""
    out = []
    for base in _bases(path):
        if '::' in base:
            continue
        assert osp.isfile(base), f'{path}: _base_ {base} does not exist'
        assert base not in _seen + (path,), f'{path}: _base_ cycle through {base}'
        out += [base, *_ancestors(base, _seen + (path,))]
    return out


def _foreign_bases(path: str) -> list[str]:
    """The configs ``path`` inherits (recursively) that are neither a recipe base nor of
    its own family; for a recipe base, every non-recipe one."""
    family = _family(path)
    return [b for b in _ancestors(path) if _family(b) not in (None, family)]


def _block_tables(path: str) -> list[str]:
    """Block tables in a config: a ``blocks`` key, or a list/tuple of 6-tuples (MobileNetV3
    rows: kernel, expansion, out, SE, activation, stride)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'blocks':
            found.append(f'line {node.value.lineno}: blocks=')
        elif isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == 'blocks' for k in node.keys
        ):
            found.append(f"line {node.lineno}: 'blocks' key")
        elif (
            isinstance(node, (ast.List, ast.Tuple))
            and node.elts
            and all(isinstance(e, (ast.List, ast.Tuple)) and len(e.elts) == 6 for e in node.elts)
        ):
            found.append(f'line {node.lineno}: a table of {len(node.elts)} 6-tuples')
    return found


def test_recipe_bases() -> None:
    """configs/_base_/ holds the recipes (and nothing else), each inheriting its host
    config; every leaf inherits a recipe, and only recipes name host configs."""
    assert osp.isdir(BASE_DIR)
    found = {osp.basename(p) for p in ALL_FILES if _is_recipe(p)}
    assert found == set(RECIPES), f'configs/_base_/: {sorted(found)}'
    used = set()
    for path in ALL_FILES:
        bases = _bases(path)
        assert bases, f'{path}: no _base_'
        if _is_recipe(path):
            assert bases[0] == RECIPES[osp.basename(path)], bases
            continue
        assert osp.dirname(path) == CONFIG_DIR, f'{path}: leaf configs are configs/*.py'
        hosts = [b for b in bases if '::' in b]
        assert not hosts, f'{path}: names host configs {hosts}; inherit a configs/_base_/ recipe'
        recipes = [osp.basename(b) for b in _ancestors(path) if _is_recipe(b)]
        assert recipes, f'{path} inherits no configs/_base_/ recipe'
        used.update(recipes)
    assert used == set(RECIPES), f'unused recipes: {sorted(set(RECIPES) - used)}'


@pytest.mark.parametrize('path', ALL_FILES, ids=lambda p: osp.relpath(p, CONFIG_DIR))
def test_no_config_inherits_another_family(path: str) -> None:
    """A leaf inherits recipes and its own family's configs (a width variant its family's
    root); a recipe inherits only recipes."""
    if not _is_recipe(path):
        assert _family(path) in FAMILIES, f'{path}: add its family to FAMILIES'
    foreign = [osp.relpath(b, CONFIG_DIR) for b in _foreign_bases(path)]
    assert not foreign, f'{osp.relpath(path, CONFIG_DIR)} inherits {foreign}'


@pytest.mark.parametrize('path', ALL_FILES, ids=lambda p: osp.relpath(p, CONFIG_DIR))
def test_no_block_tables(path: str) -> None:
    """Architectures are named (``arch='large'``, ``reduced_tail='segmentation'``), never
    spelled out as block tables in a config."""
    assert not _block_tables(path), _block_tables(path)


def test_structure_checks_catch_the_old_layout(tmp_path) -> None:
    """The two checks above on the layout this replaced: a ReXNet leaf as the base of an
    EfficientNet config, and a MobileNetV3 block table copied into a config."""
    rexnet = tmp_path / 'rexnet_fasterrcnn_fpn.py'
    rexnet.write_text("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n")
    variant = tmp_path / 'rexnet-0.9_fasterrcnn_fpn.py'
    variant.write_text("_base_ = './rexnet_fasterrcnn_fpn.py'\n")
    effnet = tmp_path / 'efficientnet-b0_fasterrcnn_fpn.py'
    effnet.write_text("_base_ = ['./rexnet-0.9_fasterrcnn_fpn.py']\n")
    assert _foreign_bases(str(variant)) == []
    assert _foreign_bases(str(effnet)) == [str(variant), str(rexnet)]
    (tmp_path / '_base_').mkdir()
    recipe = tmp_path / '_base_' / 'recipe.py'
    recipe.write_text("_base_ = '../rexnet_fasterrcnn_fpn.py'\n")
    assert _foreign_bases(str(recipe)) == [str(rexnet)]

    table = tmp_path / 'mobilenetv3-large_lraspp_cityscapes.py'
    table.write_text(
        'large_seg_blocks = [\n'
        "    (3, 16, 16, False, 'RE', 1),\n"
        "    (3, 64, 24, False, 'RE', 2),\n"
        ']\n'
        'model = dict(backbone=dict(arch=dict(blocks=large_seg_blocks)))\n'
    )
    assert len(_block_tables(str(table))) == 2  # the table and the blocks= key
    assert _block_tables(osp.join(CONFIG_DIR, 'rexnet_ssdlite.py')) == []


# The segmentation tail of the paper's TF code (deeplab's mobilenet_v3_large_seg /
# mobilenet_v3_small_seg) as literal rows, as configs/mobilenetv3-*_lraspp_cityscapes.py
# spelled it (with reduced_tail=True halving the rest) before it became
# MobileNetV3(reduced_tail='segmentation'). Columns: kernel, expansion, out, SE, act, stride.
LARGE_SEG_BLOCKS = [
    (3, 16, 16, False, 'RE', 1),
    (3, 64, 24, False, 'RE', 2),
    (3, 72, 24, False, 'RE', 1),
    (5, 72, 40, True, 'RE', 2),
    (5, 120, 40, True, 'RE', 1),
    (5, 120, 40, True, 'RE', 1),
    (3, 240, 80, False, 'HS', 2),
    (3, 200, 80, False, 'HS', 1),
    (3, 184, 80, False, 'HS', 1),
    (3, 184, 80, False, 'HS', 1),
    (3, 480, 112, True, 'HS', 1),
    (3, 672, 112, True, 'HS', 1),
    (5, 336, 160, True, 'HS', 2),  # the first stride-32 block: 672 halved
    (5, 960, 160, True, 'HS', 1),
    (5, 960, 160, True, 'HS', 1),
]
SMALL_SEG_BLOCKS = [
    (3, 16, 16, True, 'RE', 2),
    (3, 72, 24, False, 'RE', 2),
    (3, 88, 24, False, 'RE', 1),
    (5, 96, 40, True, 'HS', 2),
    (5, 240, 40, True, 'HS', 1),
    (5, 240, 40, True, 'HS', 1),
    (5, 120, 48, True, 'HS', 1),
    (5, 144, 48, True, 'HS', 1),
    (5, 144, 96, True, 'HS', 2),  # the first stride-32 block: 288 halved
    (5, 576, 96, True, 'HS', 1),
    (5, 576, 96, True, 'HS', 1),
]
SEG_TABLES = {
    'large': dict(blocks=LARGE_SEG_BLOCKS),
    'small': dict(blocks=SMALL_SEG_BLOCKS, classifier_channels=1024),
}
# params of the LR-ASPP models as built from those tables (19 classes; Table 7: 1.51M / 0.47M)
LRASPP_PARAMS = {
    'mobilenetv3-large_lraspp_cityscapes': 1_505_550,
    'mobilenetv3-small_lraspp_cityscapes': 467_486,
}


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize('arch', sorted(SEG_TABLES))
def test_segmentation_tail_is_the_paper_table(arch: str) -> None:
    """``MobileNetV3(arch, reduced_tail='segmentation')`` is the paper's segmentation
    table (C4 halved too); torchvision's ``reduced_tail=True`` is not."""
    from mmbackbones.models.backbones.mobilenet_v3 import MobileNetV3

    kw = dict(output_stride=16, out_indices=(2, 5))
    with torch.device('meta'):
        option = MobileNetV3(arch, reduced_tail='segmentation', **kw)
        table = MobileNetV3(SEG_TABLES[arch], reduced_tail=True, **kw)
        torchvision_tail = MobileNetV3(arch, reduced_tail=True, **kw)
    assert _shapes(option) == _shapes(table)
    assert option.out_channels == table.out_channels
    assert option.classifier_channels == table.classifier_channels
    assert _shapes(option) != _shapes(torchvision_tail)


@pytest.mark.parametrize('name', sorted(LRASPP_PARAMS))
def test_lraspp_configs_build_the_paper_tables(name: str) -> None:
    """The MobileNetV3 LR-ASPP configs build the network their block tables built."""
    cfg = _load(name)
    assert cfg.model.backbone.reduced_tail == 'segmentation'
    model = _build(cfg, _model_cfg(cfg), device='meta')
    assert _count(model) == LRASPP_PARAMS[name]
    table_cfg = _model_cfg(cfg)
    table_cfg.backbone.update(arch=SEG_TABLES[cfg.model.backbone.arch], reduced_tail=True)
    assert _shapes(model) == _shapes(_build(cfg, table_cfg, device='meta'))


# ------------------------------------------------------------------------ build and step
def _step_detection(cfg: Config, kind: str) -> None:
    from mmdet.testing import demo_mm_inputs

    model_cfg = _model_cfg(cfg)
    if kind in ('faster', 'mask'):
        # CPU time: the R-CNN heads cost per RoI (512 sampled per image in training, 1000
        # proposals and 100 detections, each with a 4-conv mask head, in testing); a few
        # suffice for a smoke test
        model_cfg.train_cfg.rcnn.sampler.num = 16
        model_cfg.test_cfg.rpn.max_per_img = 50
        model_cfg.test_cfg.rcnn.max_per_img = 10
    model = _build(cfg, model_cfg)
    model.init_weights()
    with_mask = kind == 'mask'
    # SSDLite at its 320x320 input; R-CNNs at a small size, both orientations
    shapes = [(3, 320, 320)] * 2 if kind == 'ssdlite' else [(3, 64, 96), (3, 96, 64)]
    packed = demo_mm_inputs(2, shapes, num_items=[3, 5], num_classes=80, with_mask=with_mask)

    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss), losses
    loss.backward()
    assert ('loss_mask' in losses) == with_mask
    for part in ('backbone', 'neck'):
        missing = [
            n
            for n, p in getattr(model, part).named_parameters()
            if p.requires_grad and p.grad is None
        ]
        assert not missing, f'{part} parameters without gradient: {missing[:5]}'

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        # SSDLite predicts through mmbackbones.SSDHead (mmdet 3.3's SSDHead cannot)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for res, shape in zip(results, shapes):
        pred = res.pred_instances
        assert pred.bboxes.shape[1:] == (4,) and len(pred.scores) == len(pred.labels)
        if with_mask:
            assert pred.masks.shape[1:] == shape[1:]  # pasted at the image size


def _step_segmentation(cfg: Config, kind: str) -> None:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    model_cfg = _model_cfg(cfg)
    heads = model_cfg.decode_head
    head = heads[0] if isinstance(heads, (list, tuple)) else heads
    num_classes = head.num_classes
    # a small input; but mmseg's own LRASPPHead pools with a fixed 49x49 window, so with
    # it the recipe's crop (the top feature map must be at least 49 px)
    h, w = (128, 256)
    if head.type in ('LRASPPHead', 'mmseg.LRASPPHead'):
        h, w = cfg.get('crop_size') or model_cfg.data_preprocessor.get('size') or (512, 1024)
    if model_cfg.data_preprocessor.get('size'):
        model_cfg.data_preprocessor.size = (h, w)  # else it pads training batches to the crop
    model = _build(cfg, model_cfg)
    model.init_weights()
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)] * 2
    samples = [
        SegDataSample(
            gt_sem_seg=PixelData(data=torch.randint(0, num_classes, (1, h, w), generator=gen)),
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)),
        )
        for _ in inputs
    ]
    packed = dict(inputs=inputs, data_samples=samples)

    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss), losses
    loss.backward()
    missing = [
        n for n, p in model.backbone.named_parameters() if p.requires_grad and p.grad is None
    ]
    assert not missing, f'backbone parameters without gradient: {missing[:5]}'

    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert [tuple(r.pred_sem_seg.data.shape) for r in results] == [(1, h, w)] * 2


STEPS: dict[str, Callable[[Config, str], None]] = {
    'ssdlite': _step_detection,
    'faster': _step_detection,
    'mask': _step_detection,
    'segmentation': _step_segmentation,
}


@pytest.mark.parametrize('name', NAMES)
def test_build_and_step(name: str) -> None:
    """Load, build (Pretrained init removed), neck in_channels == backbone out_channels,
    one loss step with backward and one predict step on random input."""
    from mmbackbones.utils import check_neck_channels

    cfg = _load(name)
    kind = _kind(cfg)
    if kind not in STEPS:
        pytest.fail(f'{name}: no build-and-step test for {kind!r} configs')
    out_channels = check_neck_channels(_model_cfg(cfg))  # raises naming both lists
    assert out_channels is not None, 'not an mmbackbones backbone'
    if kind == 'ssdlite':  # the head takes the neck's levels
        assert list(cfg.model.bbox_head.in_channels) == list(cfg.model.neck.out_channels)
    torch.manual_seed(0)
    STEPS[kind](cfg, kind)


# --------------------------------------------------------------------- params vs papers
# Published params (M) as printed, so that the last digit's rounding is known.
# ReXNet paper (COCO transfer tables) and MobileNetV3 paper (SSDLite).
PAPER_PARAMS = {
    'rexnet-0.9_ssdlite': '5.0',
    'rexnet_ssdlite': '5.7',
    'rexnet-1.3_ssdlite': '8.4',
    'efficientnet-b0_ssdlite': '6.2',
    'efficientnet-b1_ssdlite': '8.7',
    'efficientnet-b2_ssdlite': '10.0',
    'mobilenetv3-large_ssdlite': '4.97',
    'mobilenetv3-large-rt_ssdlite': '3.22',
    'mobilenetv3-small_ssdlite': '2.49',
    'mobilenetv3-small-rt_ssdlite': '1.77',
    'rexnet-0.9_fasterrcnn_fpn': '20.1',
    'rexnet_fasterrcnn_fpn': '20.7',
    'rexnet-2.2_fasterrcnn_fpn': '33.0',
    'efficientnet-b0_fasterrcnn_fpn': '21.0',
    'resnext-101-32x4d_fasterrcnn_fpn': '60.4',  # the paper's "ResNeXt-101"
    'rexnet-0.9_maskrcnn_fpn': '22.8',
    'rexnet_maskrcnn_fpn': '23.3',
    'rexnet-2.2_maskrcnn_fpn': '35.6',
    'efficientnet-b0_maskrcnn_fpn': '23.7',
}
# Configs no paper gives a detection model size for; their backbone is checked against
# the published ImageNet size instead (with the classifier, params in M).
IMAGENET_PARAMS = {
    'resnext-101-64x4d_fasterrcnn_fpn': 83.455272,  # torchvision resnext101_64x4d
    'regnetx-3.2gf_fasterrcnn_fpn': 15.296552,  # pycls RegNetX-3.2GF
    'resnext-101-32x4d_maskrcnn_fpn': 44.177704,  # timm resnext101_32x4d
    'resnext-101-64x4d_maskrcnn_fpn': 83.455272,
    'regnetx-3.2gf_maskrcnn_fpn': 15.296552,
    'regnetx-4.0gf_maskrcnn_fpn': 22.118248,  # pycls RegNetX-4.0GF
}
TOLERANCE = {'ssdlite': 0.10, 'faster': 0.03, 'mask': 0.03}
# the class count each paper's params are reproduced with (module docstring)
PAPER_NUM_CLASSES = {'ssdlite': 90, 'faster': 80, 'mask': 80}


def _within(ours: float, published: str, rel: float) -> bool:
    """``ours`` (M) within ``rel`` of the published figure, plus half a unit of its last
    printed digit (the paper's own rounding)."""
    paper = Decimal(published)
    half_ulp = Decimal(5) * Decimal(10) ** (paper.as_tuple().exponent - 1)
    return abs(Decimal(ours) - paper) <= paper * Decimal(rel) + half_ulp


def _paper_model(name: str) -> tuple[torch.nn.Module, str]:
    cfg = _load(name)
    kind = _kind(cfg)
    model_cfg = _model_cfg(cfg)
    for _key, node in _walk(model_cfg):
        if isinstance(node, dict) and 'num_classes' in node:
            node['num_classes'] = PAPER_NUM_CLASSES[kind]
    return _build(cfg, model_cfg, device='meta'), kind


def test_every_detection_config_has_a_size_check() -> None:
    from mmbackbones.datasets.builtin import task_of

    detection = {n for n in NAMES if task_of(_load(n)) == 'detection'}
    unchecked = sorted(detection - set(PAPER_PARAMS) - set(IMAGENET_PARAMS))
    assert not unchecked, f'add these configs to PAPER_PARAMS or IMAGENET_PARAMS: {unchecked}'
    assert not (set(PAPER_PARAMS) | set(IMAGENET_PARAMS)) - set(NAMES)


@pytest.mark.parametrize('name', sorted(PAPER_PARAMS))
def test_params_match_paper(name: str) -> None:
    model, kind = _paper_model(name)
    ours = _count(model) / 1e6
    paper = PAPER_PARAMS[name]
    assert _within(
        ours, paper, TOLERANCE[kind]
    ), f"{name}: {ours:.3f}M vs the paper's {paper}M (tolerance {TOLERANCE[kind]:.0%})"


SSDLITE = [n for n in sorted(PAPER_PARAMS) if n.endswith('_ssdlite')]


@pytest.mark.parametrize('name', SSDLITE)
def test_ssdlite_params_tf_layout(name: str) -> None:
    """The papers' SSDLite (TF Object Detection API) predicts 3 anchors, not 6, on the
    lowest level: without those predictors our count is the paper's to 3%."""
    model, _ = _paper_model(name)
    c4 = model.bbox_head.in_channels[0]
    per_anchor = PAPER_NUM_CLASSES['ssdlite'] + 1 + 4  # class scores (+ background), box
    extra = 3 * per_anchor * (c4 + 1)  # 1x1 conv weights and biases
    assert model.bbox_head.num_base_priors[0] == 6
    ours = (_count(model) - extra) / 1e6
    assert _within(ours, PAPER_PARAMS[name], 0.03), f'{name}: {ours:.3f}M'


@pytest.mark.parametrize(
    'base,paper',
    [
        ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '41.8'),
        ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '44.2'),
    ],
)
def test_paper_baselines_reproduce_with_80_classes(tmp_path, base: str, paper: str) -> None:
    """The ReXNet paper's ResNet-50 rows: mmdet's own configs (80 classes) give them."""
    path = tmp_path / 'baseline.py'
    path.write_text(f'_base_ = {base!r}\ncustom_imports = {CUSTOM_IMPORTS!r}\n')
    cfg = Config.fromfile(str(path))
    model = _build(cfg, _model_cfg(cfg), device='meta')
    assert _within(_count(model) / 1e6, paper, 0.01)


@pytest.mark.parametrize('name', sorted(IMAGENET_PARAMS))
def test_backbone_matches_imagenet_size(name: str) -> None:
    from mmbackbones.registry import MODELS

    with torch.device('meta'):
        backbone = MODELS.build(_model_cfg(_load(name)).backbone)
    total = _count(backbone) + _count(backbone.make_classifier(1000))
    assert abs(total / 1e6 - IMAGENET_PARAMS[name]) <= 0.01 * IMAGENET_PARAMS[name]


# ------------------------------------------------------------------------ built-in data
@pytest.mark.slow
@pytest.mark.parametrize('name', NAMES)
def test_builtin_data_loss_step(name: str, builtin_root: str) -> None:
    """``--builtin-data`` rewrites every config into one that loads the built-in set
    through the config's own pipeline and trains on it (one loss step, two images)."""
    from mmengine.dataset import pseudo_collate

    from mmbackbones.datasets import apply_builtin_data

    cfg = apply_builtin_data(_load(name), builtin_root)
    assert 'init_cfg' not in cfg.model.backbone
    model = _build(cfg, copy.deepcopy(cfg.model))
    model.init_weights()
    dataset = _registry(cfg, 'DATASETS').build(cfg.train_dataloader.dataset)
    model.train()
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.slow
@pytest.mark.parametrize(
    'name',
    ['rexnet_ssdlite', 'efficientnet-b0_fasterrcnn_fpn', 'rexnet_maskrcnn_fpn'],
)
def test_train_tool_builtin_data(name: str, tmp_path, builtin_root: str) -> None:
    """``tools/train.py CONFIG --builtin-data``: 2 iterations and a validation (on 8
    images: an untrained R-CNN predicts its 100 boxes and masks per image, slow on CPU)."""
    res = run_tool(
        [
            TRAIN,
            osp.join(CONFIG_DIR, f'{name}.py'),
            '--builtin-data',
            '--work-dir',
            str(tmp_path / 'wd'),
            '--cfg-options',
            'train_cfg.max_iters=2',
            'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False',
            'val_dataloader.dataset.indices=8',  # validate on 8 images
        ],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
    )
    out = res.stdout + res.stderr
    assert 'Iter(train) [2/2]' in out, out[-3000:]  # training itself works
    assert res.returncode == 0, out[-3000:]
    assert 'coco/bbox_mAP' in out
    assert ('coco/segm_mAP' in out) == name.endswith('_maskrcnn_fpn')
    assert osp.isfile(tmp_path / 'wd' / 'iter_2.pth')

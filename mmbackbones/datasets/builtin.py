"""The ``--builtin-data`` switch of ``tools/train.py`` / ``tools/test.py``.

It points any config of ours (or of mmdet/mmseg) at the built-in generated data and swaps
the paper schedule for a CPU-sized one. What changes, and why:

* every dataset (wrappers such as ``RepeatDataset`` unwrapped) reads the built-in set, and
  every evaluator its annotations;
* ``num_classes`` everywhere in the model becomes the built-in class count;
* input size: every ``Resize`` scale becomes the built-in image size (256);
* a ``Pretrained`` backbone init is dropped (no weights can be downloaded here), so the
  backbone trains from scratch: ``frozen_stages=-1`` and ``norm_eval=False``;
* the schedule (iterations, batch, optimiser, lr) is :data:`BUILTIN_SCHEDULES`, seeded
  with :data:`BUILTIN_SEED` (``randomness.seed``; the data order too), so two runs on the
  same machine train alike;
* SSD: the anchors (in pixels of SSDLite's 320 input) are scaled to the image size;
* FPN detectors: the FPN, RPN and RoI heads are narrowed from 256 to 64 channels (fc
  layers 1024 -> 256); at CPU input sizes they otherwise cost ~8x the backbone;
* R-CNN heads sample 64 RoIs per image and RoIAlign 2x2 points per bin (torchvision's
  defaults) instead of 512 and adaptive: mmcv's CPU RoIAlign otherwise takes half the time.

Segmentation (mmseg) configs get the built-in Cityscapes-format set instead
(:mod:`.cityscapes_synth`, standard train ids, so ``num_classes`` is 19), random crops of
``BUILTIN_SCHEDULES['segmentation']['crop_size']`` from the 256x512 images, and the same kind
of CPU-sized schedule (see :func:`_apply_builtin_segmentation`).

Everything can still be overridden afterwards with ``--cfg-options``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from math import ceil
from typing import Any

from mmengine.config import Config, ConfigDict

from mmbackbones.utils.nested import walk_config

from .cityscapes_synth import CITYSCAPES_CLASSES, ensure_cityscapes_synth
from .cityscapes_synth import IMAGE_SIZE as SEG_IMAGE_SIZE
from .shapes import IMAGE_SIZE, SHAPES_CLASSES, ensure_shapes_coco

#: ``randomness.seed`` of the built-in schedules (unless the config sets one): model init,
#: data order (mmengine seeds the sampler with it) and augmentations repeat from run to run
BUILTIN_SEED = 0

# CPU-sized schedules. The detection one is what `make demo` runs (15 min budget on 2
# cores) and reaches bbox AP50 >= 0.5 on the built-in validation split.
BUILTIN_SCHEDULES: dict[str, dict[str, Any]] = {
    'detection': dict(
        max_iters=1000,
        val_interval=500,
        batch_size=4,
        lr=1e-3,
        weight_decay=0.05,
        warmup_iters=50,
        checkpoint_interval=100,
        rcnn_rois=64,
        neck_channels=64,
    ),
    # SSD trains from scratch more slowly than the two-stage detectors (one-stage losses over
    # ~1.3k anchors, SSDLite's zoom-out/crop augmentation): ReXNet SSDLite measured bbox
    # AP50 0.376 after the 1000 iterations above; twice as many, same recipe otherwise
    'detection_ssd': dict(max_iters=2000, val_interval=1000),
    # Segmentation: MobileNetV3-Large LR-ASPP reaches mIoU >= 0.5 on the built-in
    # Cityscapes-format validation split (tests/test_segmentation.py, slow).
    'segmentation': dict(
        max_iters=1000,
        val_interval=500,
        batch_size=8,
        crop_size=(256, 256),  # (h, w) random crops of the 256x512 images
        ratio_range=(0.5, 2.0),  # RandomResize range, as mmseg's Cityscapes recipe
        lr=2e-3,
        weight_decay=0.01,
        warmup_iters=50,
        checkpoint_interval=500,
    ),
}


def task_of(cfg: Config) -> str:
    """'detection' for mmdet configs, 'segmentation' for mmseg ones (by ``default_scope``)."""
    scope = cfg.get('default_scope', None)
    if scope == 'mmdet':
        return 'detection'
    if scope == 'mmseg':
        return 'segmentation'
    raise ValueError(
        f'config default_scope is {scope!r}; tools/train.py serves mmdet '
        "('mmdet') and mmseg ('mmseg') configs"
    )


def _datasets(loader: Any) -> list[Any]:
    """The leaf dataset configs of a dataloader (RepeatDataset/ConcatDataset unwrapped)."""
    out, todo = [], [loader['dataset']]
    while todo:
        ds = todo.pop()
        if 'datasets' in ds:
            todo.extend(ds['datasets'])
        elif 'dataset' in ds:
            todo.append(ds['dataset'])
        else:
            out.append(ds)
    return out


def _loaders(cfg: Config) -> Iterator[tuple[str, str, Any]]:
    """``(split, 'train' | 'val', dataloader)`` of each dataloader the config has (the
    built-in data has a train and a val split), set to the built-in data's workers."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            loader['num_workers'] = 2
            loader['persistent_workers'] = True
            yield split, 'train' if split == 'train' else 'val', loader


def _set_key(node: Any, key: str, value: Any) -> None:
    """Set ``key`` to ``value`` wherever it occurs in a nested config."""
    for parent, k, _ in walk_config(node, skip=(key,)):
        if k == key and isinstance(parent, dict):
            parent[k] = value


def _resize_pipeline(pipeline: list[Any], size: int) -> None:
    for t in pipeline:
        if 'scale' in t and 'Resize' in t['type']:
            t['scale'] = (size, size)
        if t['type'] in ('RandomChoiceResize', 'RandomResize') and 'scales' in t:
            t['scales'] = [(size, size)]
        if t['type'] == 'TestTimeAug':
            for group in t['transforms']:
                _resize_pipeline(group, size)


def _narrow_fpn_heads(model: Any, channels: int) -> None:
    """FPN detectors: 256-wide FPN, RPN and RoI heads cost ~8x the backbone at CPU input
    sizes; narrow them to ``channels`` (fc layers to ``4 * channels``). The backbone and
    the neck's ``in_channels`` are untouched."""
    neck = model.get('neck')
    if not (isinstance(neck, dict) and neck.get('type') == 'FPN'):
        return

    widths = ('in_channels', 'out_channels', 'feat_channels', 'conv_out_channels')
    neck['out_channels'] = channels
    for key in ('rpn_head', 'roi_head', 'bbox_head', 'mask_head'):
        for parent, k, v in walk_config(model.get(key), skip=(*widths, 'fc_out_channels')):
            if k in widths and v == 256:
                parent[k] = channels
            elif k == 'fc_out_channels' and v == 1024:
                parent[k] = 4 * channels


def _scale_ssd_anchors(model: Any, size: int) -> None:
    """SSD's anchors are in pixels of its input (320 for SSDLite): scale their sizes to the
    built-in image size, and set each level's stride to ``size / feature size`` (levels
    after the first halve the map, rounding up). Without this the smallest anchor (48 px
    at 192) misses the small built-in objects."""
    head = model.get('bbox_head')
    gen = head.get('anchor_generator') if isinstance(head, dict) else None
    if not gen or gen.get('type') != 'SSDAnchorGenerator' or 'min_sizes' not in gen:
        return
    scale = size / gen['max_sizes'][-1]  # mmdet's SSD configs end at the input size
    feat = ceil(size / gen['strides'][0])
    strides = []
    for _ in gen['strides']:
        strides.append(round(size / feat))
        feat = ceil(feat / 2)
    gen['strides'] = strides
    gen['min_sizes'] = [round(v * scale) for v in gen['min_sizes']]
    gen['max_sizes'] = [round(v * scale) for v in gen['max_sizes']]


def _drop_pretrained(model: Any) -> None:
    backbone = model.get('backbone', {})
    init_cfg = backbone.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        backbone.pop('init_cfg')  # use the family's default (random) init
        backbone['frozen_stages'] = -1  # training from scratch: nothing may stay random
        backbone['norm_eval'] = False  # BN statistics must be learned
        print(
            '[mmbackbones] built-in data: dropped the Pretrained backbone init '
            f'({init_cfg.get("checkpoint")}); training from scratch',
            flush=True,
        )


def _cpu_schedule(cfg: Config, sched: dict[str, Any], decay: dict[str, Any]) -> Config:
    """The CPU-sized schedule shared by every task: iteration-based loop, linear warm-up then
    ``decay``, AdamW with gradient clipping, frequent checkpoints, iteration logging, and a
    fixed seed (:data:`BUILTIN_SEED`) unless the config has one."""
    cfg.train_cfg = ConfigDict(
        type='IterBasedTrainLoop', max_iters=sched['max_iters'], val_interval=sched['val_interval']
    )
    cfg.param_scheduler = [
        dict(
            type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=sched['warmup_iters']
        ),
        dict(
            decay,
            by_epoch=False,
            begin=sched['warmup_iters'],
            end=sched['max_iters'],
            eta_min=sched['lr'] * 0.01,
        ),
    ]
    # AdamW: from-scratch training on a few hundred images converges far faster than the
    # papers' SGD recipes, which assume ImageNet-pretrained backbones.
    cfg.optim_wrapper = ConfigDict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=sched['lr'], weight_decay=sched['weight_decay']),
        clip_grad=dict(max_norm=10.0, norm_type=2),
    )
    cfg.default_hooks.checkpoint = ConfigDict(
        type='CheckpointHook',
        by_epoch=False,
        interval=sched['checkpoint_interval'],
        max_keep_ckpts=2,
        save_last=True,
    )
    cfg.default_hooks.logger = ConfigDict(
        type='LoggerHook', interval=20, log_metric_by_epoch=False
    )
    cfg.log_processor = ConfigDict(type='LogProcessor', window_size=20, by_epoch=False)
    if cfg.get('auto_scale_lr'):
        cfg.auto_scale_lr.enable = False
    randomness = dict(cfg.get('randomness') or {})
    if randomness.get('seed') is None:
        randomness['seed'] = BUILTIN_SEED
    cfg.randomness = randomness
    return cfg


def builtin_data_root() -> str:
    """Where built-in data sets are generated: ``$MMBACKBONES_DATA_ROOT`` or
    ``data/builtin`` (relative to the working directory)."""
    return os.environ.get('MMBACKBONES_DATA_ROOT', 'data/builtin')


def apply_builtin_data(cfg: Config, data_root: str | None = None) -> Config:
    """Rewrite ``cfg`` in place to train/evaluate on the built-in data (see module doc)."""
    data_root = data_root or builtin_data_root()
    task = task_of(cfg)
    if task == 'segmentation':
        return _apply_builtin_segmentation(cfg, data_root)
    if task != 'detection':
        raise ValueError(f'no built-in data for {task} configs yet')
    sched = BUILTIN_SCHEDULES[task]
    if 'SSDHead' in str(cfg.model.get('bbox_head', {}).get('type', '')):
        sched = {**sched, **BUILTIN_SCHEDULES['detection_ssd']}
    root = ensure_shapes_coco(f'{data_root}/shapes_coco')
    for split, ann_split, loader in _loaders(cfg):
        for ds in _datasets(loader):
            ds['type'] = 'CocoDataset'
            ds['data_root'] = root + '/'
            ds['ann_file'] = f'annotations/instances_{ann_split}.json'
            ds['data_prefix'] = dict(img=f'{ann_split}/')
            ds['metainfo'] = dict(classes=SHAPES_CLASSES)
            _resize_pipeline(ds.get('pipeline', []), IMAGE_SIZE)
        if split == 'train':
            loader['batch_size'] = sched['batch_size']
    for split in ('val', 'test'):
        ev = cfg.get(f'{split}_evaluator')
        for e in ev if isinstance(ev, list) else [ev] if ev else []:
            if 'ann_file' in e:
                e['ann_file'] = f'{root}/annotations/instances_val.json'
    _set_key(cfg.model, 'num_classes', len(SHAPES_CLASSES))
    _drop_pretrained(cfg.model)
    _narrow_fpn_heads(cfg.model, sched['neck_channels'])
    _scale_ssd_anchors(cfg.model, IMAGE_SIZE)
    # RoIAlign on the CPU dominates R-CNN training time: sample 2x2 points per bin
    # (torchvision's default) instead of adaptively, and 128 instead of 512 RoIs per image
    _set_key(cfg.model, 'sampling_ratio', 2)
    rcnn = cfg.model.get('train_cfg', {}).get('rcnn')
    if rcnn and 'sampler' in rcnn:
        rcnn.sampler.num = sched['rcnn_rois']

    return _cpu_schedule(cfg, sched, dict(type='CosineAnnealingLR'))


# --------------------------------------------------------------------- segmentation
def _seg_pipeline(pipeline: list[Any], image_hw: tuple[int, int], sched: dict) -> None:
    """Scale every resize / crop of an mmseg pipeline to the built-in image size."""
    h, w = image_hw
    for t in pipeline:
        kind = t['type']
        if kind == 'RandomResize':
            t['scale'] = (w, h)  # mmseg scales are (w, h)
            t['ratio_range'] = sched['ratio_range']
        elif 'Resize' in kind and 'scale' in t:
            t['scale'] = (w, h)
        if kind == 'RandomChoiceResize' and 'scales' in t:
            t['scales'] = [(w, h)]
        if kind == 'RandomCrop':
            t['crop_size'] = sched['crop_size']
        if kind == 'LoadAnnotations':
            t.pop('reduce_zero_label', None)  # train ids: 0 is road, not "other" (ADE20K)
        if kind == 'TestTimeAug':
            for group in t['transforms']:
                _seg_pipeline(group, image_hw, sched)


def _apply_builtin_segmentation(cfg: Config, data_root: str) -> Config:
    """The segmentation branch of :func:`apply_builtin_data` (mmseg configs).

    * every dataset becomes a ``CityscapesDataset`` on the built-in Cityscapes-format set
      (``leftImg8bit/`` + ``gtFine/*_labelTrainIds.png``; ``test`` reads ``val``);
    * ``RandomResize`` / ``Resize`` scales become the 256x512 image size, ``RandomCrop`` and
      the data preprocessor's padding size the built-in crop, a ``slide`` test mode slides
      that crop;
    * ``num_classes`` becomes 19 (standard train ids; the generator uses a subset of them);
    * ``Pretrained`` backbone inits and mmseg's ``model.pretrained`` are dropped;
    * schedule :data:`BUILTIN_SCHEDULES` ``['segmentation']``: iteration-based, AdamW with
      linear warm-up and poly decay (mmseg's schedule shape; AdamW converges far faster
      from scratch on a few hundred images than the recipe's SGD).
    """
    sched = BUILTIN_SCHEDULES['segmentation']
    root = ensure_cityscapes_synth(f'{data_root}/cityscapes_synth')
    for split, sub, loader in _loaders(cfg):
        for ds in _datasets(loader):
            ds['type'] = 'CityscapesDataset'
            ds['data_root'] = root + '/'
            ds['data_prefix'] = dict(img_path=f'leftImg8bit/{sub}', seg_map_path=f'gtFine/{sub}')
            # Cityscapes finds its files by suffix; keys of other datasets do not apply
            for key in ('ann_file', 'img_suffix', 'seg_map_suffix', 'reduce_zero_label'):
                ds.pop(key, None)
            ds['metainfo'] = dict(classes=CITYSCAPES_CLASSES)
            _seg_pipeline(ds.get('pipeline', []), SEG_IMAGE_SIZE, sched)
        loader['batch_size'] = sched['batch_size'] if split == 'train' else 4
    if 'tta_pipeline' in cfg:
        _seg_pipeline(cfg.tta_pipeline, SEG_IMAGE_SIZE, sched)
    if 'crop_size' in cfg:
        cfg.crop_size = sched['crop_size']
    model = cfg.model
    if model.get('data_preprocessor', {}).get('size'):
        model.data_preprocessor.size = sched['crop_size']
    test_cfg = model.get('test_cfg') or {}
    if test_cfg.get('mode') == 'slide':
        test_cfg['crop_size'] = sched['crop_size']
        test_cfg['stride'] = tuple(s // 2 for s in sched['crop_size'])
    _set_key(model, 'num_classes', len(CITYSCAPES_CLASSES))
    _drop_pretrained(model)
    if model.get('pretrained'):
        print(
            '[mmbackbones] built-in data: dropped model.pretrained '
            f'({model.pretrained}); training from scratch',
            flush=True,
        )
        model.pretrained = None

    # mmseg's schedule shape: poly decay after the warm-up
    return _cpu_schedule(cfg, sched, dict(type='PolyLR', power=0.9))

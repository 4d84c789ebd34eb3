"""The ``--builtin-data`` switch of ``tools/train.py`` / ``tools/test.py``.

It points any config of ours (or of mmdet/mmseg) at the built-in generated data and swaps
the paper schedule for a CPU-sized one. What changes, and why:

* every dataset (wrappers such as ``RepeatDataset`` unwrapped) reads the built-in set, and
  every evaluator its annotations;
* ``num_classes`` everywhere in the model becomes the built-in class count;
* input size: every ``Resize`` scale becomes the built-in image size (256);
* a ``Pretrained`` backbone init is dropped (no weights can be downloaded here), so the
  backbone trains from scratch: ``frozen_stages=-1`` and ``norm_eval=False``;
* the schedule (iterations, batch, optimiser, lr) is :data:`BUILTIN_SCHEDULES`;
* R-CNN heads sample 128 RoIs per image and RoIAlign 2x2 points per bin (torchvision's
  defaults) instead of 512 and adaptive: mmcv's CPU RoIAlign otherwise takes half the time.

Everything can still be overridden afterwards with ``--cfg-options``.
"""

from __future__ import annotations

import os
from typing import Any

from mmengine.config import Config, ConfigDict

from .shapes import IMAGE_SIZE, SHAPES_CLASSES, ensure_shapes_coco

# CPU-sized schedules. The detection one is what `make demo` runs (15 min budget on 2
# cores) and reaches bbox AP50 >= 0.5 on the built-in validation split.
BUILTIN_SCHEDULES: dict[str, dict[str, Any]] = {
    'detection': dict(
        max_iters=1200,
        val_interval=400,
        batch_size=4,
        lr=1e-3,
        weight_decay=0.05,
        warmup_iters=100,
        checkpoint_interval=200,
        rcnn_rois=128,
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


def _set_key(node: Any, key: str, value: Any) -> None:
    """Set ``key`` to ``value`` wherever it occurs in a nested config."""
    if isinstance(node, dict):
        for k in node:
            if k == key:
                node[k] = value
            else:
                _set_key(node[k], key, value)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _set_key(v, key, value)


def _resize_pipeline(pipeline: list[Any], size: int) -> None:
    for t in pipeline:
        if 'scale' in t and 'Resize' in t['type']:
            t['scale'] = (size, size)
        if t['type'] in ('RandomChoiceResize', 'RandomResize') and 'scales' in t:
            t['scales'] = [(size, size)]
        if t['type'] == 'TestTimeAug':
            for group in t['transforms']:
                _resize_pipeline(group, size)


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


def builtin_data_root() -> str:
    """Where built-in data sets are generated: ``$MMBACKBONES_DATA_ROOT`` or
    ``data/builtin`` (relative to the working directory)."""
    return os.environ.get('MMBACKBONES_DATA_ROOT', 'data/builtin')


def apply_builtin_data(cfg: Config, data_root: str | None = None) -> Config:
    """Rewrite ``cfg`` in place to train/evaluate on the built-in data (see module doc)."""
    data_root = data_root or builtin_data_root()
    task = task_of(cfg)
    if task != 'detection':
        raise ValueError(f'no built-in data for {task} configs yet')
    sched = BUILTIN_SCHEDULES[task]
    root = ensure_shapes_coco(f'{data_root}/shapes_coco')
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        ann_split = 'train' if split == 'train' else 'val'
        for ds in _datasets(loader):
            ds['type'] = 'CocoDataset'
            ds['data_root'] = root + '/'
            ds['ann_file'] = f'annotations/instances_{ann_split}.json'
            ds['data_prefix'] = dict(img=f'{ann_split}/')
            ds['metainfo'] = dict(classes=SHAPES_CLASSES)
            _resize_pipeline(ds.get('pipeline', []), IMAGE_SIZE)
        if split == 'train':
            loader['batch_size'] = sched['batch_size']
        loader['num_workers'] = 2
        loader['persistent_workers'] = True
    for split in ('val', 'test'):
        ev = cfg.get(f'{split}_evaluator')
        for e in ev if isinstance(ev, list) else [ev] if ev else []:
            if 'ann_file' in e:
                e['ann_file'] = f'{root}/annotations/instances_val.json'
    _set_key(cfg.model, 'num_classes', len(SHAPES_CLASSES))
    _drop_pretrained(cfg.model)
    # RoIAlign on the CPU dominates R-CNN training time: sample 2x2 points per bin
    # (torchvision's default) instead of adaptively, and 128 instead of 512 RoIs per image
    _set_key(cfg.model, 'sampling_ratio', 2)
    rcnn = cfg.model.get('train_cfg', {}).get('rcnn')
    if rcnn and 'sampler' in rcnn:
        rcnn.sampler.num = sched['rcnn_rois']

    cfg.train_cfg = ConfigDict(
        type='IterBasedTrainLoop', max_iters=sched['max_iters'], val_interval=sched['val_interval']
    )
    cfg.param_scheduler = [
        dict(
            type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=sched['warmup_iters']
        ),
        dict(
            type='CosineAnnealingLR',
            by_epoch=False,
            begin=sched['warmup_iters'],
            end=sched['max_iters'],
            eta_min=sched['lr'] * 0.01,
        ),
    ]
    # AdamW: from-scratch training on a few hundred images converges far faster than the
    # paper's SGD recipe, which assumes ImageNet-pretrained backbones.
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
    cfg.default_hooks.logger = ConfigDict(type='LoggerHook', interval=20)
    cfg.log_processor = ConfigDict(type='LogProcessor', window_size=20, by_epoch=False)
    if cfg.get('auto_scale_lr'):
        cfg.auto_scale_lr.enable = False
    return cfg

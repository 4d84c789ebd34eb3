"""Fail fast, with a message that says what to do, before a long run starts."""

from __future__ import annotations

import os.path as osp
from typing import Any

from mmengine.config import Config

from mmbackbones.datasets.builtin import _datasets, task_of

from .errors import ArgumentError, InputFileError, UserError

LAYOUTS = {
    'detection': (
        'COCO',
        'data/coco',
        """\
    data/coco/
      annotations/instances_train2017.json
      annotations/instances_val2017.json
      train2017/*.jpg
      val2017/*.jpg
  (download from https://cocodataset.org, or symlink your copy to data/coco)""",
    ),
    'segmentation': (
        'Cityscapes',
        'data/cityscapes',
        """\
    data/cityscapes/
      leftImg8bit/{train,val}/<city>/*_leftImg8bit.png
      gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png
  (download from https://www.cityscapes-dataset.com, then create the *_labelTrainIds.png
   maps with mmseg's tools/dataset_converters/cityscapes.py)""",
    ),
}


class DataNotFoundError(UserError, FileNotFoundError):
    """The config's data set is missing; the message says what, ``detail`` where it was
    expected and how to use the built-in data instead."""


def _missing_paths(ds: dict[str, Any]) -> list[str]:
    root = ds.get('data_root') or ''
    paths = []
    if ds.get('ann_file'):
        paths.append(osp.join(root, ds['ann_file']))
    prefix = ds.get('data_prefix') or {}
    paths += [osp.join(root, p) for p in prefix.values() if p]
    if not paths and root:
        paths.append(root)
    return [p for p in paths if not osp.exists(p)]


def check_data(
    cfg: Config,
    config_path: str,
    tool: str = 'tools/train.py',
    splits: tuple[str, ...] = ('train', 'val', 'test'),
) -> None:
    """Raise :class:`DataNotFoundError` if any dataset path of the config is missing."""
    task = task_of(cfg)
    missing: list[str] = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            for ds in _datasets(loader):
                missing += [p for p in _missing_paths(ds) if p not in missing]
    if not missing:
        return
    name, root, layout = LAYOUTS[task]
    extra = ' CHECKPOINT' if tool.endswith('test.py') else ''
    raise DataNotFoundError(
        f'{name} not found for {config_path}: missing {", ".join(missing[:3])}'
        f'{" ..." if len(missing) > 3 else ""}',
        f'  Expected the standard layout under {root}:\n{layout}\n'
        '  To run on the built-in data instead (generated on first use, CPU-sized schedule):\n'
        f'    python {tool} {config_path}{extra} --builtin-data',
    )


# (config key, the least valid value): counts that mmengine would accept and then run
# nothing with (max_iters=0 trains nothing and exits 0) or fail on deep inside a sampler
POSITIVE_KEYS = (
    ('train_cfg.max_iters', 1),
    ('train_cfg.max_epochs', 1),
    ('train_cfg.val_interval', 1),
    ('train_dataloader.batch_size', 1),
    ('val_dataloader.batch_size', 1),
    ('test_dataloader.batch_size', 1),
    ('train_dataloader.num_workers', 0),
    ('val_dataloader.num_workers', 0),
    ('test_dataloader.num_workers', 0),
)


def check_counts(cfg: Config, splits: tuple[str, ...] = ('train', 'val', 'test')) -> None:
    """Schedule lengths and loader sizes of ``splits`` must be whole numbers in range.

    Raises:
        ArgumentError: naming the key, the least valid value and the value found.

    Example:
        >>> try:
        ...     check_counts(Config(dict(train_cfg=dict(max_iters=0))))
        ... except ArgumentError as e:
        ...     print(e)
        config: train_cfg.max_iters must be an integer >= 1, got 0
    """
    for key, least in POSITIVE_KEYS:
        if key.split('_', 1)[0] not in splits:
            continue
        section, name = key.split('.')
        node = cfg.get(section)
        if not isinstance(node, dict) or node.get(name) is None:
            continue
        value = node[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ArgumentError(f'config: {key} must be an integer >= {least}, got {value!r}')


def check_pretrained(cfg: Config) -> None:
    """A ``Pretrained`` backbone init must point at an existing file, or at a weight URI
    whose file is fetched now; weights of ours must match the config's settings (BN eps,
    data_preprocessor: :func:`mmbackbones.convert.uri_check.check_config`)."""
    from mmbackbones.convert.uri_check import check_config

    init_cfg = cfg.model.get('backbone', {}).get('init_cfg')
    if not (isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'):
        return
    if check_config(cfg):
        return
    ckpt = init_cfg.get('checkpoint', '')
    if '://' in ckpt or osp.isfile(ckpt):
        return
    raise InputFileError(
        f'model.backbone.init_cfg.checkpoint {ckpt!r} does not exist. Convert your '
        'ImageNet weights first (see docs/weights.md)',
        f'    python tools/convert_weights.py SRC {ckpt} --source timm ...\n'
        '  or train from scratch with --cfg-options model.backbone.init_cfg=None',
    )


def _neck_in_channels(model_cfg: dict[str, Any]) -> tuple[str, list[int]] | None:
    neck = model_cfg.get('neck')
    if isinstance(neck, (list, tuple)):
        neck = neck[0] if neck else None
    if neck and 'in_channels' in neck:
        return f'neck {neck["type"]}', list(neck['in_channels'])
    head = model_cfg.get('decode_head')
    if head and 'in_channels' in head:
        chs = head['in_channels']
        chs = list(chs) if isinstance(chs, (list, tuple)) else [chs]
        index = head.get('in_index', list(range(len(chs))))
        index = list(index) if isinstance(index, (list, tuple)) else [index]
        return f'decode_head {head["type"]} (in_index {index})', chs
    return None


def check_neck_channels(model_cfg: dict[str, Any]) -> list[int] | None:
    """Build our backbone from ``model_cfg`` and check the neck's ``in_channels``.

    Returns the backbone's ``out_channels`` (``None`` for a backbone that is not ours).
    Raises ``ValueError`` naming both lists when they disagree.
    """
    from mmbackbones.registry import MODELS

    bb_cfg = dict(model_cfg['backbone'])
    if not str(bb_cfg.get('type', '')).startswith('mmbackbones.'):
        return None
    bb_cfg.pop('init_cfg', None)
    backbone = MODELS.build(bb_cfg)
    expected = backbone.out_channels
    found = _neck_in_channels(model_cfg)
    if found is None:
        return expected
    what, chs = found
    if what.startswith('decode_head'):
        index = [int(i) for i in what.split('in_index ')[1].strip('[])').split(',')]
        ok = (
            all(0 <= i < len(expected) for i in index)
            and len(chs) == len(index)
            and all(expected[i] == c for i, c in zip(index, chs))
        )
    else:
        ok = chs == expected
    if not ok:
        raise ValueError(
            f'{what} in_channels {chs} do not match the backbone '
            f'{bb_cfg["type"]}(arch={bb_cfg.get("arch")!r}, '
            f'out_indices={tuple(backbone.out_indices)}) out_channels {expected}; '
            f'taps: {backbone._describe_taps()}'
        )
    return expected

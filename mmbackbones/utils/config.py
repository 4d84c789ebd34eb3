"""Config preparation shared by ``tools/train.py`` and ``tools/test.py``."""

from __future__ import annotations

import argparse
import os.path as osp
from typing import Any

from mmengine.config import Config, DictAction

from mmbackbones.datasets.builtin import apply_builtin_data, task_of

from .checks import check_counts, check_data, check_neck_channels, check_pretrained
from .cli import fail
from .dist import prepare_cpu_distributed

__all__ = ['CfgOptions', 'add_common_args', 'fail', 'load_config']


class CfgOptions(DictAction):
    """mmengine's ``DictAction`` (``--cfg-options KEY=VALUE ...``) that names a malformed
    item (mmengine fails with "not enough values to unpack")."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        items = values if isinstance(values, list) else [values]
        bad = [v for v in items if '=' not in v or not v.split('=', 1)[0].strip()]
        if bad:
            raise argparse.ArgumentError(
                self, f'expected KEY=VALUE items, got {bad[0]!r} (e.g. train_cfg.max_iters=100)'
            )
        super().__call__(parser, namespace, values, option_string)


def add_common_args(parser: Any) -> None:
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--builtin-data',
        action='store_true',
        help='train/evaluate on the built-in generated data with a CPU-sized schedule '
        '(see mmbackbones/datasets/builtin.py); no download needed',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptions,
        help='override config keys, e.g. train_cfg.max_iters=100',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (torchrun: pytorch)',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: Any, tool: str) -> Config:
    """Load and check the config; apply ``--builtin-data`` and ``--cfg-options``.

    A user's mistake raises :class:`~mmbackbones.utils.errors.UserError` (or a project
    ``ValueError``), which the tool's entry point prints as one line with exit status 2.
    """
    if not osp.isfile(args.config):
        what = 'is a directory' if osp.isdir(args.config) else 'does not exist'
        fail(f'config file {args.config!r} {what}')
    cfg = Config.fromfile(args.config)  # syntax errors: file:line from the entry point
    task_of(cfg)
    if args.builtin_data:
        apply_builtin_data(cfg)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.launcher != 'none':
        prepare_cpu_distributed(cfg)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('work_dirs', name + ('_builtin' if args.builtin_data else ''))
    splits = ('train', 'val') if tool.endswith('train.py') else ('test',)
    check_counts(cfg, splits)
    check_data(cfg, args.config, tool, splits)
    if tool.endswith('train.py'):
        check_pretrained(cfg)
    check_neck_channels(cfg.model)
    return cfg

"""Train an mmdet or mmseg config (chosen by its ``default_scope``).

python tools/train.py configs/rexnet_fasterrcnn_fpn.py                # COCO in data/coco
python tools/train.py configs/rexnet_fasterrcnn_fpn.py --builtin-data # built-in data, CPU
python tools/train.py CONFIG --resume            # continue from work_dir's last checkpoint
python tools/train.py CONFIG --resume ckpt.pth   # continue from that checkpoint
torchrun --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch  # or dist_train.sh
python tools/train.py CONFIG --seed 0 --deterministic  # reproducible (built-in data: seed 0)

Checkpoints are written atomically (a temporary name, then a rename) and carry the random
state, so a resumed run trains like an uninterrupted one. A load_from / --resume /
Pretrained checkpoint that does not fit the model is an error; --allow-partial loads what
fits (logged).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmbackbones  # noqa: E402,F401  (allow-lists mmengine checkpoints for torch>=2.6)
from mmbackbones.checkpoint import (  # noqa: E402
    apply_checkpoint_policy,
    check_checkpoint_file,
    last_checkpoint,
)
from mmbackbones.loading import apply_loading_policy  # noqa: E402
from mmbackbones.utils.cli import ToolParser, entry_point  # noqa: E402
from mmbackbones.utils.config import add_common_args, fail, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from CHECKPOINT, or (no value) from the latest ' 'checkpoint in the work dir',
    )
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU)')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help='random seed (randomness.seed; the data order is seeded too). The built-in '
        "schedules default to 0; other configs to mmengine's random seed",
    )
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms (randomness.deterministic: '
        'torch.use_deterministic_algorithms; slower on GPU)',
    )
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='load a load_from / --resume / Pretrained checkpoint that does not fit the '
        'model partially (logged). Default: a mismatch is an error (config key: '
        'allow_partial_checkpoint)',
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _resolve_resume(cfg, resume: str) -> None:
    if resume == 'auto':
        found = last_checkpoint(cfg.work_dir)  # a complete file (see its docstring)
        if found is None:
            print(
                f'[mmbackbones] --resume: no checkpoint in {cfg.work_dir} yet; '
                'starting from scratch',
                flush=True,
            )
            cfg.resume, cfg.load_from = False, None
            return
        resume = found
    try:
        check_checkpoint_file(resume, 'resume checkpoint')
    except ValueError as e:
        fail(
            f'{e}. Pass --resume PATH with a valid checkpoint, or drop --resume to start '
            'afresh.'
        )
    cfg.resume, cfg.load_from = True, resume


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args, 'tools/train.py')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume:
        _resolve_resume(cfg, args.resume)
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        if args.deterministic:
            randomness['deterministic'] = True
        cfg.randomness = randomness
    apply_loading_policy(cfg, args.allow_partial)  # a checkpoint that does not fit: error
    apply_checkpoint_policy(cfg)  # atomic checkpoint files; random state saved and resumed

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()

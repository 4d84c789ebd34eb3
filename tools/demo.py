"""`make demo`: train configs/rexnet_fasterrcnn_fpn.py on the built-in data on a CPU,
evaluate it with the COCO metric, and draw predictions and the loss curve.

Interrupt it at any time; running it again resumes from the last checkpoint. The run is
seeded (``--seed``, default the built-in schedules' seed 0), so two fresh runs on the same
machine report the same AP.

    python tools/demo.py [--config CONFIG] [--work-dir DIR] [--fresh] [--seed N]
                         [--cfg-options ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmbackbones.utils.cli import ToolParser, entry_point  # noqa: E402


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='configs/rexnet_fasterrcnn_fpn.py')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--fresh', action='store_true', help='discard an earlier demo run')
    parser.add_argument(
        '--seed',
        type=int,
        default=None,
        help="random seed of the training (default: the built-in schedules' seed, "
        'mmbackbones.datasets.builtin.BUILTIN_SEED)',
    )
    parser.add_argument('--cfg-options', nargs='+', default=[])
    args = parser.parse_args(argv)
    t0 = time.time()
    if args.fresh and osp.isdir(args.work_dir):
        shutil.rmtree(args.work_dir)
    extra = ['--cfg-options', *args.cfg_options] if args.cfg_options else []

    print(f'== [1/3] training {args.config} on the built-in data (CPU) ==', flush=True)
    subprocess.run(
        [
            sys.executable,
            osp.join(REPO, 'tools/train.py'),
            args.config,
            '--builtin-data',
            '--work-dir',
            args.work_dir,
            '--resume',
            *(['--seed', str(args.seed)] if args.seed is not None else []),
            *extra,
        ],
        check=True,
    )
    with open(osp.join(args.work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    t_train = time.time() - t0

    print(f'== [2/3] evaluating {ckpt} (COCO metric, built-in val split) ==', flush=True)
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import test as test_tool

    metrics = test_tool.main(
        [
            args.config,
            ckpt,
            '--builtin-data',
            '--work-dir',
            osp.join(args.work_dir, 'test'),
            *extra,
        ]
    )

    print('== [3/3] plotting ==', flush=True)
    from mmbackbones.datasets.builtin import BUILTIN_SEED, builtin_data_root
    from mmbackbones.visualization import plot_detections, plot_loss_curve

    dumped = osp.join(args.work_dir, osp.basename(args.config))
    val_imgs = sorted(glob.glob(osp.join(builtin_data_root(), 'shapes_coco', 'val', '*.jpg')))
    pred_png = plot_detections(
        dumped, ckpt, val_imgs[:8], osp.join(args.work_dir, 'predictions.png')
    )
    try:
        loss_png = plot_loss_curve(args.work_dir, osp.join(args.work_dir, 'loss_curve.png'))
    except ValueError as e:  # a run shorter than the logging interval
        loss_png = f'(not written: {e})'
    print('\n== demo summary ==')
    print(f'config:        {args.config} (built-in data, CPU, {os.cpu_count()} cores)')
    print(f'checkpoint:    {ckpt}')
    print(f'seed:          {BUILTIN_SEED if args.seed is None else args.seed}')
    print(f'bbox mAP:      {metrics["coco/bbox_mAP"]:.3f}')
    print(f'bbox AP50:     {metrics["coco/bbox_mAP_50"]:.3f}')
    print(f'predictions:   {pred_png}')
    print(f'loss curve:    {loss_png}')
    print(f'wall time:     {time.time() - t0:.0f}s (training {t_train:.0f}s)')


if __name__ == '__main__':
    main()

"""NetAdapt on this CPU: shrink a backbone's widths until its measured latency meets a target.

    python tools/netadapt.py --backbone MobileNetV3 --arch small --target-ratio 0.75 \\
        --shape 224 224 --threads 1 --out work_dirs/netadapt_mnv3_small
    python tools/netadapt.py --backbone ReXNet --arch 1.0 --target-ms 25 --out work_dirs/na_rex
    # RegNet / ResNeXt adapt through their AnyNet form (grouped convs lose whole groups);
    # the result is an AnyNet arch dict
    python tools/netadapt.py --backbone ResNeXt --arch 50_32x4d --target-ratio 0.8 \
        --out work_dirs/na_resnext
    python tools/netadapt.py --backbone MobileNetV3 --arch '{"blocks": [[3, 16, 16, true,
        "RE", 2], ...]}' --target-ratio 0.8 --out work_dirs/na_custom

Latency is measured on this machine (batch 1, ``--threads`` threads, median of
``--repeats`` forwards of the backbone up to its last layer); a per-layer lookup table is
built once per layer shape and cached in ``OUT/latency_lut.json``. Each iteration
fine-tunes every proposal briefly on the built-in classification data (CIFAR-10 when
found under ``--data-root``). Running again with the same ``--out`` and settings
continues from the last finished iteration. Outputs in ``--out``: ``result.json``,
``trajectory.json``, ``trajectory.png``, ``adapted_arch.py``. See docs/analysis.md, "NetAdapt".

``--latency flops`` replaces the clock by a deterministic cost (multiply-adds / rate + a
fixed cost per layer): a FLOPs budget, reproducible to the bit.

Exit status: 0 when the final model meets the target by its own final measurement
(``2 x --repeats``); 1 when the run stopped without meeting it (no knob saves latency any
more); 3 when it paused at ``--max-iters`` before the target (run again to continue);
2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmbackbones.netadapt.knobs import FAMILIES  # noqa: E402
from mmbackbones.netadapt.search import NetAdapt, NetAdaptConfig  # noqa: E402
from mmbackbones.utils.cli import ToolParser, above, at_least, entry_point  # noqa: E402
from mmbackbones.utils.errors import ArgumentError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = NetAdaptConfig()
    p = ToolParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument('--backbone', default=d.backbone, help=f'family: {sorted(FAMILIES)}')
    p.add_argument('--arch', default=d.arch, help='preset name or a JSON arch dict')
    p.add_argument('--widen-factor', type=above(0), default=d.widen_factor)
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument('--target-ms', type=above(0), help='latency target in milliseconds')
    t.add_argument('--target-ratio', type=float, help='target as a fraction of the start')
    p.add_argument('--shape', type=at_least(16), nargs='+', default=list(d.shape), help='H [W]')
    p.add_argument('--threads', type=at_least(1), default=d.threads)
    p.add_argument('--margin', type=float, default=d.margin, help='stop at target*(1-margin)')
    p.add_argument('--stat', default=d.stat, choices=('median', 'min'), help='of the repeats')
    p.add_argument('--delta', type=float, default=d.delta, help='first step, x start latency')
    p.add_argument('--delta-decay', type=float, default=d.delta_decay)
    p.add_argument(
        '--repeats', type=at_least(1), default=d.repeats, help='forwards per measurement'
    )
    p.add_argument('--lut-repeats', type=at_least(1), default=d.lut_repeats)
    p.add_argument('--train-size', type=at_least(1), default=d.train_size)
    p.add_argument('--pretrain-iters', type=at_least(0), default=d.pretrain_iters)
    p.add_argument('--finetune-iters', type=at_least(0), default=d.finetune_iters)
    p.add_argument('--final-iters', type=at_least(0), default=d.final_iters)
    p.add_argument('--batch-size', type=at_least(1), default=d.batch_size)
    p.add_argument('--lr', type=above(0), default=d.lr)
    p.add_argument('--n-train', type=at_least(1), default=d.n_train)
    p.add_argument('--n-val', type=at_least(1), default=d.n_val)
    p.add_argument('--data-root', default=d.data_root)
    p.add_argument('--seed', type=at_least(0), default=d.seed)
    p.add_argument(
        '--max-iters',
        type=at_least(1),
        default=d.max_iters,
        help='pause after this many iterations',
    )
    p.add_argument(
        '--latency',
        default=d.latency,
        choices=('measured', 'flops'),
        help='measured: on this CPU; flops: multiply-adds / rate + a cost per layer '
        '(deterministic: a FLOPs budget)',
    )
    p.add_argument('--out', required=True, help='state and outputs (resumable)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arch = args.arch
    if arch.lstrip().startswith('{'):
        try:
            arch = json.loads(arch)
        except json.JSONDecodeError as e:
            raise ArgumentError(f'--arch: not a JSON arch dict ({e})') from None
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape
    cfg = NetAdaptConfig(
        backbone=args.backbone,
        arch=arch,
        widen_factor=args.widen_factor,
        target_ms=args.target_ms,
        target_ratio=args.target_ratio,
        shape=tuple(shape),
        threads=args.threads,
        margin=args.margin,
        stat=args.stat,
        delta=args.delta,
        delta_decay=args.delta_decay,
        repeats=args.repeats,
        lut_repeats=args.lut_repeats,
        train_size=args.train_size,
        pretrain_iters=args.pretrain_iters,
        finetune_iters=args.finetune_iters,
        final_iters=args.final_iters,
        batch_size=args.batch_size,
        lr=args.lr,
        n_train=args.n_train,
        n_val=args.n_val,
        data_root=args.data_root,
        seed=args.seed,
        max_iters=args.max_iters,
        latency=args.latency,
        progress=not args.no_progress,
    )
    try:
        res = NetAdapt(cfg, args.out).run()
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    s, f, r = res['start'], res['final'], res['lut_vs_measured']
    print(
        f'{res["status"]} after {res["iterations"]} iteration(s): {s["direct_ms"]:.3f} -> '
        f'{f["direct_ms"]:.3f} ms measured (target {res["target_ms"]:.3f} ms, '
        f'-{100 * res["latency_reduction"]:.1f}%); LUT/measured {r["start"]:.2f} -> '
        f'{r["final"]:.2f}; accuracy {s["acc"]:.1f} -> {f["acc"]:.1f}%'
    )
    print(f'outputs in {args.out}: result.json trajectory.json trajectory.png adapted_arch.py')
    if res['status'] == 'done':
        return 0
    # the final model does not meet the target (by its own final measurement)
    print(f'error: target not met: {res["status"]}', file=sys.stderr)
    return 3 if res['status'].startswith('paused') else 1


if __name__ == '__main__':
    sys.exit(main())

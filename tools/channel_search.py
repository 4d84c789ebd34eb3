"""ReXNet channel-configuration search (Han et al., CVPR 2021, Sec. 4.1): sample
piecewise-linear block widths under a FLOPs/params budget, train each briefly with several
seeds, rank by mean error, and compare the width curves of the top, middle and bottom 10%.

    python tools/channel_search.py --out work_dirs/channel_search -n 20 --seeds 2 --workers 2
    python tools/channel_search.py --out work_dirs/channel_search_quick --quick

Budget: --flops / --params "lo,hi" (either side empty) of the 32x32, 10-class classifier;
default FLOPs <= ReXNet x1.0's at 32x32. Training: the design-space sweep (CIFAR-10 from
--data-root if present, else the built-in generated set), local process pool or Ray.
Resumable: DIR/runs/seed<k>.jsonl; a rerun trains only the missing (config, seed) pairs.

Writes DIR/samples.jsonl, DIR/ranking.json, DIR/summary.json, DIR/width_curves.png,
DIR/best_arch.json (a ReXNet arch dict) and DIR/best_arch.py (a config inheriting
--base-config with that arch and the matching neck channels).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmbackbones.design_space import channel_search as cs  # noqa: E402
from mmbackbones.design_space.train import DEFAULT_CFG, run_sweep  # noqa: E402
from mmbackbones.utils.cli import ToolParser, above, at_least, entry_point  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUICK = dict(n=4, seeds=1, iters=3, batch_size=8, n_train=64, n_test=32)
FULL = dict(n=20, seeds=2, iters=100, batch_size=64, n_train=5000, n_test=1000)
TRAIN_KEYS = ('iters', 'batch_size', 'lr', 'n_train', 'n_test', 'data_root')


def plot(summary: dict, path: Path, title: str) -> None:
    """Channels vs block index: mean curve and min-max band of each group, ReXNet x1.0."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmbackbones.models import ReXNet

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    colors = {'top': 'tab:green', 'middle': 'tab:blue', 'bottom': 'tab:red'}
    for name, g in summary['groups'].items():
        x = range(len(g['mean_curve']))
        label = (
            f'{name} 10% (n={g["n"]}, err {g["mean_error"]:.1f}%, lin. R2 {g["fit"]["r2"]:.2f})'
        )
        ax.plot(x, g['mean_curve'], color=colors[name], marker='.', label=label)
        ax.fill_between(x, g['min_curve'], g['max_curve'], color=colors[name], alpha=0.15, lw=0)
    x10 = [b.out_channels for b in ReXNet.layout('1.0') if b.kind == 'block']
    ax.plot(x10, 'k--', lw=0.8, label='ReXNet x1.0')
    ax.set_xlabel('block index')
    ax.set_ylabel('output channels')
    ax.set_title(title, fontsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


@entry_point
def main(argv: list[str] | None = None) -> dict:
    p = ToolParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--out', required=True, help='output directory (reused to resume)')
    p.add_argument('--quick', action='store_true', help='4 configs, 1 seed, 3 iterations')
    p.add_argument('--space', default='rexnet', help='a ReXNet channel space (default rexnet)')
    p.add_argument('-n', type=at_least(1), help='configurations to sample (default 20)')
    p.add_argument('--seeds', type=int, help='training seeds per configuration (default 2)')
    p.add_argument('--seed', type=at_least(0), default=0, help='sampling and training seed')
    p.add_argument('--flops', help='FLOPs budget "lo,hi" at 32x32 (default ",<ReXNet x1.0>")')
    p.add_argument('--params', help='params budget "lo,hi" (either side may be empty)')
    p.add_argument('--iters', type=at_least(1), help='SGD steps per training (default 100)')
    p.add_argument('--batch-size', dest='batch_size', type=at_least(1))
    p.add_argument('--lr', type=above(0))
    p.add_argument('--n-train', dest='n_train', type=at_least(1), help='generated set size')
    p.add_argument('--n-test', dest='n_test', type=at_least(1), help='generated set size')
    p.add_argument('--data-root', dest='data_root', help='CIFAR-10 root (used if present)')
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--launcher', choices=('local', 'ray'), default='local')
    p.add_argument('--base-config', default=str(REPO / 'configs/rexnet_fasterrcnn_fpn.py'),
                   help='config the emitted best_arch.py inherits')  # fmt: skip
    p.add_argument('--no-progress', action='store_true')
    a = p.parse_args(argv)

    preset = QUICK if a.quick else FULL
    n = a.n if a.n is not None else preset['n']
    seeds = a.seeds if a.seeds is not None else preset['seeds']
    if seeds < 1:
        p.error(f'--seeds must be >= 1, got {seeds}')
    if a.workers < 1:
        p.error(f'--workers must be >= 1, got {a.workers}')
    if not Path(a.base_config).is_file():
        p.error(f'--base-config {a.base_config!r} does not exist')
    try:
        params = cs.parse_budget(a.params, '--params')
        flops = cs.parse_budget(a.flops, '--flops')
        if params is None and flops is None:
            from mmbackbones.design_space.sampling import complexity

            flops = (None, float(complexity('ReXNet', {}).flops))
        records = cs.sample_configs(n, a.seed, a.space, params=params, flops=flops)
    except ValueError as e:
        p.error(str(e))
    cfg = {**DEFAULT_CFG, **{k: v for k, v in preset.items() if k in TRAIN_KEYS}}
    for k in TRAIN_KEYS:
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(space=a.space, n=n, seeds=seeds, seed=a.seed, params=params, flops=flops,
                    **{k: cfg[k] for k in TRAIN_KEYS})  # fmt: skip
    sfile = out / 'settings.json'
    if sfile.exists():
        old = json.loads(sfile.read_text())
        same = {k: old.get(k) for k in settings} == json.loads(json.dumps(settings))
        if not same:
            p.error(f'{out} holds a run with other settings ({old}); use a new --out')
    sfile.write_text(json.dumps(settings, indent=1))
    (out / 'samples.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
    print(f'{len(records)} {a.space} configurations within params {params}, FLOPs {flops}')

    ids = {r['id'] for r in records}
    results = []
    for k in range(seeds):
        run = out / 'runs' / f'seed{k}.jsonl'
        seed_cfg = dict(cfg, seed=a.seed * 1000 + k)
        got = run_sweep(records, run, seed_cfg, a.workers, a.launcher, not a.no_progress)
        results += [dict(r, seed=seed_cfg['seed']) for r in got if r['id'] in ids]
    ranked = cs.rank_configs(results)
    groups = cs.width_groups(ranked)
    summary = dict(settings=settings, dataset=results[0].get('dataset'),
                   groups=cs.group_summary(groups), best=ranked[0])  # fmt: skip
    (out / 'ranking.json').write_text(json.dumps(ranked, indent=1))
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))

    cmd = 'tools/channel_search.py ' + ('--quick' if a.quick else f'-n {n} --seeds {seeds}')
    bounds = (('params', params or (None, None)), ('FLOPs', flops or (None, None)))
    budget = ', '.join(
        f'{k} {lo or 0:.3g}-{hi:.3g}' if hi else f'{k} >= {lo:.3g}'
        for k, (lo, hi) in bounds
        if lo or hi
    )
    title = (
        f'{cmd} --seed {a.seed}: {n} configs x {seeds} seeds, {budget}, '
        f'{cfg["iters"]} it x {cfg["batch_size"]} on {summary["dataset"]}'
    )
    plot(summary, out / 'width_curves.png', title)

    best = ranked[0]
    arch = dict(best['arch'])
    (out / 'best_arch.json').write_text(json.dumps(arch, indent=1))
    header = [
        f'ReXNet channels found by {cmd} --seed {a.seed}',
        f'({summary["dataset"]} set, {cfg["iters"]} iterations, {seeds} seeds): rank 1 of {n},',
        f'error {best["mean_error"]:.2f}% (mean over seeds), {best["params"]} params and '
        f'{best["flops"]} FLOPs at 32x32.',
    ]
    cs.config_snippet(arch, a.base_config, str(out / 'best_arch.py'), header)
    for name, g in summary['groups'].items():
        print(f'{name:>6} 10%: error {g["mean_error"]:.2f}%, mean curve linear fit '
              f'slope {g["fit"]["slope"]:.1f}/block, R2 {g["fit"]["r2"]:.3f} '
              f'(members {g["member_r2"]:.3f})')  # fmt: skip
    print(f'best: {best["channels"]} ({best["mean_error"]:.2f}%)')
    print(
        f'wrote {out}/ranking.json, summary.json, width_curves.png, best_arch.json, '
        'best_arch.py'
    )
    return summary


if __name__ == '__main__':
    main()

"""ReXNet's empirical rank study (Han et al., CVPR 2021, Sec. 3): rank ratio of random
blocks' output features against the dimension ratio d_in/d_out, one line per nonlinearity.

    python tools/rank_study.py --out work_dirs/rank_study            # a few minutes, CPU
    python tools/rank_study.py --out work_dirs/rank_study --quick    # reduced, < 1 minute

Writes DIR/results.json (settings, findings and records {"block", "act", "dim_ratio",
"rank_ratio", "std"}) and DIR/rank_study.png. The definitions (feature matrix, tolerance,
the exact linear bound) are in mmbackbones/analysis/rank.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmbackbones.analysis import rank  # noqa: E402
from mmbackbones.utils.cli import ToolParser, above, at_least, entry_point  # noqa: E402

QUICK = dict(d_out=32, n=4, size=8, seeds=2, ratios=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0))
FULL = dict(d_out=128, n=8, size=8, seeds=5, ratios=rank.DEFAULT_RATIOS)


def plot(records: list[dict], settings: dict, path: Path, title: str) -> None:
    """One panel per block: rank ratio vs dimension ratio, one line (mean, +-std band)
    per nonlinearity, and the exact linear bound dashed."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    blocks = [b for b in rank.BLOCKS if any(r['block'] == b for r in records)]
    acts = [a for a in rank.ACTS if any(r['act'] == a for r in records)]
    d_out = settings['d_out']
    fig, axes = plt.subplots(1, len(blocks), figsize=(3.2 * len(blocks), 3.1), squeeze=False)
    for ax, b in zip(axes[0], blocks):
        for a in acts:
            rs = sorted((r for r in records if r['block'] == b and r['act'] == a),
                        key=lambda r: r['dim_ratio'])  # fmt: skip
            x = [r['dim_ratio'] for r in rs]
            y = [r['rank_ratio'] for r in rs]
            (line,) = ax.plot(x, y, marker='.', ms=4, lw=1.2, label=a)
            ax.fill_between(x, [r['rank_ratio'] - r['std'] for r in rs],
                            [r['rank_ratio'] + r['std'] for r in rs],
                            color=line.get_color(), alpha=0.15, lw=0)  # fmt: skip
        xs = sorted({r['dim_ratio'] for r in records if r['block'] == b})
        ax.plot(xs, [rank.linear_rank(b, round(v * d_out), d_out) / d_out for v in xs],
                'k--', lw=0.8, label='linear bound')  # fmt: skip
        ax.set_xscale('log', base=2)
        ax.set_ylim(0, 1.05)
        ax.set_title(b, fontsize=9)
        ax.set_xlabel('dimension ratio d_in / d_out', fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel('rank ratio (rank / d_out)', fontsize=8)
    axes[0][-1].legend(fontsize=7, loc='lower right')
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


@entry_point
def main(argv: list[str] | None = None) -> dict:
    p = ToolParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--quick', action='store_true', help='reduced sweep (< 1 minute)')
    p.add_argument('--blocks', nargs='+', default=list(rank.BLOCKS), choices=rank.BLOCKS)
    p.add_argument('--acts', nargs='+', default=list(rank.ACTS), choices=list(rank.ACTS))
    p.add_argument('--ratios', type=above(0), nargs='+', help='dimension ratios d_in/d_out')
    p.add_argument('--d-out', dest='d_out', type=at_least(1), help='output channels')
    p.add_argument(
        '--batch', dest='n', type=at_least(1), help='batch size (rows: batch * size**2)'
    )
    p.add_argument('--size', type=at_least(1), help='input height and width')
    p.add_argument('--seeds', type=at_least(1), help='random networks per point')
    p.add_argument(
        '--rtol',
        type=above(0),
        default=rank.DEFAULT_RTOL,
        help='singular values above rtol * sigma_max count (default %(default)s)',
    )
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=at_least(1), default=1, help='torch intra-op threads')
    p.add_argument('--no-progress', action='store_true')
    a = p.parse_args(argv)

    import torch
    from tqdm import tqdm

    torch.set_num_threads(a.threads)
    settings = dict(QUICK if a.quick else FULL)
    for k in ('ratios', 'd_out', 'n', 'size', 'seeds'):
        if getattr(a, k) is not None:
            settings[k] = getattr(a, k)
    settings.update(blocks=a.blocks, acts=a.acts, rtol=a.rtol, seed=a.seed)
    c_ins = {max(1, round(r * settings['d_out'])) for r in settings['ratios']}
    bar = tqdm(total=len(a.blocks) * len(c_ins), desc='rank', unit='point',
               disable=a.no_progress)  # fmt: skip
    try:
        records = rank.rank_sweep(**settings, progress=bar.update)
    except ValueError as e:
        p.error(str(e))
    bar.close()
    found = rank.findings(records, settings['d_out'])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    settings['ratios'] = list(settings['ratios'])
    settings['linear_dim'] = {b: rank.LINEAR_DIM[b] for b in a.blocks}
    result = dict(settings=settings, findings=found, records=records)
    (out / 'results.json').write_text(json.dumps(result, indent=1))
    cmd = 'tools/rank_study.py' + (' --quick' if a.quick else '')
    title = (f'{cmd}: d_out={settings["d_out"]}, rows={settings["n"] * settings["size"] ** 2}, '
             f'{settings["seeds"]} seeds, float64, rtol={a.rtol:g}, seed {a.seed}')  # fmt: skip
    plot(records, settings, out / 'rank_study.png', title)
    print(f'linear blocks exactly at the linear bound: {found["linear_exact"]}')
    for b, gains in found['nonlinear_raises'].items():
        vs = found['complex_vs_relu6'].get(b, {})
        print(f'{b:>13}: gain over linear ' + ' '.join(f'{k}={v:+.2f}' for k, v in gains.items())
              + ' | vs relu6 ' + ' '.join(f'{k}={v:+.2f}' for k, v in vs.items()))  # fmt: skip
    print(f'wrote {out / "results.json"} and {out / "rank_study.png"}')
    return result


if __name__ == '__main__':
    main()

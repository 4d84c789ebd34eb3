"""``analyze``'s outputs: summary.json, the PNG plots and a one-page report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .analysis import summarize


def write_report(
    pops: dict[str, list[dict]], out: str | Path, normalize: str = 'none', title: str = ''
) -> dict[str, Any]:
    from .plots import plot_all

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(pops, normalize)
    (out / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    files = plot_all(pops, out, normalize, title)
    datasets = sorted({r.get('dataset', '?') for p in pops.values() for r in p})
    iters = sorted({r.get('iters', '?') for p in pops.values() for r in p})
    lines = [
        '# Design-space comparison',
        '',
        f'Populations: {", ".join(f"{k} (n={len(v)})" for k, v in pops.items())}; '
        f'dataset: {", ".join(map(str, datasets))}; iterations: {", ".join(map(str, iters))}; '
        f'normalization: {normalize}. {title}',
        '',
        '| population | n | min error | mean error | EDF area |',
        '|---|---|---|---|---|',
    ]
    for k, s in summary['populations'].items():
        lines.append(
            f'| {k} | {s["n"]} | {s["min"]:.2f} | {s["mean"]:.2f} | {s["edf_area"]:.3f} |'
        )
    lines += [
        '',
        '| a | b | KS D | p | KS D (normalized) | p (normalized) |',
        '|---|---|---|---|---|---|',
    ]
    for p in summary['pairs']:
        lines.append(
            f'| {p["a"]} | {p["b"]} | {p["ks_D"]:.3f} | {p["ks_p"]:.3g} | '
            f'{p["ks_D_normalized"]:.3f} | {p["ks_p_normalized"]:.3g} |'
        )
    lines += ['', '![EDF](' + files['edf'] + ')']
    if 'edf_normalized' in files:
        lines.append('![normalized EDF](' + files['edf_normalized'] + ')')
    lines += [
        '![error vs complexity](' + files['scatter'] + ')',
        '![random search efficiency](' + files['random_search'] + ')',
        '![KS vs sample size](' + files['ks_vs_n'] + ')',
        '',
        'EDF area: area under the plain EDF over the shared error range, divided by its '
        'width (larger is better). Normalized KS: weighted EDFs with equal complexity '
        'distributions, p from Kish effective sample sizes (see `design_space/stats.py`).',
        '',
    ]
    (out / 'report.md').write_text('\n'.join(lines))
    return summary

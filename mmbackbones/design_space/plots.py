"""Plots of design-space populations (matplotlib, Agg). The numbers come from
:mod:`.stats` / :mod:`.analysis`; this module only draws."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import stats  # noqa: E402
from .analysis import population_weights  # noqa: E402


def _errs(pop: list[dict]) -> np.ndarray:
    return np.array([r['error'] for r in pop], dtype=float)


def _save(fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> str:
    """Label, legend and grid the one axis of ``fig``, write it, close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title.strip(), fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.name


def plot_edfs(pops: dict, path: Path, normalize: str = 'none', title: str = '') -> str:
    w = population_weights(pops, normalize)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, pop in pops.items():
        x, f = stats.edf(_errs(pop), weights=w[k])
        ax.step(np.r_[x[0], x], np.r_[0, f], where='post', label=f'{k} (n={len(pop)})')
    norm = 'plain' if normalize == 'none' else f'{normalize}-normalized'
    return _save(fig, ax, path, 'error (%)', 'cumulative prob.', f'{norm} error EDF {title}')


def plot_scatter(pops: dict, path: Path, key: str = 'flops', title: str = '') -> str:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, pop in pops.items():
        ax.scatter([r[key] for r in pop], _errs(pop), s=10, alpha=0.6, label=k)
    ax.set_xscale('log')
    return _save(fig, ax, path, key, 'error (%)', f'error vs {key} {title}')


def plot_random_search(pops: dict, path: Path, normalize: str = 'none', title: str = '') -> str:
    w = population_weights(pops, normalize)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, pop in pops.items():
        r = stats.random_search_efficiency(_errs(pop), weights=w[k], n_boot=100)
        (line,) = ax.plot(r['m'], r['mean'], label=k)
        ax.fill_between(r['m'], r['lo'], r['hi'], color=line.get_color(), alpha=0.2)
    ax.set_xscale('log')
    name = f'random search efficiency (90% bootstrap) {title}'
    return _save(fig, ax, path, 'models drawn (m)', 'expected min error (%)', name)


def plot_ks_vs_n(pops: dict, path: Path, title: str = '') -> str:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    names = list(pops)
    curves = [(f'{k} vs {k}', _errs(pops[k]), None) for k in names]
    curves += [
        (f'{a} vs {b}', _errs(pops[a]), _errs(pops[b]))
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    for label, a, b in curves:
        r = stats.ks_vs_sample_size(a, b, n_boot=50)
        (line,) = ax.plot(r['n'], r['mean'], label=label)
        ax.fill_between(r['n'], r['lo'], r['hi'], color=line.get_color(), alpha=0.15)
    ax.set_xscale('log')
    name = f'KS vs sample size {title}'
    return _save(fig, ax, path, 'samples per population (n)', 'KS D (bootstrap)', name)


def plot_all(pops: dict, out: Path, normalize: str = 'none', title: str = '') -> dict[str, str]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = 'params' if normalize == 'params' else 'flops'
    files = {'edf': plot_edfs(pops, out / 'edf.png', 'none', title)}
    if normalize != 'none':
        files['edf_normalized'] = plot_edfs(
            pops, out / f'edf_{normalize}_normalized.png', normalize, title
        )
    files['scatter'] = plot_scatter(pops, out / f'error_vs_{key}.png', key, title)
    files['random_search'] = plot_random_search(pops, out / 'random_search.png', normalize, title)
    files['ks_vs_n'] = plot_ks_vs_n(pops, out / 'ks_vs_n.png', title)
    return files

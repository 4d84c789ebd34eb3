"""Compare populations of trained samples: the numbers behind ``summary.json`` (pure)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from . import stats


def auto_bins(populations: dict[str, list[dict]]) -> int:
    """Histogram bins for normalization: ``sqrt`` of the smallest population, in [2, 20]."""
    n = min(len(p) for p in populations.values())
    return int(np.clip(np.sqrt(n), 2, 20))


def population_weights(
    populations: dict[str, list[dict]], normalize: str = 'none', bins: int | None = None
) -> dict[str, np.ndarray | None]:
    """Per-model weights of every population (``None`` = plain, equal weights)."""
    if normalize == 'none':
        return {k: None for k in populations}
    if normalize not in ('params', 'flops'):
        raise ValueError(f"normalize must be 'none', 'params' or 'flops', got {normalize!r}")
    names = list(populations)
    ws = stats.normalized_weights(
        [[r[normalize] for r in populations[k]] for k in names], bins or auto_bins(populations)
    )
    return dict(zip(names, ws))


def summarize(
    populations: dict[str, list[dict]], normalize: str = 'none', bins: int | None = None
) -> dict[str, Any]:
    """``{"populations": {name: {n, min, mean, edf_area}}, "pairs": [...]}``.

    ``edf_area`` is over the shared error range of all populations (plain EDF). Pairs carry
    plain KS (``ks_D``, ``ks_p``) and KS of the ``normalize``-normalized EDFs (the plain
    values again when ``normalize == 'none'``), normalizing each pair on its own.
    """
    errs = {k: np.array([r['error'] for r in v], dtype=float) for k, v in populations.items()}
    lo = min(e.min() for e in errs.values())
    hi = max(e.max() for e in errs.values())
    pops = {
        k: dict(
            n=int(len(e)),
            min=float(e.min()),
            mean=float(e.mean()),
            edf_area=stats.edf_area(e, lo, hi),
        )
        for k, e in errs.items()
    }
    pairs = []
    for a, b in combinations(populations, 2):
        d, p = stats.ks(errs[a], errs[b])
        if normalize == 'none':
            dn, pn = d, p
        else:
            sub = {a: populations[a], b: populations[b]}
            w = population_weights(sub, normalize, bins)
            dn, pn = stats.weighted_ks(errs[a], errs[b], w[a], w[b])
        pairs.append(
            dict(a=a, b=b, ks_D=d, ks_p=p, ks_D_normalized=float(dn), ks_p_normalized=float(pn))
        )
    return {'populations': pops, 'pairs': pairs}

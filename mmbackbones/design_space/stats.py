"""Distribution estimates of design spaces (pure numpy/scipy; no plotting).

* EDF: ``F(e) = sum_i w_i 1[e_i <= e]`` with ``w_i = 1/n`` (plain) or the normalized
  weights. The paper writes ``1[e_i < e]``; the two differ only at the jump points and
  give the same KS statistic.
* Complexity-normalized weights (:func:`normalized_weights`): a histogram over the
  shared (log) complexity range of all populations; only bins non-empty in *every*
  population are kept ("common bins"), and a model in a kept bin gets
  ``1 / (count of its population's models in that bin * number of kept bins)``, others 0.
  Every population then has the same (uniform over kept bins) complexity distribution.
* KS: plain with :func:`scipy.stats.ks_2samp`; weighted (:func:`weighted_ks`) as
  ``D = sup |F1 - F2|`` of the weighted EDFs and ``p = kstwo.sf(D, round(n1 n2 / (n1 +
  n2)))`` with Kish's effective sample sizes ``n = (sum w)^2 / sum w^2`` (scipy's
  ``ks_2samp(method='asymp')`` formula; with equal weights it is exactly that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as _st


def _w(x: np.ndarray, weights: Sequence[float] | None) -> np.ndarray:
    if weights is None:
        return np.full(len(x), 1.0 / max(len(x), 1))
    w = np.asarray(weights, dtype=float)
    if w.shape != x.shape or (w < 0).any() or w.sum() <= 0:
        raise ValueError('weights must be non-negative, one per value, with a positive sum')
    return w / w.sum()


def edf(
    errors: Sequence[float], at: Sequence[float] | None = None, weights=None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, F(x))`` of the (weighted) EDF at ``at`` (default: the sorted errors)."""
    e = np.asarray(errors, dtype=float)
    w = _w(e, weights)
    order = np.argsort(e, kind='stable')
    e, cw = e[order], np.cumsum(w[order])
    x = e if at is None else np.asarray(at, dtype=float)
    idx = np.searchsorted(e, x, side='right')
    return x, np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)


def normalized_weights(
    complexities: Sequence[Sequence[float]], bins: int = 10, log: bool = True
) -> list[np.ndarray]:
    """Per-model weights that give every population the same complexity distribution."""
    cs = [np.asarray(c, dtype=float) for c in complexities]
    ts = [np.log(c) if log else c for c in cs]
    lo = min(t.min() for t in ts)
    hi = max(t.max() for t in ts)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    idx = [np.clip(np.searchsorted(edges, t, side='right') - 1, 0, bins - 1) for t in ts]
    counts = [np.bincount(i, minlength=bins) for i in idx]
    common = np.all([c > 0 for c in counts], axis=0)
    k = int(common.sum())
    if k == 0:
        raise ValueError('normalized_weights: the populations share no complexity bin')
    return [np.where(common[i], 1.0 / (c[i] * k), 0.0) for i, c in zip(idx, counts)]


def ks(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Plain two-sample KS ``(D, p)`` (scipy.stats.ks_2samp, two-sided, exact/auto)."""
    r = _st.ks_2samp(a, b)
    return float(r.statistic), float(r.pvalue)


def effective_n(weights: Sequence[float]) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w**2).sum())


def weighted_ks(a, b, wa=None, wb=None) -> tuple[float, float]:
    """Two-sample KS ``(D, p)`` of weighted EDFs (see the module docstring)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    wa, wb = _w(a, wa), _w(b, wb)
    grid = np.union1d(a, b)
    d = float(np.max(np.abs(edf(a, grid, wa)[1] - edf(b, grid, wb)[1])))
    na, nb = effective_n(wa), effective_n(wb)
    en = na * nb / (na + nb)
    p = float(np.clip(_st.kstwo.sf(d, max(int(np.round(en)), 1)), 0.0, 1.0))
    return d, p


def edf_area(errors, lo: float, hi: float, weights=None) -> float:
    """Area under the EDF over ``[lo, hi]``, divided by ``hi - lo`` (in [0, 1]; larger is
    better): ``(hi - E_w[clip(e, lo, hi)]) / (hi - lo)``."""
    e = np.clip(np.asarray(errors, dtype=float), lo, hi)
    return float((hi - np.sum(_w(e, weights) * e)) / (hi - lo)) if hi > lo else 1.0


def expected_min(errors, ms: Sequence[int], weights=None) -> np.ndarray:
    """Expected minimum error of ``m`` models drawn (with replacement) from the EDF.

    Exact: with errors sorted ascending and tail masses ``S_k = sum_{j >= k} w_j``,
    ``E[min] = sum_k e_k (S_k^m - S_{k+1}^m)``.
    """
    e = np.asarray(errors, dtype=float)
    w = _w(e, weights)
    o = np.argsort(e, kind='stable')
    e, w = e[o], w[o]
    s = np.clip(np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]]), 0.0, 1.0)
    m = np.asarray(ms, dtype=float)[:, None]
    return np.sum(e[None] * (s[None, :-1] ** m - s[None, 1:] ** m), axis=1)


def random_search_efficiency(
    errors,
    ms: Sequence[int] | None = None,
    weights=None,
    n_boot: int = 200,
    ci: float = 0.9,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Expected best error of random search with ``m`` draws, with bootstrap bands.

    Returns ``{"m", "mean", "lo", "hi"}``: the estimate on the full population and the
    ``ci`` percentile band over ``n_boot`` bootstrap resamples of the population (models
    resampled with their weights).
    """
    e = np.asarray(errors, dtype=float)
    w = _w(e, weights)
    if ms is None:
        ms = np.unique(np.rint(np.logspace(0, np.log10(max(len(e), 2)), 20)).astype(int))
    ms = np.asarray(ms, dtype=int)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, len(ms)))
    for i in range(n_boot):
        j = rng.integers(0, len(e), len(e))
        boots[i] = expected_min(e[j], ms, w[j] if w[j].sum() > 0 else None)
    q = (1 - ci) / 2
    return dict(
        m=ms,
        mean=expected_min(e, ms, w),
        lo=np.quantile(boots, q, axis=0),
        hi=np.quantile(boots, 1 - q, axis=0),
    )


def ks_vs_sample_size(
    a,
    b=None,
    ns: Sequence[int] | None = None,
    n_boot: int = 100,
    ci: float = 0.9,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Minimal sample size analysis: KS D between two size-``n`` bootstrap samples.

    With ``b=None`` both samples come from ``a`` (how small D is when nothing differs:
    the noise floor, the paper's ~0.1 near 1000 samples); otherwise one from each.
    Returns ``{"n", "mean", "lo", "hi"}``.
    """
    a = np.asarray(a, dtype=float)
    b = a if b is None else np.asarray(b, dtype=float)
    if ns is None:
        top = max(min(len(a), len(b)), 2)
        ns = np.unique(np.rint(np.logspace(np.log10(2), np.log10(top), 10)).astype(int))
    ns = np.asarray(ns, dtype=int)
    rng = np.random.default_rng(seed)
    d = np.empty((len(ns), n_boot))
    for i, n in enumerate(ns):
        for k in range(n_boot):
            x = a[rng.integers(0, len(a), n)]
            y = b[rng.integers(0, len(b), n)]
            d[i, k] = _st.ks_2samp(x, y, method='asymp').statistic
    q = (1 - ci) / 2
    return dict(
        n=ns, mean=d.mean(1), lo=np.quantile(d, q, axis=1), hi=np.quantile(d, 1 - q, axis=1)
    )

"""ReXNet's empirical rank study (Han et al., "Rethinking Channel Dimensions for Efficient
Model Design", CVPR 2021, Sec. 3): how much rank a randomly initialised block keeps.

Blocks (``BLOCKS``), each in float64 with train-mode BN at initialisation (exact
per-channel standardisation over batch and space, gamma 1, beta 0, no eps) and the swept
nonlinearity ``act``:

* ``conv1x1``:      1x1 conv (c_in -> d_out) -> BN -> act
* ``conv3x3``:      3x3 conv (c_in -> d_out) -> BN -> act
* ``ib_conv3x3``:   1x1 expand (c_in -> 6 c_in) -> BN -> act -> 3x3 conv -> BN -> act ->
  1x1 project (-> d_out) -> BN -> act (an inverted bottleneck with a dense 3x3 conv,
  followed by the nonlinearity like the single layers: without it the linear projection
  would cap the rank at ``6 c_in`` whatever the inner nonlinearities)
* ``ib_dwconv3x3``: the same with a depthwise 3x3 conv (MobileNetV2 / ReXNet block, no SE)

Inputs are i.i.d. N(0, 1) feature maps ``(n, c_in, size, size)``; weights are Kaiming
normal. 3x3 convs pad *circularly*, so that a per-channel constant (the BN shift) stays
constant over space and borders add no rank.

**The output feature matrix** is the block output reshaped to ``(n * size * size, d_out)``:
one row per sample and position, one column per output channel, with each column
centred (its mean removed). Its numerical rank counts singular values above
``rtol * sigma_max`` (default ``rtol = 1e-4``, about ``max(M, N) * eps`` of float32 for
these matrices, i.e. the resolution of a float32 network; the float64 arithmetic puts
round-off near 1e-13, far below it). The **rank ratio** is that rank over ``d_out``; the
**dimension ratio** is ``c_in / d_out`` (the paper's x-axis: the block's channel ratio).

**The linear bound, exactly.** With ``act='none'`` a block is affine; centring removes
the BN/bias shifts, so the centred matrix is a linear map of the input and, for generic
random weights, its rank is exactly ``min(d_lin, d_out)`` with ``d_lin`` the block's
*linear input dimension* (:func:`linear_rank`): ``c_in`` for a 1x1 conv (so the rank ratio
is the paper's ``min(1, d_in / d_out)``), ``9 c_in`` for a 3x3 conv (it is a 1x1 conv on
the 3x3 patch, im2col), and ``6 c_in`` for both inverted bottlenecks (the 3x3 conv sees a
``9 c_in``-dim patch but the expansion width ``6 c_in`` caps it). The sweep keeps
``n * size**2 > d_out`` rows (one is lost to centring) so the row count never binds.

Example:
    >>> recs = rank_sweep(['conv1x1'], ['none', 'silu'], [0.25], d_out=32, seeds=2)
    >>> [(r['act'], r['rank_ratio']) for r in recs]
    [('none', 0.25), ('silu', 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

BLOCKS = ('conv1x1', 'conv3x3', 'ib_conv3x3', 'ib_dwconv3x3')
ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'none': lambda x: x,
    'relu': F.relu,
    'relu6': F.relu6,
    'elu': F.elu,
    'silu': F.silu,
    'hswish': F.hardswish,
}
EXPANSION = 6  # inverted-bottleneck expansion (MobileNetV2 / ReXNet)
#: ``d_lin / c_in``: the linear input dimension of each block per input channel
LINEAR_DIM = {'conv1x1': 1, 'conv3x3': 9, 'ib_conv3x3': EXPANSION, 'ib_dwconv3x3': EXPANSION}
DEFAULT_RTOL = 1e-4
#: the default sweep of ``d_in / d_out`` (dense where the linear bound is below 1)
DEFAULT_RATIOS = (1 / 128, 1 / 64, 3 / 128, 1 / 32, 3 / 64, 1 / 16, 3 / 32, 1 / 8, 3 / 16,
                  1 / 4, 3 / 8, 1 / 2, 3 / 4, 1.0)  # fmt: skip


def _check(blocks: Sequence[str], acts: Sequence[str]) -> None:
    for b in blocks:
        if b not in BLOCKS:
            raise ValueError(f'unknown block {b!r}; valid blocks: {list(BLOCKS)}')
    for a in acts:
        if a not in ACTS:
            raise ValueError(f'unknown act {a!r}; valid acts: {list(ACTS)}')


def linear_rank(block: str, c_in: int, d_out: int) -> int:
    """The exact rank of a random linear (``act='none'``) block's centred output matrix.

    Args:
        block (str): One of :data:`BLOCKS`.
        c_in (int): Input channels.
        d_out (int): Output channels.

    Example:
        >>> linear_rank('conv1x1', 8, 32), linear_rank('conv3x3', 2, 32)
        (8, 18)
    """
    _check([block], [])
    return min(LINEAR_DIM[block] * c_in, d_out)


def numerical_rank(y: torch.Tensor, rtol: float = DEFAULT_RTOL) -> int:
    """Rank of ``y`` (rows = observations) with each column centred: the number of
    singular values above ``rtol * sigma_max``.

    Example:
        >>> numerical_rank(torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]], dtype=torch.float64))
        1
    """
    y = y - y.mean(0, keepdim=True)
    s = torch.linalg.svdvals(y)
    if s.numel() == 0 or s[0] == 0:
        return 0
    return int((s > rtol * s[0]).sum())


def _bn(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var)  # exact standardisation (no eps: scale-free)


def _weight(c_out: int, c_in: int, k: int, g: torch.Generator) -> torch.Tensor:
    std = (2.0 / (c_in * k * k)) ** 0.5  # Kaiming normal, fan_in
    return torch.randn(c_out, c_in, k, k, generator=g, dtype=torch.float64) * std


def _conv(x: torch.Tensor, w: torch.Tensor, groups: int = 1) -> torch.Tensor:
    p = w.shape[-1] // 2
    if p:
        x = F.pad(x, (p, p, p, p), mode='circular')
    return F.conv2d(x, w, groups=groups)


def block_outputs(
    block: str, x: torch.Tensor, d_out: int, acts: Sequence[str], g: torch.Generator
) -> dict[str, torch.Tensor]:
    """One random ``block`` applied to ``x`` with each nonlinearity in ``acts`` (the same
    weights for all, so that the nonlinearities are compared on equal terms).

    Returns:
        ``{act: (n * h * w, d_out) float64 output feature matrix}``.

    Example:
        >>> x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
        >>> out = block_outputs('conv3x3', x, 16, ['relu'], torch.Generator().manual_seed(0))
        >>> tuple(out['relu'].shape)
        (128, 16)
    """
    _check([block], acts)
    c_in = x.shape[1]

    def rows(y: torch.Tensor) -> torch.Tensor:
        return y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])

    if block in ('conv1x1', 'conv3x3'):
        z = _bn(_conv(x, _weight(d_out, c_in, 1 if block == 'conv1x1' else 3, g)))
        return {a: rows(ACTS[a](z)) for a in acts}
    mid = EXPANSION * c_in
    dw = block == 'ib_dwconv3x3'
    w_exp = _weight(mid, c_in, 1, g)
    w_3x3 = _weight(mid, 1 if dw else mid, 3, g)
    w_proj = _weight(d_out, mid, 1, g)
    z = _bn(_conv(x, w_exp))
    out = {}
    for a in acts:
        h = ACTS[a](_bn(_conv(ACTS[a](z), w_3x3, groups=mid if dw else 1)))
        out[a] = rows(ACTS[a](_bn(_conv(h, w_proj))))
    return out


def rank_sweep(
    blocks: Sequence[str] = BLOCKS,
    acts: Sequence[str] = tuple(ACTS),
    ratios: Sequence[float] = DEFAULT_RATIOS,
    d_out: int = 128,
    n: int = 8,
    size: int = 8,
    seeds: int = 5,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
    progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Rank ratio of random blocks against the dimension ratio, averaged over seeds.

    ``c_in = max(1, round(ratio * d_out))``; the record's ``dim_ratio`` is the realised
    ``c_in / d_out``. The feature matrix has ``n * size**2`` rows, which must exceed
    ``d_out``.

    Args:
        blocks (Sequence[str]): Blocks to study, from :data:`BLOCKS`.
        acts (Sequence[str]): Nonlinearities, from :data:`ACTS`.
        ratios (Sequence[float]): Dimension ratios ``d_in / d_out`` (> 0).
        d_out (int): Output channels. Default: 128 (ReXNet block widths are 16-185).
        n (int): Batch size. Default: 8.
        size (int): Input height and width. Default: 8.
        seeds (int): Random networks per point. Default: 5.
        rtol (float): Relative singular-value tolerance. Default: 1e-4.
        seed (int): Base seed; the sweep is deterministic in it. Default: 0.
        progress (Callable[[int], Any] | None): Called with 1 after each point.

    Returns:
        Records ``{"block", "act", "dim_ratio", "rank_ratio", "std"}`` (``std``: the
        standard deviation of the rank ratio over seeds).

    Example:
        >>> recs = rank_sweep(['conv1x1'], ['none'], [0.5], d_out=16, seeds=1)
        >>> recs[0]['rank_ratio']
        0.5
    """
    _check(blocks, acts)
    if not ratios or min(ratios) <= 0:
        raise ValueError(f'ratios must be positive, got {list(ratios)}')
    if d_out < 1 or n < 1 or size < 1 or seeds < 1:
        raise ValueError(f'd_out, n, size, seeds must be >= 1, got {d_out}, {n}, {size}, {seeds}')
    c_ins = sorted({max(1, round(r * d_out)) for r in ratios})
    rows = n * size * size
    if rows <= d_out:
        raise ValueError(
            f'the feature matrix has n * size**2 = {rows} rows; it needs more than '
            f'd_out = {d_out} (one is lost to centring): raise n or size'
        )
    records = []
    for bi, block in enumerate(blocks):
        for ci, c_in in enumerate(c_ins):
            ranks: dict[str, list[float]] = {a: [] for a in acts}
            for s in range(seeds):
                g = torch.Generator().manual_seed(seed * 1_000_003 + bi * 10_007 + ci * 101 + s)
                x = torch.randn(n, c_in, size, size, generator=g, dtype=torch.float64)
                for a, y in block_outputs(block, x, d_out, acts, g).items():
                    ranks[a].append(numerical_rank(y, rtol) / d_out)
            for a in acts:
                v = torch.tensor(ranks[a], dtype=torch.float64)
                records.append(
                    dict(
                        block=block,
                        act=a,
                        dim_ratio=c_in / d_out,
                        rank_ratio=float(v.mean()),
                        std=float(v.std(unbiased=False)),
                    )
                )
            if progress is not None:
                progress(1)
    return records


def findings(records: Sequence[dict[str, Any]], d_out: int) -> dict[str, Any]:
    """The paper's three findings, checked on sweep records.

    * ``linear_exact``: every ``act='none'`` point equals the linear bound
      (``min(1, LINEAR_DIM[block] * dim_ratio)``);
    * ``nonlinear_raises``: ``{block: {act: mean gain over the linear bound at the points
      where that bound is below 1}}`` (positive = the nonlinearity raises rank);
    * ``complex_vs_relu6``: ``{block: {act: mean rank ratio minus ReLU6's}}`` for ELU and
      SiLU at the same points (the paper: positive).

    Example:
        >>> recs = rank_sweep(['conv1x1'], ['none', 'relu6', 'silu'], [0.25], d_out=32, seeds=1)
        >>> findings(recs, 32)['linear_exact']
        True
    """
    by = {(r['block'], r['act'], round(r['dim_ratio'] * d_out)): r for r in records}
    blocks = sorted({r['block'] for r in records}, key=BLOCKS.index)
    acts = [a for a in ACTS if any(r['act'] == a for r in records)]
    out: dict[str, Any] = {'linear_exact': True, 'nonlinear_raises': {}, 'complex_vs_relu6': {}}
    for b in blocks:
        c_ins = sorted({c for (bb, _, c) in by if bb == b})
        low = [c for c in c_ins if linear_rank(b, c, d_out) < d_out]
        if 'none' in acts:
            out['linear_exact'] &= all(
                by[b, 'none', c]['rank_ratio'] == linear_rank(b, c, d_out) / d_out for c in c_ins
            )
        out['nonlinear_raises'][b] = {
            a: sum(by[b, a, c]['rank_ratio'] - linear_rank(b, c, d_out) / d_out for c in low)
            / max(len(low), 1)
            for a in acts
            if a != 'none'
        }
        if 'relu6' in acts:
            out['complex_vs_relu6'][b] = {
                a: sum(by[b, a, c]['rank_ratio'] - by[b, 'relu6', c]['rank_ratio'] for c in low)
                / max(len(low), 1)
                for a in ('elu', 'silu')
                if a in acts
            }
    return out

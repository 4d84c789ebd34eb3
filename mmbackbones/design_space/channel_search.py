"""ReXNet's channel-configuration search (Han et al., CVPR 2021, Sec. 4.1).

The paper parameterises the block output channels as a piecewise-linear function of the
block index, samples configurations under a FLOPs/params budget, trains each on CIFAR
(30 epochs, 3 seeds) and compares the width curves of the best, middle and worst 10%: the
best grow the channels *linearly*. Here the space is the design-space toolkit's ``rexnet``
space (:mod:`mmbackbones.design_space.spaces`: 16 blocks, knots at blocks 0, 5, 10, 15,
each a multiple of 8 in [16, 320], expansion 6), sampled and scored by analytic complexity
(``ReXNet.complexity``, read from ``ReXNet.layout``; 32x32 input, 10 classes),
and trained by the toolkit's sweep (:func:`mmbackbones.design_space.train.run_sweep`).

This module is pure: sampling under a budget, ranking over seeds, the top / middle /
bottom width groups with their linear fits, and the best configuration as a ``ReXNet``
arch dict and an mmengine config override. ``tools/channel_search.py`` runs and plots it.
"""

from __future__ import annotations

import json
import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np

from .sampling import sample
from .spaces import get_space

Range = tuple[float | None, float | None]


def parse_budget(text: str | None, name: str = 'budget') -> Range | None:
    """``"lo,hi"`` (either side may be empty) -> ``(lo, hi)``; ``None`` -> no bound.

    Raises:
        ValueError: naming ``name``, the text and the expected form.

    Example:
        >>> parse_budget(',9.2e6', '--flops'), parse_budget('1e6,4e6', '--params')
        ((None, 9200000.0), (1000000.0, 4000000.0))
    """
    if text is None:
        return None
    parts = text.split(',')
    if len(parts) != 2:
        raise ValueError(
            f'{name} {text!r}: expected "lo,hi" with either side empty, e.g. ",9.2e6"'
        )
    try:
        lo, hi = (float(v) if v.strip() else None for v in parts)
    except ValueError:
        raise ValueError(f'{name} {text!r}: bounds must be numbers, e.g. "1e6,4e6"') from None
    if lo is None and hi is None:
        raise ValueError(f'{name} {text!r}: give at least one bound')
    if any(v is not None and (not np.isfinite(v) or v < 0) for v in (lo, hi)):
        raise ValueError(f'{name} {text!r}: bounds must be finite and >= 0')
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f'{name} {text!r}: lower bound {lo:g} is above upper bound {hi:g}')
    return lo, hi


def within(value: float, bounds: Range | None) -> bool:
    """Whether ``value`` lies in ``bounds`` (inclusive; ``None`` sides are open)."""
    if bounds is None:
        return True
    lo, hi = bounds
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def sample_configs(
    n: int,
    seed: int = 0,
    space: str = 'rexnet',
    params: Range | None = None,
    flops: Range | None = None,
) -> list[dict[str, Any]]:
    """``n`` distinct channel configurations from a ReXNet space within the budget.

    Args:
        n (int): Number of configurations (>= 1).
        seed (int): Sampling seed. Default: 0.
        space (str): A design space of the ``ReXNet`` family. Default: 'rexnet'.
        params (Range | None): Params bounds of the 32x32, 10-class classifier.
        flops (Range | None): FLOPs (multiply-adds) bounds at 32x32.

    Returns:
        Design-space records (``id``, ``arch``, ``params``, ``flops``, ...).

    Raises:
        ValueError: an unknown or non-ReXNet space, ``n < 1``, or a budget no sample meets.

    Example:
        >>> recs = sample_configs(3, seed=0, flops=(None, 9.2e6))
        >>> len(recs), all(r['flops'] <= 9.2e6 for r in recs)
        (3, True)
    """
    sp = get_space(space)
    if sp.family != 'ReXNet':
        raise ValueError(
            f'space {space!r} is an {sp.family} space; the channel search needs a ReXNet '
            f'channel space, e.g. "rexnet"'
        )
    if n < 1:
        raise ValueError(f'the number of configurations must be >= 1, got {n}')
    try:
        return sample(sp, n, seed, params_range=params, flops_range=flops)
    except ValueError as e:  # no n samples within the budget
        raise ValueError(f'{e} (params {params}, FLOPs {flops} at 32x32)') from None


def rank_configs(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group trained records by configuration ``id`` and sort by mean error over seeds.

    Returns:
        ``[{"rank", "id", "channels", "arch", "params", "flops", "errors", "mean_error",
        "std_error"}]``, best first (ties broken by id).

    Example:
        >>> rs = [dict(id='a', arch={'channels': [1]}, params=1, flops=1, error=e)
        ...       for e in (10.0, 20.0)] + [dict(id='b', arch={'channels': [2]}, params=1,
        ...       flops=1, error=12.0)]
        >>> [(r['id'], r['mean_error']) for r in rank_configs(rs)]
        [('b', 12.0), ('a', 15.0)]
    """
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r['id'], []).append(r)
    out = []
    for rid, rs in groups.items():
        e = np.array([r['error'] for r in rs], dtype=float)
        r0 = rs[0]
        out.append(
            dict(
                id=rid,
                channels=list(r0['arch']['channels']),
                arch=r0['arch'],
                params=r0['params'],
                flops=r0['flops'],
                errors=e.tolist(),
                mean_error=float(e.mean()),
                std_error=float(e.std()),
            )
        )
    out.sort(key=lambda r: (r['mean_error'], r['id']))
    for i, r in enumerate(out):
        r['rank'] = i + 1
    return out


def width_groups(ranked: Sequence[dict[str, Any]], frac: float = 0.1) -> dict[str, list[dict]]:
    """The top, middle and bottom ``frac`` of ranked configurations (at least one each).

    Example:
        >>> g = width_groups([dict(id=str(i)) for i in range(20)])
        >>> [[r['id'] for r in g[k]] for k in ('top', 'middle', 'bottom')]
        [['0', '1'], ['9', '10'], ['18', '19']]
    """
    n = len(ranked)
    if n == 0:
        raise ValueError('no trained configurations to group')
    k = max(1, int(round(frac * n)))
    mid = max(0, (n - k) // 2)
    return {
        'top': list(ranked[:k]),
        'middle': list(ranked[mid : mid + k]),
        'bottom': list(ranked[n - k :]),
    }


def linear_fit(widths: Sequence[float]) -> dict[str, float]:
    """Least-squares line through ``widths`` against block index: slope, intercept, R^2.

    Example:
        >>> linear_fit([16, 24, 32, 40])
        {'slope': 8.0, 'intercept': 16.0, 'r2': 1.0}
    """
    y = np.asarray(widths, dtype=float)
    x = np.arange(len(y), dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return dict(
        slope=round(float(slope), 4), intercept=round(float(intercept), 4), r2=round(r2, 4)
    )


def group_summary(groups: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per group: size, mean error, the mean width curve and its linear fit, and the mean
    R^2 of each member's own linear fit (how linear the individual curves are).

    Example:
        >>> g = {'top': [dict(channels=[16, 24, 32], mean_error=5.0)]}
        >>> s = group_summary(g)['top']
        >>> s['mean_curve'], s['fit']['slope'], s['member_r2']
        ([16.0, 24.0, 32.0], 8.0, 1.0)
    """
    out = {}
    for name, rs in groups.items():
        w = np.array([r['channels'] for r in rs], dtype=float)
        curve = w.mean(0)
        out[name] = dict(
            n=len(rs),
            mean_error=float(np.mean([r['mean_error'] for r in rs])),
            mean_curve=[round(float(v), 2) for v in curve],
            min_curve=w.min(0).tolist(),
            max_curve=w.max(0).tolist(),
            fit=linear_fit(curve),
            member_r2=round(float(np.mean([linear_fit(c)['r2'] for c in w])), 4),
        )
    return out


# ------------------------------------------------------------------ emitting the best arch


def tap_overrides(arch: dict[str, Any], model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` overrides that put ``arch`` into a config's ReXNet backbone: the
    backbone arch (no ImageNet weights exist for a searched arch: ``init_cfg=None``) and
    every channel list that reads the backbone taps (an FPN/SSD neck's ``in_channels``,
    an SSD neck's pass-through ``out_channels`` and its head's ``in_channels``, or a
    decode head's ``in_channels`` at its ``in_index``).

    Example:
        >>> cfg = dict(backbone=dict(type='mmbackbones.ReXNet', out_indices=(1, 2, 3, 4)),
        ...            neck=dict(type='FPN', in_channels=[38, 61, 128, 185]))
        >>> arch = dict(width_mult=1.0, channels=[16 + 8 * i for i in range(16)])
        >>> tap_overrides(arch, cfg)['neck']
        {'in_channels': [32, 48, 96, 136]}
    """
    from mmbackbones.registry import MODELS

    bb = dict(model_cfg['backbone'])
    if not str(bb.get('type', '')).endswith('ReXNet'):
        raise ValueError(f'the base config has a {bb.get("type")} backbone, not a ReXNet')
    bb.pop('init_cfg', None)
    bb['arch'] = arch
    chs = list(MODELS.build(bb).out_channels)
    over: dict[str, Any] = dict(backbone=dict(arch=arch, init_cfg=None))
    neck = model_cfg.get('neck')
    if isinstance(neck, dict) and 'in_channels' in neck:
        over['neck'] = dict(in_channels=chs)
        if str(neck.get('type', '')).endswith('SSDNeck'):
            outs = chs + list(neck['out_channels'])[len(chs) :]
            over['neck']['out_channels'] = outs
            if 'in_channels' in model_cfg.get('bbox_head', {}):
                over['bbox_head'] = dict(in_channels=outs)
    head = model_cfg.get('decode_head')
    if isinstance(head, dict) and 'in_channels' in head:
        index = head.get('in_index', list(range(len(chs))))
        if isinstance(index, int):
            over['decode_head'] = dict(in_channels=chs[index])
        else:
            over['decode_head'] = dict(in_channels=[chs[i] for i in index])
    return over


def _py(obj: Any) -> str:
    return (
        json.dumps(obj).replace('null', 'None').replace('true', 'True').replace('false', 'False')
    )


def config_snippet(
    arch: dict[str, Any], base_config: str, path: str, header: Sequence[str] = ()
) -> str:
    """Write ``path``: an mmengine config that inherits ``base_config`` (a relative
    ``_base_``) and swaps in ``arch``, with ``arch = dict(...)`` at the top level.

    Returns:
        The written text.

    Example:
        >>> import os.path as osp, tempfile
        >>> arch = dict(width_mult=1.0, channels=[16 + 8 * i for i in range(16)])
        >>> out = osp.join(tempfile.mkdtemp(), 'best_arch.py')
        >>> txt = config_snippet(arch, 'configs/rexnet_fasterrcnn_fpn.py', out)
        >>> 'neck=dict(in_channels=[32, 48, 96, 136])' in txt
        True
    """
    from mmengine.config import Config

    cfg = Config.fromfile(base_config)
    over = tap_overrides(arch, cfg.model)
    base = osp.relpath(osp.abspath(base_config), osp.dirname(osp.abspath(path)))
    lines = [f'# {h}' for h in header]
    lines += [
        f'_base_ = {base!r}',
        '',
        f'arch = dict(width_mult={arch.get("width_mult", 1.0)!r}, channels={arch["channels"]!r})',
        '',
        'model = dict(',
        '    # no ImageNet weights exist for a searched arch: train it from scratch (or point',
        '    # init_cfg at your own checkpoint of this arch)',
        "    # (_delete_: replace the base config's preset name rather than merge into it)",
        '    backbone=dict(arch=dict(_delete_=True, **arch), init_cfg=None),',
    ]
    for key in ('neck', 'bbox_head', 'decode_head'):
        if key in over:
            inner = ', '.join(f'{k}={_py(v)}' for k, v in over[key].items())
            lines.append(f'    {key}=dict({inner}),  # = ReXNet(arch) taps')
    lines.append(')')
    text = '\n'.join(lines) + '\n'
    with open(path, 'w') as fh:
        fh.write(text)
    return text

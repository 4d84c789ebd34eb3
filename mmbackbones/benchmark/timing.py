"""The one timing harness and the one quantile definition of the package.

Everything that times code goes through :func:`time_round_robin`: the benchmark's
sessions (:func:`mmbackbones.benchmark.run_session`) and NetAdapt's latency measurements
(:mod:`mmbackbones.netadapt.latency`, through :func:`time_modules`). It records the time
of every single call (wall clock or process CPU time), after untimed warm-up rounds, with
several callables interleaved round-robin in a fresh random order every round. Every
statistic reported over such times (median, quartiles) is :func:`quantile`.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn as nn

from .errors import BenchmarkError

#: ``clock`` of :func:`time_round_robin` -> its reading: wall-clock latency or process
#: CPU time
_NOW: dict[str, Callable[[], float]] = {'wall': time.perf_counter, 'cpu': time.process_time}
CLOCKS = tuple(_NOW)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (``numpy.quantile``'s default): the one definition
    behind every median and quartile the benchmark and NetAdapt report.

    Args:
        values (Sequence[float]): At least one value, in any order.
        q (float): The quantile, in ``[0, 1]`` (0.5: the median).

    Example:
        >>> [quantile([10.0, 1.0, 3.0, 2.0, 4.0], q) for q in (0.25, 0.5, 0.75)]
        [2.0, 3.0, 4.0]
        >>> quantile([1.0, 2.0], 0.25)
        1.25
    """
    if not values:
        raise BenchmarkError('quantile of no values')
    if not 0.0 <= q <= 1.0:
        raise BenchmarkError(f'quantile q must be in [0, 1], got {q!r}')
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """``quantile(values, 0.5)``.

    Example:
        >>> median([3.0, 1.0, 2.0, 10.0])
        2.5
    """
    return quantile(values, 0.5)


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def time_round_robin(
    steps: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    device: str = 'cpu',
    clock: str = 'wall',
    calls: int = 1,
) -> dict[str, list[float]]:
    """Time every step once per round, ``repeats`` rounds, after ``warmup`` rounds.

    Every round runs the candidates in a fresh random order (seeded, so reproducible):
    a fixed or merely rotated order would always run a candidate right after the same
    neighbour, and a heavy neighbour (a large allocation freed just before, cold caches)
    would bias it. The garbage collector is off while timing.

    ``clock='wall'`` is latency (``time.perf_counter``). ``clock='cpu'`` is the CPU time of
    the process (``time.process_time``, all threads summed): with one thread it is the
    latency the step would have on an idle core, unaffected by other processes being
    scheduled on a shared machine; with several threads it is their total work, not a
    latency.

    Args:
        steps (dict[str, callable]): Name -> a callable without arguments.
        repeats (int): Timed rounds.
        warmup (int): Untimed rounds first (each runs every step once, in order).
        device (str): ``'cuda...'`` synchronises around every call. Default: 'cpu'.
        clock (str): One of :data:`CLOCKS`. Default: 'wall'.
        calls (int): Consecutive timed calls of a step in its turn of a round, each
            recorded on its own (a burst: the later calls find their weights in cache).
            Default: 1.

    Returns:
        Seconds per call, one list per name (``repeats * calls`` long), in round order.

    Example:
        >>> t = time_round_robin({'a': lambda: None, 'b': lambda: None}, 3, 1)
        >>> sorted(t), len(t['a'])
        (['a', 'b'], 3)
    """
    if repeats < 1 or warmup < 0 or calls < 1:
        raise BenchmarkError(
            f'need repeats >= 1, warmup >= 0 and calls >= 1, got {repeats}, {warmup}, {calls}'
        )
    if clock not in CLOCKS:
        raise BenchmarkError(f'unknown clock {clock!r}; valid clocks are {list(CLOCKS)}')
    if clock == 'cpu' and device.startswith('cuda'):
        raise BenchmarkError("clock 'cpu' measures CPU time; use 'wall' on CUDA")
    now = _NOW[clock]
    names = list(steps)
    for _ in range(warmup):
        for n in names:
            steps[n]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        rng = random.Random(0)
        for _ in range(repeats):
            for n in rng.sample(names, len(names)):
                for _ in range(calls):
                    _sync(device)
                    t0 = now()
                    steps[n]()
                    _sync(device)
                    times[n].append(now() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


@contextlib.contextmanager
def _inference(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Every module in eval mode under ``no_grad``; training flags restored afterwards."""
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, flag in zip(modules, flags):
            m.train(flag)


def time_modules(
    modules: Sequence[nn.Module],
    x: torch.Tensor,
    repeats: int,
    warmup: int,
    calls: int = 1,
) -> list[list[float]]:
    """Milliseconds of ``module(x)`` forwards (eval, no grad), the modules interleaved by
    :func:`time_round_robin` (wall clock).

    Args:
        modules (Sequence[nn.Module]): Put in eval mode while timed (restored afterwards).
        x (Tensor): The input of every module (batch 1 for latency).
        repeats (int): Rounds.
        warmup (int): Untimed rounds first.
        calls (int): Consecutive timed forwards of a module per round. Default: 1.

    Returns:
        list[list[float]]: Per module, in order, one time per timed forward (ms).

    Example:
        >>> convs = [nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 5)]
        >>> [len(t) for t in time_modules(convs, torch.rand(1, 3, 16, 16), 2, 1, calls=3)]
        [6, 6]
    """
    steps = {str(i): (lambda m=m: m(x)) for i, m in enumerate(modules)}
    with _inference(modules):
        times = time_round_robin(steps, repeats, warmup, device=str(x.device), calls=calls)
    return [[t * 1e3 for t in times[str(i)]] for i in range(len(modules))]


def time_module(
    module: nn.Module, x: torch.Tensor, repeats: int = 50, warmup: int = 5
) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` forwards of ``module(x)`` (eval, no grad).

    Args:
        module (nn.Module): The module (put in eval mode; restored afterwards).
        x (Tensor): Its input (batch 1 for latency).
        repeats (int): Timed forwards. Default: 50.
        warmup (int): Untimed forwards first. Default: 5.

    Returns:
        list[float]: One time per forward, in milliseconds.

    Example:
        >>> ts = time_module(nn.Conv2d(3, 8, 3), torch.rand(1, 3, 32, 32), repeats=3)
        >>> len(ts)
        3
    """
    return time_modules([module], x, repeats, warmup)[0]

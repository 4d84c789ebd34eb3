"""Measured CPU latency: direct whole-network timing and a per-layer lookup table (LUT).

NetAdapt (Yang et al., ECCV 2018, section 3.2) predicts a network's latency as the sum of
per-layer latencies looked up in a table that is measured once per layer shape. Here a
"layer" is one child of a backbone's flat ``layers`` Sequential (the stem, each block, the
head conv), and its key (:func:`layer_key`) spells out everything that changes its cost:
every conv's in/out channels, kernel, stride, dilation and groups, the norm and activation
types, the shortcut, and the input shape. Entries are timed lazily, the first time a shape
is asked for, and cached in a JSON file reused across iterations and runs.

Timing goes through the benchmark's one harness (:mod:`mmbackbones.benchmark.timing`:
:func:`time_module` / :func:`~mmbackbones.benchmark.timing.time_modules`): batch-1
forwards in eval mode under ``torch.no_grad`` with a fixed number of intra-op threads,
after warm-up, each forward timed on its own; medians and quartiles are its
:func:`~mmbackbones.benchmark.timing.quantile`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.benchmark.timing import median, quantile, time_module, time_modules

__all__ = [
    'FlopsLatency',
    'LATENCY_MODELS',
    'LatencyLUT',
    'LatencyModel',
    'MeasuredLatency',
    'compare_latency',
    'layer_key',
    'measure_latency',
    'num_threads',
    'time_module',
]


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the old value."""
    if threads < 1:
        raise ValueError(f'threads must be >= 1, got {threads!r}')
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _Backbone(nn.Module):
    """The timed network: the backbone up to its last tap (the classifier excluded)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.layers = backbone.layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def measure_latency(
    backbone: nn.Module,
    shape: Sequence[int] = (224, 224),
    threads: int = 1,
    repeats: int = 50,
    warmup: int = 5,
) -> dict[str, float]:
    """Directly measured latency of a backbone: batch 1, ``threads`` threads.

    The whole flat ``layers`` Sequential is timed (stem to the last built layer, e.g. the
    head conv when the last tap is selected), without the classifier.

    Args:
        backbone (nn.Module): A :class:`BaseBackbone` (anything with ``.layers``).
        shape (Sequence[int]): Input ``(H, W)``. Default: (224, 224).
        threads (int): ``torch.set_num_threads`` while timing. Default: 1.
        repeats (int): Timed forwards; the median is reported. Default: 50.
        warmup (int): Untimed forwards. Default: 5.

    Returns:
        dict: ``median_ms``, ``min_ms``, ``p25_ms``, ``p75_ms``, ``repeats``, ``threads``.
        On a busy machine the median includes time the process spent descheduled; the
        minimum is the undisturbed forward.

    Example:
        >>> from mmbackbones.models.backbones import MobileNetV3
        >>> r = measure_latency(MobileNetV3('small', out_indices=(-1,)), (64, 64), repeats=5)
        >>> sorted(r)
        ['median_ms', 'min_ms', 'p25_ms', 'p75_ms', 'repeats', 'threads']
    """
    x = torch.rand(1, 3, *shape)
    with num_threads(threads):
        ts = time_module(_Backbone(backbone), x, repeats, warmup)
    return dict(
        median_ms=median(ts),
        min_ms=min(ts),
        p25_ms=quantile(ts, 0.25),
        p75_ms=quantile(ts, 0.75),
        repeats=repeats,
        threads=threads,
    )


def compare_latency(
    backbones: Sequence[nn.Module],
    shape: Sequence[int] = (224, 224),
    threads: int = 1,
    rounds: int = 20,
    repeats: int = 5,
) -> list[float]:
    """Median latencies of several backbones timed in alternation.

    Interleaving (``rounds`` rounds, each running every backbone for ``repeats``
    consecutive forwards, in a fresh random order; 4 untimed rounds first) exposes every
    model to the same background load, so ratios stay meaningful on a busy machine.

    Args:
        backbones (Sequence[nn.Module]): Anything with a flat ``layers`` Sequential.
        shape (Sequence[int]): Input ``(H, W)``; batch 1. Default: (224, 224).
        threads (int): ``torch.set_num_threads`` while timing. Default: 1.
        rounds (int): Timed rounds. Default: 20.
        repeats (int): Timed forwards of each backbone per round. Default: 5.

    Returns:
        list[float]: The median milliseconds of each backbone, in order.

    Example:
        >>> from mmbackbones.models.backbones import MobileNetV3
        >>> m = MobileNetV3('small', out_indices=(-1,))
        >>> len(compare_latency([m, m], (32, 32), rounds=2, repeats=1))
        2
    """
    x = torch.rand(1, 3, *shape)
    nets = [_Backbone(b) for b in backbones]
    with num_threads(threads):
        times = time_modules(nets, x, rounds, warmup=4, calls=repeats)
    return [median(t) for t in times]


def layer_key(layer: nn.Module, in_shape: Sequence[int], threads: int) -> str:
    """The LUT key of one layer: everything that changes its measured cost.

    Example:
        >>> layer_key(nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU()), (1, 8, 32, 32), 1)
        'Sequential|in=8x32x32|t1|0:conv8>16k3s2d1g1b|1:ReLU'
    """
    parts = [type(layer).__name__, 'in=' + 'x'.join(str(int(s)) for s in in_shape[1:])]
    parts.append(f't{threads}')
    for name, m in layer.named_modules():
        if isinstance(m, nn.Conv2d):
            parts.append(
                f'{name}:conv{m.in_channels}>{m.out_channels}k{m.kernel_size[0]}'
                f's{m.stride[0]}d{m.dilation[0]}g{m.groups}' + ('b' if m.bias is not None else '')
            )
        elif isinstance(m, nn.Linear):
            parts.append(f'{name}:fc{m.in_features}>{m.out_features}')
        elif isinstance(m, _BatchNorm):
            parts.append(f'{name}:bn')
        elif not list(m.children()) and not isinstance(m, (nn.Identity, nn.Dropout)):
            parts.append(f'{name}:{type(m).__name__}')
        shortcut = getattr(m, 'shortcut', None)
        if isinstance(shortcut, str):
            parts.append(f'{name}:sc={shortcut}')
    return '|'.join(parts)


class LatencyLUT:
    """Per-layer latency lookup table, measured lazily and cached as JSON.

    Args:
        path (str | Path | None): JSON cache; read if it exists, rewritten after each new
            measurement. ``None`` keeps the table in memory. Default: None.
        threads (int): Intra-op threads for timing (part of every key). Default: 1.
        repeats (int): Timed forwards per new entry (median). Default: 30.
        warmup (int): Untimed forwards per new entry. Default: 5.

    Attributes:
        num_measured (int): Entries timed by this object (not read from the cache).

    Example:
        >>> from mmbackbones.models.backbones import MobileNetV3
        >>> lut = LatencyLUT(repeats=3)
        >>> m = MobileNetV3('small', out_indices=(-1,))
        >>> total, per_layer = lut.estimate(m, (64, 64))
        >>> len(per_layer), lut.num_measured  # 13 layers, 11 shapes (b4 = b5, b9 = b10)
        (13, 11)
        >>> _ = lut.estimate(m, (64, 64)); lut.num_measured  # cached: nothing re-timed
        11
    """

    def __init__(
        self,
        path: str | Path | None = None,
        threads: int = 1,
        repeats: int = 30,
        warmup: int = 5,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.threads = threads
        self.repeats = repeats
        self.warmup = warmup
        self.num_measured = 0
        self.entries: dict[str, float] = {}
        if self.path is not None and self.path.exists():
            self.entries = dict(json.loads(self.path.read_text())['entries'])

    def __len__(self) -> int:
        return len(self.entries)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix('.tmp')
        body = dict(
            note='milliseconds per layer, batch 1, median of repeats; key: see layer_key',
            torch=torch.__version__,
            entries=self.entries,
        )
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def lookup(self, layer: nn.Module, x: torch.Tensor) -> float:
        """Milliseconds of ``layer`` on an input shaped like ``x``, timed on first use."""
        key = layer_key(layer, x.shape, self.threads)
        if key not in self.entries:
            with num_threads(self.threads):
                ts = time_module(layer, torch.rand(x.shape), self.repeats, self.warmup)
            self.entries[key] = median(ts)
            self.num_measured += 1
            self._save()
        return self.entries[key]

    def estimate(
        self, backbone: nn.Module, shape: Sequence[int] = (224, 224)
    ) -> tuple[float, list[float]]:
        """LUT latency of a backbone: the sum of its layers' entries.

        Args:
            backbone (nn.Module): Anything with a flat ``layers`` Sequential.
            shape (Sequence[int]): Input ``(H, W)``; batch 1.

        Returns:
            tuple: ``(total_ms, per_layer_ms)``.
        """
        x = torch.zeros(1, 3, *shape)
        per_layer = []
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad(), num_threads(self.threads):
            for layer in backbone.layers:
                per_layer.append(self.lookup(layer, x))
                x = layer(x)
        backbone.train(was_training)
        return sum(per_layer), per_layer


# ------------------------------------------------------------------ latency models
class LatencyModel:
    """What NetAdapt asks of a latency: a direct measurement of a whole backbone and a
    per-layer estimate (the lookup-table sum that ranks proposals).

    Subclasses: :class:`MeasuredLatency` (this CPU, the default) and
    :class:`FlopsLatency` (a deterministic cost model).
    """

    #: the name NetAdaptConfig.latency gives
    name = ''

    def measure(self, backbone: nn.Module, shape: Sequence[int], repeats: int) -> float:
        """Milliseconds of the whole backbone, batch 1."""
        raise NotImplementedError

    def estimate(self, backbone: nn.Module, shape: Sequence[int]) -> tuple[float, list[float]]:
        """``(total_ms, per_layer_ms)``: the sum over the backbone's layers."""
        raise NotImplementedError

    def __len__(self) -> int:
        return 0


class MeasuredLatency(LatencyModel):
    """Latency on this CPU: direct timing (:func:`measure_latency`, the ``stat`` of the
    repeats) and the per-layer lookup table (:class:`LatencyLUT`).

    Args:
        lut_path (str | Path | None): The lookup table's JSON cache.
        threads (int): Intra-op threads. Default: 1.
        lut_repeats (int): Timed forwards of a new table entry. Default: 30.
        stat (str): ``'median'`` or ``'min'`` of a direct measurement. Default: 'median'.
    """

    name = 'measured'

    def __init__(
        self,
        lut_path: str | Path | None = None,
        threads: int = 1,
        lut_repeats: int = 30,
        stat: str = 'median',
    ) -> None:
        self.threads, self.stat = threads, stat
        self.lut = LatencyLUT(lut_path, threads=threads, repeats=lut_repeats)

    def measure(self, backbone: nn.Module, shape: Sequence[int], repeats: int) -> float:
        return measure_latency(backbone, shape, self.threads, repeats)[f'{self.stat}_ms']

    def estimate(self, backbone: nn.Module, shape: Sequence[int]) -> tuple[float, list[float]]:
        return self.lut.estimate(backbone, shape)

    def __len__(self) -> int:
        return len(self.lut)


class FlopsLatency(LatencyModel):
    """A deterministic latency: ``multiply-adds / rate + a fixed cost per layer``.

    No clock is read, so a NetAdapt run under it is exactly reproducible: for planning
    under a FLOPs budget, and for tests of the algorithm's logic (a latency model the test
    controls, rather than a shared machine's speed). Direct measurement and estimate agree.

    Args:
        mmac_per_ms (float): Multiply-adds (millions) per millisecond. Default: 100.
        layer_ms (float): Fixed cost per layer (call overhead), ms. Default: 0.01.

    Example:
        >>> from mmbackbones.models import MobileNetV3
        >>> lat = FlopsLatency()
        >>> m = MobileNetV3('small', out_indices=(-1,))
        >>> total, per_layer = lat.estimate(m, (64, 64))
        >>> round(total, 4) == round(lat.measure(m, (64, 64), repeats=1), 4), len(per_layer)
        (True, 13)
    """

    name = 'flops'

    def __init__(self, mmac_per_ms: float = 100.0, layer_ms: float = 0.01) -> None:
        if not mmac_per_ms > 0 or layer_ms < 0:
            raise ValueError(
                f'FlopsLatency: need mmac_per_ms > 0 and layer_ms >= 0, got '
                f'{mmac_per_ms!r}, {layer_ms!r}'
            )
        self.mmac_per_ms, self.layer_ms = mmac_per_ms, layer_ms

    def estimate(self, backbone: nn.Module, shape: Sequence[int]) -> tuple[float, list[float]]:
        from mmbackbones.complexity import measure

        x = torch.zeros(1, 3, *shape)
        per_layer = []
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            for layer in backbone.layers:
                macs = measure(layer, tuple(x.shape[2:]), in_channels=x.shape[1]).flops
                per_layer.append(macs / 1e6 / self.mmac_per_ms + self.layer_ms)
                x = layer(x)
        backbone.train(was_training)
        return sum(per_layer), per_layer

    def measure(self, backbone: nn.Module, shape: Sequence[int], repeats: int) -> float:
        return self.estimate(backbone, shape)[0]


#: NetAdaptConfig.latency -> its model class
LATENCY_MODELS = {m.name: m for m in (MeasuredLatency, FlopsLatency)}

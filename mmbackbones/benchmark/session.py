"""A benchmark session: steps, timing and the rows they give.

:func:`make_step` turns a model into one iteration in a mode (``'train'``, ``'infer'``,
``'deploy'``); :func:`run_session` builds and prepares the candidates of
:mod:`.peers`, times them round-robin with :func:`.timing.time_round_robin`, measures
their peak memory (:mod:`.memory`) and returns one :class:`Row` per candidate, with the
ratios ours / peer attached (:func:`attach_ratios`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .errors import BenchmarkError
from .memory import peak_memory
from .peers import Candidate
from .runtimes import DEFAULT_CALIBRATION, EngineFactory
from .timing import median, quantile, time_round_robin

MODES = ('train', 'infer', 'deploy')
#: ``--compile``: which candidates of an infer/deploy session go through ``torch.compile``
COMPILE_CHOICES = ('none', 'ours', 'all')

# --------------------------------------------------------------------------------------
# Steps: one timed iteration of a candidate
# --------------------------------------------------------------------------------------


def _reduce(out: Any) -> torch.Tensor:
    """Sum of the means of every tensor in a (nested) model output: a scalar "loss"."""
    if isinstance(out, torch.Tensor):
        return out.float().mean()
    if isinstance(out, dict):
        out = list(out.values())
    return sum(_reduce(o) for o in out)


def deploy_fuse(model: nn.Module) -> nn.Module:
    """Our deploy-time folding, ``mmbackbones.deploy.fuse``; a clear error if missing."""
    try:
        from mmbackbones.deploy import fuse
    except ImportError as e:
        raise BenchmarkError(
            f'--mode deploy needs mmbackbones.deploy.fuse, which is not available ({e})'
        ) from e
    return fuse(model.eval())


def compile_model(model: nn.Module, fused: bool, kind: str = 'tensor') -> nn.Module:
    """``torch.compile`` with inductor freezing (a clear error where it cannot run).

    ``fused``: ``model`` is already our deploy form, so it is not fused again. Only
    tensor models (``kind='tensor'``) are compiled: a whole detector's predict step has
    data-dependent post-processing.
    """
    if kind != 'tensor':
        raise BenchmarkError('compile applies to backbones and classifiers, not to a config')
    from mmbackbones.deploy import CompileUnavailableError, compile_for_inference

    try:
        return compile_for_inference(model, fuse_first=False)
    except CompileUnavailableError as e:
        raise BenchmarkError(str(e)) from e


def make_step(
    model: nn.Module,
    kind: str,
    mode: str,
    batch: int,
    shape: tuple[int, int],
    device: str = 'cpu',
) -> Callable[[], None]:
    """One iteration of ``model`` in ``mode`` on fixed random inputs (created here, once).

    ``kind='tensor'``: ``model(x)``; in training the loss is the sum of the outputs' means,
    then ``backward`` and ``zero_grad(set_to_none=True)``. ``kind='mmdet'``/``'mmseg'``: a
    detector / segmentor on random images with random boxes / label maps (preprocessed
    once, outside the step): ``mode='loss'`` + ``parse_losses`` + backward in training,
    ``mode='predict'`` (post-processing included) otherwise.

    Example:
        >>> step = make_step(nn.Conv2d(3, 4, 3), 'tensor', 'train', 2, (8, 8))
        >>> step()
    """
    if mode not in MODES:
        raise BenchmarkError(f'unknown mode {mode!r}; valid modes are {list(MODES)}')
    train = mode == 'train'
    model.train(train)
    h, w = shape
    gen = torch.Generator().manual_seed(0)
    if kind == 'tensor':
        x = torch.randn(batch, 3, h, w, generator=gen).to(device)

        def forward() -> Any:
            return model(x)

    else:
        data = _host_inputs(model, kind, batch, shape, train, gen)

        def forward() -> Any:
            return model(**data, mode='loss' if train else 'predict')

    if train:

        def step() -> None:
            out = forward()
            loss = model.parse_losses(out)[0] if kind != 'tensor' else _reduce(out)
            loss.backward()
            model.zero_grad(set_to_none=True)

    else:

        def step() -> None:
            with torch.no_grad():
                forward()

    return step


def _host_inputs(
    model: nn.Module, kind: str, batch: int, shape: tuple[int, int], train: bool, gen
) -> dict:
    """Preprocessed random inputs for an mmdet detector or mmseg segmentor."""
    h, w = shape
    if kind == 'mmdet':
        import numpy as np
        from mmdet.testing import demo_mm_inputs

        np.random.seed(0)  # labels are drawn in [1, num_classes): all 1, valid everywhere
        with_mask = getattr(model, 'roi_head', None) is not None and getattr(
            model.roi_head, 'with_mask', False
        )
        packed = demo_mm_inputs(
            batch, [(3, h, w)] * batch, num_items=[3] * batch, num_classes=2, with_mask=with_mask
        )
    elif kind == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        num_classes = _seg_num_classes(model)
        packed = dict(
            inputs=[
                torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
                for _ in range(batch)
            ],
            data_samples=[
                SegDataSample(
                    gt_sem_seg=PixelData(
                        data=torch.randint(0, num_classes, (1, h, w), generator=gen)
                    ),
                    metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)),
                )
                for _ in range(batch)
            ],
        )
        pre = model.data_preprocessor
        if getattr(pre, 'size', None):
            pre.size = (h, w)  # else it pads every batch to the recipe's crop
    else:
        raise BenchmarkError(f'unknown step kind {kind!r}')
    return model.data_preprocessor(packed, train)


def _seg_num_classes(model: nn.Module) -> int:
    head = model.decode_head
    return head[0].num_classes if isinstance(head, nn.ModuleList) else head.num_classes


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One candidate's measurement in one session (mode, batch, threads).

    ``times`` are seconds per round; the median and quartiles are :func:`.timing.quantile`.
    """

    arch: str
    impl: str
    form: str
    mode: str
    batch: int
    threads: int
    height: int
    width: int
    times: list[float]
    params_m: float | None = None
    gflops: float | None = None
    peak_mem_mb: float | None = None
    family: str = ''
    ratio: float | None = None  # peer rows: ours / this peer (median of round ratios)
    ratio_fastest: float | None = None  # our rows: ours / the fastest peer, same form
    fastest_peer: str = ''
    note: str = ''
    engine: str = ''  # '' = PyTorch; else the runtime and precision, e.g. 'openvino int8'

    @property
    def ours(self) -> bool:
        return self.impl == 'mmbackbones'

    @property
    def precision(self) -> str:
        """``'fp32'`` (PyTorch, or a runtime in FP32), ``'bf16'`` or ``'int8'``."""
        return self.engine.partition(' ')[2] or 'fp32'

    @property
    def path(self) -> str:
        """Where it ran: ``'PyTorch'`` (with its note, e.g. ``'PyTorch fused'``) or the
        engine label."""
        return self.engine or ' '.join(filter(None, ('PyTorch', self.note)))

    @property
    def median_ms(self) -> float:
        return median(self.times) * 1e3

    @property
    def p25_ms(self) -> float:
        return quantile(self.times, 0.25) * 1e3

    @property
    def p75_ms(self) -> float:
        return quantile(self.times, 0.75) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.times) * 1e3

    @property
    def throughput(self) -> float:
        return self.batch / (self.median_ms / 1e3)


def round_ratio(ours: Sequence[float], peer: Sequence[float]) -> float:
    """Median over rounds of ``ours[r] / peer[r]``.

    Example:
        >>> round_ratio([2.0, 9.0, 2.2], [1.0, 3.0, 2.0])
        2.0
    """
    return median([a / b for a, b in zip(ours, peer)])


def attach_ratios(rows: list[Row]) -> None:
    """Fill ``ratio`` (peer rows) and ``ratio_fastest`` / ``fastest_peer`` (our rows):
    ours against peers of the same arch and form, run the same way (PyTorch, or the same
    runtime and precision), measured in the same session."""
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.arch, r.form, r.mode, r.batch, r.threads, r.engine), []).append(r)
    for group in groups.values():
        ours = [r for r in group if r.ours]
        peers = [r for r in group if not r.ours]
        if len(ours) != 1 or not peers:
            continue
        o = ours[0]
        for p in peers:
            p.ratio = round_ratio(o.times, p.times)
        fastest = min(peers, key=lambda p: p.median_ms)
        o.ratio_fastest, o.fastest_peer = fastest.ratio, fastest.impl


@dataclass
class BestPath:
    """Our fastest way to run an architecture against the peers' fastest, one session,
    one precision.

    ``ratio``: median over rounds of ours / peer (both timed interleaved in every round).
    """

    arch: str
    form: str
    precision: str
    ours: Row
    peer: Row
    ratio: float


def best_paths(rows: Sequence[Row]) -> list[BestPath]:
    """Per (arch, form, session, precision): our fastest row over every path (PyTorch
    forms and runtimes) against the fastest peer row over every path. Precisions are
    compared apart (FP32: PyTorch and the runtimes in FP32; bf16; INT8), since a faster
    path in a lower precision also computes something else.

    Example:
        >>> def row(impl, ms, engine=''):
        ...     return Row('A', impl, 'classifier', 'deploy', 1, 2, 8, 8, [ms], engine=engine)
        >>> rows = [row('mmbackbones', 3.0), row('mmbackbones', 1.0, 'onnxruntime fp32'),
        ...         row('timm a', 4.0), row('timm a', 2.0, 'openvino fp32')]
        >>> b = best_paths(rows)[0]
        >>> b.ours.path, b.peer.impl, b.peer.path, b.ratio
        ('onnxruntime fp32', 'timm a', 'openvino fp32', 0.5)
    """
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        key = (r.arch, r.form, r.precision, r.mode, r.batch, r.threads)
        groups.setdefault(key, []).append(r)
    out = []
    for (arch, form, precision, *_), group in groups.items():
        ours = [r for r in group if r.ours]
        peers = [r for r in group if not r.ours]
        if not ours or not peers:
            continue
        o = min(ours, key=lambda r: r.median_ms)
        p = min(peers, key=lambda r: r.median_ms)
        out.append(BestPath(arch, form, precision, o, p, round_ratio(o.times, p.times)))
    return out


def int8_speedups(rows: Sequence[Row]) -> list[tuple[Row, Row, float]]:
    """``(fp32 row, int8 row, fp32 / int8)`` for every model run in both precisions of
    the same runtime in one session (median of per-round ratios: above 1 = INT8 faster)."""
    index = {(r.arch, r.impl, r.form, r.mode, r.batch, r.threads, r.engine): r for r in rows}
    out = []
    for key, r in index.items():
        runtime, _, precision = key[-1].partition(' ')
        if precision != 'int8':
            continue
        fp32 = index.get((*key[:-1], f'{runtime} fp32'))
        if fp32 is not None:
            out.append((fp32, r, round_ratio(fp32.times, r.times)))
    return out


# --------------------------------------------------------------------------------------
# Running a session
# --------------------------------------------------------------------------------------


def run_session(
    candidates: Sequence[Candidate],
    mode: str,
    batch: int,
    shape: tuple[int, int],
    threads: int,
    repeats: int,
    warmup: int,
    device: str = 'cpu',
    memory: bool = True,
    flops: bool = True,
    clock: str = 'wall',
    log: Callable[[str], None] | None = None,
    compiled: str = 'none',
    calibration: int = DEFAULT_CALIBRATION,
) -> list[Row]:
    """Build, prepare and time ``candidates`` round-robin in one session.

    Args:
        candidates (Sequence[Candidate]): What to time (see :func:`candidates_for`).
        mode (str): ``'train'``, ``'infer'`` or ``'deploy'`` (see module docstring).
        batch (int): Batch size.
        shape (tuple[int, int]): Input height and width.
        threads (int): ``torch.set_num_threads`` for the session.
        repeats (int): Timed rounds.
        warmup (int): Untimed rounds first.
        device (str): ``'cpu'`` or ``'cuda'`` / ``'cuda:N'``. Default: 'cpu'.
        memory (bool): Measure the peak memory of one step. Default: True.
        flops (bool): Count params and FLOPs (tensor models). Default: True.
        clock (str): ``'wall'`` (latency) or ``'cpu'`` (process CPU time, see
            :func:`time_round_robin`). Default: 'wall'.
        log (callable | None): Progress messages.
        compiled (str): ``'none'`` (default), ``'ours'`` or ``'all'``: which candidates
            of an infer/deploy session go through ``torch.compile`` (see module
            docstring).
        calibration (int): Calibration images of each INT8 runtime candidate
            (:mod:`.runtimes`). Default: :data:`.runtimes.DEFAULT_CALIBRATION`.

    Returns:
        One :class:`Row` per candidate, with ratios attached.
    """
    from mmbackbones.complexity import count_params, measure

    if mode not in MODES:
        raise BenchmarkError(f'unknown mode {mode!r}; valid modes are {list(MODES)}')
    if mode == 'train' and batch < 2:
        raise BenchmarkError(
            "mode train needs batch >= 2: BatchNorm in training mode (e.g. in ReXNet's SE "
            'on a 1x1 map) needs more than one value per channel'
        )
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise BenchmarkError(f'device {device!r} requested but CUDA is not available')
    if compiled not in COMPILE_CHOICES:
        raise BenchmarkError(
            f'unknown compile choice {compiled!r}; valid choices are {list(COMPILE_CHOICES)}'
        )
    if compiled != 'none' and mode == 'train':
        raise BenchmarkError(
            'compile applies to infer/deploy (inductor freezing needs frozen weights); '
            'mode train is always eager'
        )
    engines = [c for c in candidates if c.engine]
    if engines and (mode == 'train' or device != 'cpu'):
        raise BenchmarkError(
            f'runtime candidates ({engines[0].engine}, ...) run inference on the CPU: '
            f'use mode infer or deploy on device cpu, not {mode} on {device}'
        )
    log = log or (lambda _msg: None)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    factory = EngineFactory(shape, batch, threads, calibration) if engines else None
    steps: dict[str, Callable[[], None]] = {}
    rows: dict[str, Row] = {}
    for c in candidates:
        log(f'build {c.arch} | {c.impl} | {c.form}' + (f' | {c.engine}' if c.engine else ''))
        model = c.build()
        params = count_params(model) / 1e6
        gflops = None
        if flops and c.kind == 'tensor':
            gflops = measure(model, shape).flops / 1e9
        note = ''
        key = f'{c.arch}|{c.impl}|{c.form}|{c.engine}'
        if c.engine:  # exported as built (the runtime folds BatchNorm itself)
            steps[key] = factory.step(c, model)
        else:
            model = model.to(device)
            compile_it = compiled == 'all' or (compiled == 'ours' and c.ours)
            if mode == 'deploy' and c.ours:
                model = deploy_fuse(model)
                note = 'fused'
            if compile_it:
                model = compile_model(model, fused=bool(note), kind=c.kind)
                note = f'{note}+compiled' if note else 'compiled'
            steps[key] = make_step(model, c.kind, mode, batch, shape, device)
        rows[key] = Row(
            c.arch,
            c.impl,
            c.form,
            mode,
            batch,
            threads,
            shape[0],
            shape[1],
            [],
            params_m=params,
            gflops=gflops,
            family=c.family,
            note=note,
            engine=c.engine,
        )
    # Ratios are taken within an (arch, form) group only, so each group is timed on its
    # own: its candidates have similar sizes, and none runs after a much heavier model.
    groups: dict[tuple[str, str], dict[str, Callable[[], None]]] = {}
    for key, row in rows.items():
        groups.setdefault((row.arch, row.form), {})[key] = steps[key]
    times: dict[str, list[float]] = {}
    for (arch, form), group in groups.items():
        log(f'time {arch} ({form}): {len(group)} candidates, {warmup} warm-up + {repeats} rounds')
        times.update(time_round_robin(group, repeats, warmup, device, clock))
    if factory is not None:
        factory.close()
    for key, row in rows.items():
        row.times = times[key]
        # a runtime's memory is its own, not PyTorch's: no figure
        if memory and 'compiled' not in row.note and not row.engine:
            peak = peak_memory(steps[key], device)
            row.peak_mem_mb = None if peak is None else peak / 2**20
    out = list(rows.values())
    attach_ratios(out)
    return out

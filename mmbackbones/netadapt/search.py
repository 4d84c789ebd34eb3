"""NetAdapt (Yang et al., ECCV 2018) as used by MobileNetV3 (Howard et al., ICCV 2019, 4.2).

Starting from a backbone and a latency target on *this* CPU, each iteration:

1. proposes, for every width knob (:mod:`.knobs`), the widest narrower setting whose
   latency drops by at least ``delta`` according to the per-layer lookup table
   (:class:`.latency.LatencyLUT`, scaled by the measured whole-network / LUT ratio);
2. fine-tunes every proposal briefly on the built-in classification data, starting from
   the current weights with the largest-L2-norm filters kept (:mod:`.shrink`);
3. keeps the proposal with the largest ``dAcc / |dLatency|`` (MobileNetV3's rule);
4. measures the kept network directly and stops once the median is at or below
   ``target * (1 - margin)``.

``delta`` starts at a fraction of the start latency and decays per iteration (paper,
section 4.1). State is written to the output directory after every iteration; running
again with the same directory and settings continues. Outputs: ``result.json``,
``trajectory.json``, ``trajectory.png``, ``adapted_arch.py`` and ``latency_lut.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pprint
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .knobs import WidthKnobs, get_knobs
from .latency import LATENCY_MODELS, FlopsLatency, LatencyModel, MeasuredLatency, num_threads
from .shrink import transfer_weights

NUM_CLASSES = 10
STATS = ('median', 'min')
# settings that do not change the result, so a resumed run may change them
_RUN_ONLY = ('max_iters', 'progress')


@dataclass
class NetAdaptConfig:
    """NetAdapt settings (the CLI's arguments).

    Args:
        backbone (str): Family, see :data:`.knobs.FAMILIES`. Default: 'MobileNetV3'.
        arch (str | dict): Preset name or arch dict of the start point. Default: 'small'.
        widen_factor (float): Width multiplier of the start point. Default: 1.0.
        target_ms (float | None): Latency target in ms (direct, median).
        target_ratio (float | None): Or the target as a fraction of the start latency,
            in (0, 1). Exactly one of the two is given.
        shape (tuple[int, int]): Latency input size (H, W), batch 1. Default: (224, 224).
        threads (int): Threads while timing. Default: 1.
        margin (float): Stop once the direct measurement is <= ``target * (1 - margin)``.
            Default: 0.02.
        stat (str): Statistic of a direct measurement: ``'median'`` of the repeats, or
            ``'min'`` (robust where other processes share the cores: the median then
            includes the time the process was descheduled). Default: 'median'.
        delta (float): First iteration's latency reduction, as a fraction of the start
            latency. Default: 0.05.
        delta_decay (float): ``delta`` is multiplied by this per iteration. Default: 0.96.
        repeats (int): Timed forwards of a direct measurement. Default: 100.
        lut_repeats (int): Timed forwards of a LUT entry. Default: 30.
        train_size (int): Fine-tuning / evaluation resolution. Default: 32.
        pretrain_iters (int): SGD steps training the start network. Default: 300.
        finetune_iters (int): SGD steps per proposal. Default: 40.
        final_iters (int): SGD steps fine-tuning the result (0: none). Default: 0.
        batch_size (int): Default: 64.
        lr (float): Peak learning rate (cosine per phase). Default: 0.05.
        n_train (int): Built-in training images. Default: 2000.
        n_val (int): Built-in validation images. Default: 500.
        data_root (str): CIFAR-10 is used when found here. Default: 'data/cifar10'.
        seed (int): Default: 0.
        max_iters (int): Pause after this many iterations (run again to continue).
            Default: 50.
        latency (str): What "latency" is: ``'measured'`` on this CPU (direct timing and
            the per-layer lookup table), or ``'flops'``, the deterministic
            :class:`~mmbackbones.netadapt.latency.FlopsLatency` (multiply-adds / rate + a
            fixed cost per layer: a FLOPs budget, reproducible to the bit). Default:
            'measured'.
    """

    backbone: str = 'MobileNetV3'
    arch: str | dict = 'small'
    widen_factor: float = 1.0
    target_ms: float | None = None
    target_ratio: float | None = None
    shape: tuple[int, int] = (224, 224)
    threads: int = 1
    margin: float = 0.02
    stat: str = 'median'
    delta: float = 0.05
    delta_decay: float = 0.96
    repeats: int = 100
    lut_repeats: int = 30
    train_size: int = 32
    pretrain_iters: int = 300
    finetune_iters: int = 40
    final_iters: int = 0
    batch_size: int = 64
    lr: float = 0.05
    n_train: int = 2000
    n_val: int = 500
    data_root: str = 'data/cifar10'
    seed: int = 0
    max_iters: int = 50
    latency: str = 'measured'
    progress: bool = field(default=True, repr=False)

    def validate(self) -> WidthKnobs:
        """Check the settings; returns the family's knobs. Raises ``ValueError``."""
        knobs = get_knobs(self.backbone)
        if (self.target_ms is None) == (self.target_ratio is None):
            raise ValueError('NetAdapt: give exactly one of target_ms and target_ratio')
        if self.target_ms is not None and not self.target_ms > 0:
            raise ValueError(f'NetAdapt: target_ms must be > 0 ms, got {self.target_ms!r}')
        if self.target_ratio is not None and not 0 < self.target_ratio < 1:
            raise ValueError(
                f'NetAdapt: target_ratio must be in (0, 1) (a fraction of the start latency), '
                f'got {self.target_ratio!r}'
            )
        if self.latency not in LATENCY_MODELS:
            raise ValueError(
                f'NetAdapt: latency must be one of {sorted(LATENCY_MODELS)}, '
                f'got {self.latency!r}'
            )
        if self.stat not in STATS:
            raise ValueError(f'NetAdapt: stat must be one of {STATS}, got {self.stat!r}')
        if not 0 <= self.margin < 0.5:
            raise ValueError(f'NetAdapt: margin must be in [0, 0.5), got {self.margin!r}')
        if not 0 < self.delta < 1 or not 0 < self.delta_decay <= 1:
            raise ValueError(
                f'NetAdapt: need 0 < delta < 1 and 0 < delta_decay <= 1, got '
                f'{self.delta!r}, {self.delta_decay!r}'
            )
        if len(self.shape) != 2 or min(self.shape) < 16:
            raise ValueError(f'NetAdapt: shape must be (H, W) >= 16, got {self.shape!r}')
        for k in ('threads', 'repeats', 'lut_repeats', 'batch_size', 'train_size'):
            if getattr(self, k) < 1:
                raise ValueError(f'NetAdapt: {k} must be >= 1, got {getattr(self, k)!r}')
        return knobs

    def settings(self) -> dict[str, Any]:
        """The settings that define a run (compared when resuming)."""
        d = dataclasses.asdict(self)
        d['shape'] = list(self.shape)
        return {k: v for k, v in d.items() if k not in _RUN_ONLY}


# ------------------------------------------------------------------ selection rule


def select_proposal(proposals: Sequence[dict[str, float]], acc: float, latency_ms: float) -> int:
    """Index of the proposal with the largest ``dAcc / |dLatency|`` (MobileNetV3 4.2).

    Args:
        proposals: Each with ``acc`` (%) and ``lut_ms`` (estimated latency).
        acc (float): Accuracy of the current network.
        latency_ms (float): Estimated latency of the current network.

    Example:
        >>> select_proposal([dict(acc=60, lut_ms=9), dict(acc=59, lut_ms=7)], 61, 10)
        1
    """
    if not proposals:
        raise ValueError('NetAdapt: no proposals to select from')
    scores = [(p['acc'] - acc) / max(abs(latency_ms - p['lut_ms']), 1e-9) for p in proposals]
    return int(np.argmax(scores))


# ------------------------------------------------------------------ training


def load_split(cfg: NetAdaptConfig) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_val, y_val)`` tensors at ``cfg.train_size``."""
    from mmbackbones.design_space.data import load_data

    _, xtr, ytr, xte, yte = load_data(cfg.data_root, cfg.n_train, cfg.n_val, seed=cfg.seed)
    xs = [torch.from_numpy(xtr), torch.from_numpy(xte)]
    if xs[0].shape[-1] != cfg.train_size:
        xs = [F.interpolate(x, size=cfg.train_size, mode='bilinear') for x in xs]
    return xs[0], torch.from_numpy(ytr), xs[1], torch.from_numpy(yte)


def finetune(
    model: nn.Module,
    data: Sequence[torch.Tensor],
    iters: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> float:
    """``iters`` SGD steps (cosine lr, random flips; the design-space sweep's loop,
    :func:`mmbackbones.design_space.train.sgd_train`, with MobileNetV3's weight decay
    4e-5); returns the last loss."""
    from mmbackbones.design_space.train import sgd_train

    return sgd_train(model, data[0], data[1], iters, lr, batch_size, seed, weight_decay=4e-5)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Sequence[torch.Tensor], batches: int = 8) -> None:
    """Re-estimate BatchNorm statistics on training batches (cumulative average).

    MobileNetV3's BN momentum is 0.01, so after a brief fine-tune the running statistics
    still describe older weights; evaluating a pruned and briefly tuned network without
    this is at chance level.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    xtr = data[0]
    step = max(1, len(xtr) // batches)
    for i in range(0, min(len(xtr), step * batches), step):
        model(xtr[i : i + step][:256])
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, data: Sequence[torch.Tensor]) -> float:
    """Top-1 accuracy (%) on the validation split, after :func:`recalibrate_bn`."""
    recalibrate_bn(model, data)
    xte, yte = data[2], data[3]
    right = sum(
        int((model(xte[i : i + 250]).argmax(1) == yte[i : i + 250]).sum())
        for i in range(0, len(xte), 250)
    )
    return 100.0 * right / len(xte)


def build(knobs: WidthKnobs, arch: dict) -> nn.Module:
    """The classifier (backbone + the family's head, 10 classes) of an explicit arch."""
    from mmbackbones.models import ImageClassifier

    return ImageClassifier(knobs.backbone_cfg(arch), num_classes=NUM_CLASSES)


# ------------------------------------------------------------------ proposals


def propose(
    knobs: WidthKnobs,
    arch: dict,
    lut: LatencyModel,
    shape: Sequence[int],
    lut_ms: float,
    delta_ms: float,
    scale: float = 1.0,
) -> list[dict[str, Any]]:
    """One proposal per knob: its widest width that saves ``delta_ms`` (the latency
    model's per-layer estimate x ``scale``).

    Returns:
        list[dict]: ``knob`` (:class:`Knob`), ``width``, ``arch``, ``lut_ms``.
    """
    import mmbackbones.models  # noqa: F401 (registers the families)
    from mmbackbones.registry import MODELS

    out = []
    for knob in knobs.knobs(arch):
        for width in knobs.candidates(arch, knob):
            new = knobs.apply(arch, knob, width)
            backbone = MODELS.build(dict(knobs.backbone_cfg(new), out_indices=(-1,)))
            est, _ = lut.estimate(backbone, shape)
            if (lut_ms - est) * scale >= delta_ms:
                out.append(dict(knob=knob, width=width, arch=new, lut_ms=est))
                break
    return out


def _measured(row: dict) -> float:
    """A trajectory row's latency as the loop judges it: the final check's re-measurement
    where one was made (it missed the target), else the measurement after the step."""
    return row.get('recheck_ms', row['direct_ms'])


# ------------------------------------------------------------------ outputs


def arch_snippet(knobs: WidthKnobs, arch: dict, comment: str) -> str:
    """``adapted_arch.py``: a python ``arch = dict(...)`` for configs."""
    body = ',\n'.join(
        f'    {k}={pprint.pformat(v, width=90, compact=True)}'.replace('\n', '\n    ')
        for k, v in arch.items()
    )
    return (
        f'# NetAdapt result ({knobs.family}). {comment}\n'
        f"# Use: model = dict(backbone=dict(type='mmbackbones.{knobs.family}', arch=arch, ...))\n"
        f'arch = dict(\n{body},\n)\n'
    )


def plot_trajectory(
    trajectory: Sequence[dict],
    path: str | Path,
    target_ms: float,
    title: str = '',
    stat: str = 'median',
) -> None:
    """Accuracy vs measured latency per iteration, the LUT estimate alongside."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    lat = [t['direct_ms'] for t in trajectory]
    lut = [t['lut_ms'] * trajectory[0]['scale'] for t in trajectory]
    acc = [t['acc'] for t in trajectory]
    ax.plot(lat, acc, '-o', color='C0', label=f'measured ({stat})')
    ax.plot(lut, acc, 'x', color='C1', label='LUT sum x start ratio')
    for t, x, y in zip(trajectory, lat, acc):
        label = 'start' if t['iteration'] == 0 else f'{t["iteration"]}: {t["knob"]}'
        ax.annotate(label, (x, y), textcoords='offset points', xytext=(4, 4), fontsize=7)
    ax.axvline(target_ms, ls='--', color='C3', label=f'target {target_ms:.2f} ms')
    ax.set_xlabel('latency (ms)')
    ax.set_ylabel('val accuracy (%)')
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='lower left')
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


# ------------------------------------------------------------------ the loop


class NetAdapt:
    """One NetAdapt run writing to ``out_dir`` (resumable).

    Args:
        cfg (NetAdaptConfig): Settings.
        out_dir (str | Path): State and outputs.
        log (Callable[[str], None]): Progress messages. Default: print.
        latency (LatencyModel | None): The latency model; ``None`` = the one
            ``cfg.latency`` names (:class:`MeasuredLatency` with its lookup table in
            ``out_dir``, or :class:`FlopsLatency`).

    A run ends ``'done'`` only when its final model, measured the way that judges it
    (``2 x repeats``), meets the target. When that final measurement misses it (the stop
    test measured below ``target * (1 - margin)``, the re-measurement did not), the run
    keeps adapting from that measurement. Without iterations left it ends
    ``'paused: ... target missed by X%'`` (running again with a larger ``max_iters``
    continues); when no knob saves latency any more, ``'stopped: ... target missed by
    X%'``.

    Example:
        >>> cfg = NetAdaptConfig(arch='small', target_ratio=0.8)  # doctest: +SKIP
        >>> result = NetAdapt(cfg, 'work_dirs/netadapt').run()  # doctest: +SKIP
    """

    def __init__(
        self,
        cfg: NetAdaptConfig,
        out_dir: str | Path,
        log: Callable[[str], None] = print,
        latency: LatencyModel | None = None,
    ) -> None:
        self.knobs = cfg.validate()
        self.cfg = cfg
        self.out = Path(out_dir)
        self.log = log
        if latency is None and cfg.latency == 'flops':
            latency = FlopsLatency()
        elif latency is None:
            latency = MeasuredLatency(
                self.out / 'latency_lut.json', cfg.threads, cfg.lut_repeats, cfg.stat
            )
        self.lut = latency
        self.state_path = self.out / 'state.json'
        self.weights_path = self.out / 'current.pth'

    # ---------------------------------------------------------------- measuring
    def measure(self, model: nn.Module, repeats: int | None = None) -> tuple[float, float]:
        """``(direct_ms, lut_ms)`` of a classifier's backbone."""
        direct = self.lut.measure(model.backbone, self.cfg.shape, repeats or self.cfg.repeats)
        lut, _ = self.lut.estimate(model.backbone, self.cfg.shape)
        return direct, lut

    # ---------------------------------------------------------------- state
    def _save(self, state: dict, model: nn.Module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_path.with_suffix('.tmp')
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, self.weights_path)
        _write_json(self.state_path, state)
        self._write_outputs(state)

    def _load(self) -> tuple[dict, nn.Module] | None:
        if not self.state_path.exists():
            return None
        state = json.loads(self.state_path.read_text())
        theirs, ours = state['settings'], self.cfg.settings()
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if diff:
            raise ValueError(
                f'NetAdapt: {self.out} holds a run with other settings ('
                + ', '.join(f'{k}: {theirs.get(k)!r} there, {ours.get(k)!r} now' for k in diff)
                + '); use the same settings to continue it or another --out directory'
            )
        model = build(self.knobs, state['arch'])
        model.load_state_dict(torch.load(self.weights_path, map_location='cpu'))
        return state, model

    def _start(self, data: Sequence[torch.Tensor]) -> tuple[dict, nn.Module]:
        cfg = self.cfg
        arch = self.knobs.start_arch(cfg.arch, cfg.widen_factor)
        torch.manual_seed(cfg.seed)
        model = build(self.knobs, arch)
        direct, lut = self.measure(model)
        target = cfg.target_ms if cfg.target_ms is not None else cfg.target_ratio * direct
        if target >= direct:
            raise ValueError(
                f'NetAdapt: target {target:.3f} ms is not below the start latency '
                f'{direct:.3f} ms ({cfg.backbone} {cfg.arch!r}, {cfg.shape[0]}x'
                f'{cfg.shape[1]}, {cfg.threads} thread(s)); choose a lower --target-ms or '
                'a --target-ratio in (0, 1)'
            )
        self.log(
            f'start: {direct:.3f} ms measured, {lut:.3f} ms LUT sum '
            f'(LUT/measured {lut / direct:.2f}); target {target:.3f} ms, stop at '
            f'{target * (1 - cfg.margin):.3f} ms'
        )
        finetune(model, data, cfg.pretrain_iters, cfg.lr, cfg.batch_size, cfg.seed)
        acc = evaluate(model, data)
        self.log(f'start accuracy after {cfg.pretrain_iters} steps: {acc:.1f}%')
        row = dict(
            iteration=0, knob=None, width=None, acc=acc, direct_ms=direct, lut_ms=lut,
            scale=direct / lut, delta_ms=0.0, proposals=[],
        )  # fmt: skip
        state = dict(
            settings=cfg.settings(),
            start_arch=arch,
            arch=arch,
            target_ms=target,
            stop_ms=target * (1 - cfg.margin),
            start=dict(direct_ms=direct, lut_ms=lut, acc=acc),
            trajectory=[row],
            status='running',
        )
        self._save(state, model)
        return state, model

    def step(self, state: dict, model: nn.Module, data: Sequence[torch.Tensor]) -> nn.Module:
        """One NetAdapt iteration: propose, fine-tune, select, measure. Updates ``state``."""
        from tqdm import tqdm

        cfg = self.cfg
        cur = state['trajectory'][-1]
        it = cur['iteration'] + 1
        start_ms = state['start']['direct_ms']
        gap = _measured(cur) - state['stop_ms']
        delta_ms = min(cfg.delta * cfg.delta_decay ** (it - 1) * start_ms, gap)
        scale = _measured(cur) / cur['lut_ms']  # LUT sum -> measured latency
        props = propose(
            self.knobs, state['arch'], self.lut, cfg.shape, cur['lut_ms'], delta_ms, scale
        )
        for _ in range(3):  # no single knob saves delta: try smaller steps
            if props:
                break
            delta_ms /= 2
            self.log(f'iteration {it}: no knob saves {2 * delta_ms:.3f} ms, trying half')
            props = propose(
                self.knobs, state['arch'], self.lut, cfg.shape, cur['lut_ms'], delta_ms, scale
            )
        if not props:
            miss = 100 * (_measured(cur) / state['target_ms'] - 1)
            state['status'] = (
                f'stopped: no knob saves {delta_ms:.3f} ms any more; target missed by '
                f'{miss:.1f}%'
            )
            self.log(f'iteration {it}: no proposal saves {delta_ms:.3f} ms; {state["status"]}')
            return model
        bar = tqdm(props, desc=f'iter {it}', unit='proposal', disable=not cfg.progress)
        models = []
        for p in bar:
            new = build(self.knobs, p['arch'])
            transfer_weights(model, new)
            seed = cfg.seed + 1000 * it  # same batches for every proposal
            finetune(new, data, cfg.finetune_iters, cfg.lr, cfg.batch_size, seed)
            p['acc'] = evaluate(new, data)
            models.append(new)
            bar.set_postfix(knob=p['knob'].name, acc=f'{p["acc"]:.1f}')
        best = select_proposal(props, cur['acc'], cur['lut_ms'])
        p, model = props[best], models[best]
        direct, lut = self.measure(model)
        row = dict(
            iteration=it,
            knob=p['knob'].name,
            width=[p['knob'].width, p['width']],
            acc=p['acc'],
            direct_ms=direct,
            lut_ms=lut,
            scale=direct / lut,
            delta_ms=delta_ms,
            proposals=[
                dict(knob=q['knob'].name, width=q['width'], lut_ms=q['lut_ms'], acc=q['acc'])
                for q in props
            ],
        )
        state['trajectory'].append(row)
        state['arch'] = p['arch']
        self.log(
            f'iteration {it}: {p["knob"].name} {p["knob"].width}->{p["width"]} '
            f'(of {len(props)} proposals, delta {delta_ms:.3f} ms): acc {p["acc"]:.1f}%, '
            f'{direct:.3f} ms measured, {lut:.3f} ms LUT, LUT entries {len(self.lut)}'
        )
        return model

    def run(self) -> dict[str, Any]:
        """Run (or continue) to the target; returns ``result.json``'s content."""
        cfg = self.cfg
        data = load_split(cfg)
        with num_threads(cfg.threads):
            loaded = self._load()
            if loaded is None:
                state, model = self._start(data)
            else:
                state, model = loaded
                self.log(
                    f'resuming {self.out} at iteration {state["trajectory"][-1]["iteration"]}'
                    f' ({state["status"]})'
                )
                if state['status'].startswith('paused'):
                    state['status'] = 'running'
            while state['status'] in ('running', 'finishing'):
                cur = state['trajectory'][-1]
                if state['status'] == 'finishing' or _measured(cur) <= state['stop_ms']:
                    state['status'] = 'finishing'
                    self._finish(state, model, data)
                    self._save(state, model)
                    continue  # 'done', or back to 'running' when the final check missed
                if cur['iteration'] >= cfg.max_iters:
                    self._give_up(state)
                    self._save(state, model)
                    break
                model = self.step(state, model, data)
                self._save(state, model)
        return self._result(state)

    def _give_up(self, state: dict) -> None:
        """``max_iters`` reached before the target: paused, resumable (run again with a
        larger ``max_iters``)."""
        cur = state['trajectory'][-1]
        miss = 100 * (_measured(cur) / state['target_ms'] - 1)
        state['status'] = (
            f'paused: max_iters={self.cfg.max_iters} reached, target missed by {miss:.1f}%'
        )
        self.log(
            f'{state["status"]} ({_measured(cur):.3f} ms vs {state["target_ms"]:.3f} ms); '
            'run again with a larger --max-iters to continue'
        )

    def _finish(self, state: dict, model: nn.Module, data: Sequence[torch.Tensor]) -> None:
        cfg = self.cfg
        if cfg.final_iters > 0:
            finetune(model, data, cfg.final_iters, cfg.lr, cfg.batch_size, cfg.seed + 999_999)
        final_acc = evaluate(model, data)
        direct, lut = self.measure(model, repeats=2 * cfg.repeats)
        meets = direct <= state['target_ms']
        state['final'] = dict(
            direct_ms=direct,
            lut_ms=lut,
            acc=final_acc,
            final_iters=cfg.final_iters,
            meets_target=meets,
        )
        cur = state['trajectory'][-1]
        if meets:
            state['status'] = 'done'
            self.log(
                f'done: {direct:.3f} ms measured ({2 * cfg.repeats} repeats) meets the target '
                f'{state["target_ms"]:.3f} ms; accuracy {final_acc:.1f}%'
            )
            return
        # the stop test passed, its re-measurement did not: that measurement judges now
        cur['recheck_ms'] = direct
        miss = 100 * (direct / state['target_ms'] - 1)
        del state['final']
        state['status'] = 'running'
        self.log(
            f'final check: {direct:.3f} ms measured ({2 * cfg.repeats} repeats) misses the '
            f'target {state["target_ms"]:.3f} ms by {miss:.1f}%: adapting further'
        )

    # ---------------------------------------------------------------- outputs
    def _result(self, state: dict) -> dict[str, Any]:
        last = state['trajectory'][-1]
        final = state.get('final') or dict(
            direct_ms=last['direct_ms'], lut_ms=last['lut_ms'], acc=last['acc']
        )
        start = state['start']
        return dict(
            family=self.knobs.family,
            status=state['status'],
            iterations=last['iteration'],
            target_ms=state['target_ms'],
            stop_ms=state['stop_ms'],
            start=start,
            final=final,
            latency_reduction=1 - final['direct_ms'] / start['direct_ms'],
            lut_vs_measured=dict(
                start=start['lut_ms'] / start['direct_ms'],
                final=final['lut_ms'] / final['direct_ms'],
            ),
            start_arch=state['start_arch'],
            arch=state['arch'],
            settings=state['settings'],
            machine=dict(torch=torch.__version__, cpu_count=os.cpu_count()),
            written=time.strftime('%Y-%m-%d %H:%M:%S'),
        )

    def _write_outputs(self, state: dict) -> None:
        cfg, res = self.cfg, self._result(state)
        _write_json(self.out / 'result.json', res)
        _write_json(self.out / 'trajectory.json', state['trajectory'])
        name = cfg.arch if isinstance(cfg.arch, str) else 'custom arch'
        settings = (
            f'{cfg.backbone} {name} x{cfg.widen_factor}, {cfg.shape[0]}x{cfg.shape[1]}'
            f' batch 1, {cfg.threads} thread(s), {cfg.stat} of {cfg.repeats}, seed {cfg.seed}'
        )
        comment = (
            f'{settings}: {res["final"]["direct_ms"]:.3f} ms measured (start '
            f'{res["start"]["direct_ms"]:.3f} ms, target {res["target_ms"]:.3f} ms)'
        )
        (self.out / 'adapted_arch.py').write_text(arch_snippet(self.knobs, state['arch'], comment))
        plot_trajectory(
            state['trajectory'],
            self.out / 'trajectory.png',
            state['target_ms'],
            title=f'NetAdapt: {settings}',
            stat=cfg.stat,
        )

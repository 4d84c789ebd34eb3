"""tools/benchmark.py and mmbackbones.benchmark: the report a user gets, the statistics
behind it, and clear errors. Timing goals are not asserted (machine-dependent); what is
checked is that the numbers are there, well-formed and computed the documented way."""

from __future__ import annotations

import csv
import importlib.util
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from conftest import REPO, run_tool
from helpers import read_plot

from mmbackbones import benchmark as bm
from mmbackbones.benchmark import memory, timing
from mmbackbones.netadapt.latency import LatencyLUT, compare_latency, measure_latency

TOOL = osp.join(REPO, 'tools', 'benchmark.py')
NUMERIC = ('params_m', 'median_ms', 'p25_ms', 'p75_ms', 'min_ms', 'throughput_img_s')


def _read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def _positive(row: dict[str, str], keys) -> None:
    for k in keys:
        v = float(row[k])
        assert math.isfinite(v) and v > 0, (k, row)


# ----------------------------------------------------------------------------- the tool
def _has_openvino() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ('openvino', 'nncf'))


def _tool_main():
    spec = importlib.util.spec_from_file_location('benchmark_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_main(*args: str) -> None:
    """The tool's ``main`` in this process (no interpreter start-up), threads restored."""
    threads = torch.get_num_threads()
    try:
        _tool_main()(list(args))
    finally:
        torch.set_num_threads(threads)


def test_backbone_compare_fast_writes_md_and_csv(tmp_path, capsys) -> None:
    """MobileNetV3-Small against torchvision, two modes: md + csv with every column."""
    out = tmp_path / 'bench'
    run_main(
        '--backbone',
        'MobileNetV3',
        '--arch',
        'small',
        '--compare',
        '--peers',
        'torchvision',
        '--fast',
        '--mode',
        'infer',
        'train',
        '--batch',
        '2',
        '--out',
        str(out),
    )
    stdout = capsys.readouterr().out
    rows = _read_csv(str(out / 'benchmark.csv'))
    assert list(rows[0]) == list(bm.CSV_COLUMNS)
    assert {(r['impl'], r['mode']) for r in rows} == {
        ('mmbackbones', 'infer'),
        ('torchvision mobilenet_v3_small', 'infer'),
        ('mmbackbones', 'train'),
        ('torchvision mobilenet_v3_small', 'train'),
    }
    for r in rows:
        assert (r['height'], r['width'], r['batch'], r['rounds']) == ('64', '64', '2', '3')
        _positive(r, NUMERIC + ('gflops', 'peak_mem_mb'))
        # the same architecture: same parameter count and FLOPs (torchvision's is the
        # reference: 2,542,856 parameters)
        assert r['params_m'] == f'{2.542856:.4f}'
    peer = [r for r in rows if r['impl'] != 'mmbackbones']
    ours = [r for r in rows if r['impl'] == 'mmbackbones']
    for r in peer:
        _positive(r, ['ratio_ours_over_peer'])
    for r in ours:
        _positive(r, ['ratio_ours_over_fastest_peer'])
        assert r['fastest_peer'] == 'torchvision mobilenet_v3_small'
    md = (out / 'benchmark.md').read_text()
    for needle in ('torch', 'machine', 'input', 'rounds', 'mode train, batch 2, 1 thread'):
        assert needle in md
    assert md.count('| MobileNetV3-S |') == 4
    assert md in stdout  # the printed table is the written one


def test_config_fast_infer_and_train(tmp_path) -> None:
    """A whole SSDLite detector: a predict step and a training step, timed."""
    out = tmp_path / 'cfg'
    config = osp.join(REPO, 'configs', 'mobilenetv3-small_ssdlite.py')
    run_main(config, '--fast', '--mode', 'infer', 'train', '--batch', '2', '--out', str(out))
    rows = _read_csv(str(out / 'benchmark.csv'))
    assert [(r['arch'], r['form'], r['mode']) for r in rows] == [
        ('mobilenetv3-small_ssdlite', 'detector', 'infer'),
        ('mobilenetv3-small_ssdlite', 'detector', 'train'),
    ]
    for r in rows:
        _positive(r, NUMERIC + ('peak_mem_mb',))


def test_segmentor_config_keeps_its_train_cfg() -> None:
    """mmseg's ``init_model`` builds for inference with ``train_cfg=None``; the benchmark's
    segmentor has the config's ``train_cfg`` back, and its training step runs."""
    from mmengine.config import Config

    path = osp.join(REPO, 'configs', 'mobilenetv3-small_lraspp_cityscapes.py')
    cand = bm.config_candidate(path)
    assert (cand.arch, cand.form, cand.kind) == (
        'mobilenetv3-small_lraspp_cityscapes',
        'segmentor',
        'mmseg',
    )
    model = cand.build()
    expected = Config.fromfile(path).model.train_cfg
    assert model.train_cfg is not None and model.train_cfg == expected
    step = bm.make_step(model, 'mmseg', 'train', 2, (64, 64))
    step()
    assert model.training and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    'args, message',
    [
        (['--backbone', 'MobileNetV4'], "unknown backbone family 'MobileNetV4'"),
        (['--backbone', 'AnyNet', '--compare'], 'AnyNet has no architecture with peers'),
        (['--backbone', 'ReXNet', '--arch', '1.0', '--peers', 'keras'], "unknown peer 'keras'"),
        (['--backbone', 'ReXNet', '--arch', '7.0'], "unknown arch '7.0'"),
        (['--backbone', 'ReXNet', '--arch', '0.9', '--compare'], "no peers for ReXNet '0.9'"),
        (['--backbone', 'ReXNet', '--mode', 'train'], 'needs --batch >= 2'),
        (['configs/nope.py'], "config file 'configs/nope.py' does not exist"),
        ([], 'nothing to run'),
        (['--backbone', 'ReXNet', '--device', 'tpu'], "--device must be 'cpu' or 'cuda"),
        (
            ['--backbone', 'ReXNet', '--mode', 'train', '--batch', '2', '--compile', 'ours'],
            '--compile applies to --mode infer/deploy',
        ),
        (['--backbone', 'ReXNet', '--precision', 'int8'], '--precision applies to --runtime'),
        (
            ['--backbone', 'ReXNet', '--mode', 'train', '--batch', '2', '--runtime', 'openvino'],
            '--runtime applies to --mode infer/deploy',
        ),
        (
            ['--backbone', 'ReXNet', '--runtime', 'onnxruntime', '--calibration', '0'],
            '--calibration must be >= 1',
        ),
        (['--backbone', 'ReXNet', '--runtime', 'tensorrt'], "invalid choice: 'tensorrt'"),
    ],
)
def test_bad_input_clear_error(capsys, args: list[str], message: str) -> None:
    """In-process (fast): exit status 2 and a message naming what is valid."""
    with pytest.raises(SystemExit) as exc:
        _tool_main()([*args, '--fast'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if 'backbone family' in message:  # the registry's families, listed
        for name in ('EfficientNet', 'MobileNetV3', 'ReXNet', 'RegNet', 'ResNeXt'):
            assert repr(name) in err
    if 'with peers' in message:
        assert "['EfficientNet', 'MobileNetV3', 'ReXNet', 'RegNet', 'ResNeXt']" in err
    if 'keras' in message:
        assert "'timm', 'torchvision', 'mmdet', 'mmseg'" in err
    if 'no peers' in message:
        assert "'ReXNet 1.0'" in err  # the architectures that have peers


def test_bad_input_from_the_command_line(tmp_path) -> None:
    """As a user sees it: one usage line and the message, exit status 2, no traceback."""
    res = run_tool([TOOL, '--backbone', 'ReXNet', '--arch', '7.0'], cwd=str(tmp_path), timeout=120)
    assert res.returncode == 2
    assert "unknown arch '7.0'; valid presets are ['0.9', '1.0'" in res.stderr
    assert 'Traceback' not in res.stderr


@pytest.mark.parametrize(
    'runtimes',
    [
        ['onnxruntime'],
        pytest.param(
            ['onnxruntime', 'openvino'],
            marks=[
                pytest.mark.slow,  # NNCF calibration and OpenVINO compilation: ~30 s
                pytest.mark.skipif(not _has_openvino(), reason='openvino/nncf not installed'),
            ],
        ),
    ],
)
def test_runtime_candidates_side_by_side(tmp_path, capsys, runtimes: list[str]) -> None:
    """``--runtime ... --precision fp32 int8``: ours and the peer also exported and run in
    each runtime and precision, in the same interleaved session as the PyTorch rows; the
    report adds the fastest path per precision and the INT8 speed-ups. (Which is faster
    is not asserted: that is machine-dependent.)"""
    pytest.importorskip('onnxruntime')
    out = tmp_path / 'rt'
    run_main(
        '--backbone', 'MobileNetV3', '--arch', 'small', '--compare', '--peers', 'torchvision',
        '--mode', 'deploy', '--runtime', *runtimes, '--precision', 'fp32', 'int8', '--fast',
        '--calibration', '2', '--no-memory', '--out', str(out),
    )  # fmt: skip
    stdout = capsys.readouterr().out
    rows = _read_csv(str(out / 'benchmark.csv'))
    engines = ['', *(f'{r} {p}' for r in runtimes for p in ('fp32', 'int8'))]
    peer = 'torchvision mobilenet_v3_small'
    assert sorted((r['impl'], r['engine']) for r in rows) == sorted(
        (impl, e) for impl in ('mmbackbones', peer) for e in engines
    )
    for r in rows:
        _positive(r, NUMERIC)
        assert r['rounds'] == '3' and r['params_m'] == f'{2.542856:.4f}'  # the same network
        assert r['peak_mem_mb'] == ''  # --no-memory
        # each engine's rows are compared among themselves: ours vs the peer run alike
        key = (
            'ratio_ours_over_fastest_peer'
            if r['impl'] == 'mmbackbones'
            else 'ratio_ours_over_peer'
        )
        _positive(r, [key])
    assert {r['note'] for r in rows if r['impl'] == 'mmbackbones' and not r['engine']} == {'fused'}
    md = (out / 'benchmark.md').read_text()
    assert md in stdout
    best = md.split('## Fastest path')[1].split('## INT8')[0]
    assert best.count('| MobileNetV3-S | classifier |') == 2  # fp32 and int8
    assert '| fp32 |' in best and '| int8 |' in best
    speedups = md.split('## INT8 speed-up')[1]
    assert speedups.count('| MobileNetV3-S |') == 2 * len(runtimes)


def test_best_paths_and_int8_speedups_hand_computed() -> None:
    """Fastest path per precision (ours vs the fastest peer over every path, per-round
    ratios) and FP32 / INT8 per model and runtime, on hand-made rows."""
    common = dict(
        arch='A', form='classifier', mode='deploy', batch=1, threads=2, height=8, width=8
    )

    def row(impl: str, times: list[float], engine: str = '', note: str = '') -> bm.Row:
        return bm.Row(impl=impl, times=times, engine=engine, note=note, **common)

    rows = [
        row('mmbackbones', [4.0, 8.0, 4.0], note='fused'),
        row('mmbackbones', [2.0, 4.0, 2.0], 'onnxruntime fp32'),
        row('mmbackbones', [1.0, 2.0, 1.0], 'onnxruntime int8'),
        row('timm a', [3.0, 3.0, 3.0]),
        row('timm a', [1.0, 2.0, 4.0], 'openvino fp32'),
        row('timm a', [2.0, 2.0, 2.0], 'openvino int8'),
        row('timm a', [0.5, 0.5, 0.5], 'openvino bf16'),
    ]
    best = {b.precision: b for b in bm.best_paths(rows)}
    assert set(best) == {'fp32', 'int8'}  # bf16: no row of ours to compare
    assert (best['fp32'].ours.path, best['fp32'].peer.path) == (
        'onnxruntime fp32',
        'openvino fp32',
    )
    assert best['fp32'].ratio == pytest.approx(2.0)  # rounds: 2/1, 4/2, 2/4
    assert best['int8'].ratio == pytest.approx(0.5)
    assert rows[0].path == 'PyTorch fused' and rows[3].path == 'PyTorch'
    speed = {(f.impl, i.engine): ratio for f, i, ratio in bm.int8_speedups(rows)}
    # ours in ORT: 2/1 every round; timm in OpenVINO: rounds 0.5, 1, 2
    assert speed == {('mmbackbones', 'onnxruntime int8'): 2.0, ('timm a', 'openvino int8'): 1.0}


def test_runtime_candidates_need_inference_on_the_cpu() -> None:
    cands = bm.with_engines(
        bm.candidates_for('MobileNetV3', 'small', peers=[]),
        bm.engine_specs(['onnxruntime'], ['fp32']),
    )
    with pytest.raises(bm.BenchmarkError, match='use mode infer or deploy on device cpu'):
        bm.run_session(cands, 'train', 2, (32, 32), 1, repeats=1, warmup=0)
    with pytest.raises(bm.BenchmarkError, match=r"unknown precision 'fp8'; valid are"):
        bm.engine_specs(['onnxruntime'], ['fp8'])
    with pytest.raises(bm.BenchmarkError, match=r"unknown runtime 'tvm'; valid are"):
        bm.engine_specs(['tvm'], ['fp32'])


# -------------------------------------------------------------------------- the library
def test_round_robin_interleaves_in_varying_order() -> None:
    """Every round runs each candidate once, in a reproducible order that varies (so no
    candidate always follows the same neighbour); warm-up rounds come first."""
    calls: list[str] = []
    steps = {n: (lambda n=n: calls.append(n)) for n in 'abc'}
    times = bm.time_round_robin(steps, repeats=6, warmup=1)
    assert calls[:3] == list('abc')
    rounds = [calls[i : i + 3] for i in range(3, len(calls), 3)]
    assert len(rounds) == 6 and all(sorted(r) == list('abc') for r in rounds)
    predecessors = {(r[i - 1], r[i]) for r in rounds for i in (1, 2)}
    # some candidate has more than one predecessor (a rotation would give each one only)
    assert any(len({a for a, b in predecessors if b == x}) > 1 for x in 'abc')
    assert all(len(v) == 6 and all(t >= 0 for t in v) for v in times.values())
    calls.clear()
    bm.time_round_robin(steps, repeats=6, warmup=1)
    assert [calls[i : i + 3] for i in range(3, len(calls), 3)] == rounds  # seeded


def test_ratio_is_median_of_per_round_ratios() -> None:
    # a noisy round (both 10x slower) does not move the answer: the per-round ratios are
    # 0.5, 0.5, 0.75 -> 0.5, while the ratio of the medians would be 3 / 4
    ours, peer = [1.0, 20.0, 3.0], [2.0, 40.0, 4.0]
    assert bm.round_ratio(ours, peer) == pytest.approx(0.5)
    assert sorted(ours)[1] / sorted(peer)[1] == pytest.approx(0.75)


def test_rows_statistics_and_ratios() -> None:
    """Hand-computed quantiles, throughput and the ratio against the fastest peer."""
    common = dict(arch='X', form='classifier', mode='infer', batch=4, threads=1, height=8, width=8)
    ours = bm.Row(impl='mmbackbones', times=[0.010, 0.012, 0.011, 0.030], **common)
    slow = bm.Row(impl='timm x', times=[0.020, 0.024, 0.022, 0.060], **common)
    fast = bm.Row(impl='torchvision x', times=[0.005, 0.006, 0.0055, 0.015], **common)
    other = bm.Row(impl='mmdet X', times=[1.0] * 4, **{**common, 'form': 'backbone'})
    bm.attach_ratios([ours, slow, fast, other])
    assert ours.median_ms == pytest.approx(11.5)
    assert ours.p25_ms == pytest.approx(10.75)  # numpy's linear interpolation
    assert ours.p75_ms == pytest.approx(16.5)
    assert ours.min_ms == pytest.approx(10.0)
    assert ours.throughput == pytest.approx(4 / 0.0115)
    assert slow.ratio == pytest.approx(0.5) and fast.ratio == pytest.approx(2.0)
    assert ours.fastest_peer == 'torchvision x' and ours.ratio_fastest == pytest.approx(2.0)
    assert other.ratio is None  # no ours in the backbone form: nothing to compare


def test_peak_memory_counts_what_a_step_allocates() -> None:
    """CPU accounting: a 1 MiB activation saved for backward plus its gradient-sized
    temporaries; a step that allocates nothing new has no peak."""
    w = torch.ones(256, 1024, requires_grad=True)  # 1 MiB, exists before the step

    def step() -> None:
        y = (w * 2).relu()  # two 1 MiB tensors (mul output, relu output)
        y.sum().backward()  # + grad of w (1 MiB) and the expanded grad_output
        w.grad = None

    mib = 2**20
    peak = bm.peak_memory(step)
    assert 3 * mib <= peak <= 5 * mib
    x = torch.ones(1024)
    assert bm.peak_memory(lambda: x.add_(1)) == 0  # in place: nothing new


@pytest.fixture
def fresh_probe():
    """The probe's cached answer forgotten before and after the test."""
    memory.cpu_tracking_problem.cache_clear()
    yield
    memory.cpu_tracking_problem.cache_clear()


def test_dispatch_probe_fails_on_a_miscount_or_an_error(monkeypatch, fresh_probe) -> None:
    """The self-test is numerical: an accounting that sees no operator, or a private API
    that is gone, is a reason; the answer is computed once."""
    assert memory.cpu_tracking_problem() is None  # this PyTorch counts right
    memory.cpu_tracking_problem.cache_clear()
    monkeypatch.setattr(memory._LiveTensorBytes, '_seen', lambda self, t, inputs: None)
    assert 'counted (peak, live) = (0, 0), not (8192, 0)' in memory.cpu_tracking_problem()
    memory.cpu_tracking_problem.cache_clear()

    def gone(self) -> None:
        raise ImportError('no TorchDispatchMode')

    monkeypatch.setattr(memory._LiveTensorBytes, '__init__', gone)
    assert 'raised ImportError: no TorchDispatchMode' in memory.cpu_tracking_problem()
    monkeypatch.undo()  # the tracker works again, but the answer is cached
    assert 'ImportError' in memory.cpu_tracking_problem()


def test_peak_memory_falls_back_when_the_probe_fails(monkeypatch, tmp_path) -> None:
    """No CPU figure and one warning line saying why; the reports leave the cell empty."""
    monkeypatch.setattr(memory, 'cpu_tracking_problem', lambda: 'the API moved')
    with pytest.warns(RuntimeWarning) as record:
        assert bm.peak_memory(lambda: torch.ones(1024) * 2) is None
    assert len(record) == 1
    message = str(record[0].message)
    assert 'peak memory on CPU is not measured' in message and 'the API moved' in message
    assert '\n' not in message
    cands = bm.candidates_for('MobileNetV3', 'small', compare=False)
    with pytest.warns(RuntimeWarning, match='the API moved'):
        rows = bm.run_session(cands, 'infer', 1, (32, 32), 1, repeats=1, warmup=0, flops=False)
    assert rows[0].peak_mem_mb is None
    line = next(ln for ln in bm.to_markdown(rows, {}).splitlines() if '| MobileNetV3-S |' in ln)
    assert line.split('|')[10].strip() == '–'  # the peak memory column
    bm.write_csv(rows, str(tmp_path / 'b.csv'))
    assert _read_csv(str(tmp_path / 'b.csv'))[0]['peak_mem_mb'] == ''


# --------------------------------------------------- one harness, one quantile (NetAdapt)
class _FakeClock:
    """A wall clock that moves only when a :class:`_Ticking` layer runs."""

    def __init__(self, durations_ms) -> None:
        self.t = 0.0
        self.durations = list(durations_ms)

    def __call__(self) -> float:
        return self.t


class _Ticking(nn.Module):
    """A layer whose forward lasts ``ms`` on the fake clock (else the clock's next
    duration, 0 once they are used up), counting its calls."""

    def __init__(self, clock: _FakeClock, ms: float | None = None) -> None:
        super().__init__()
        self.clock, self.ms, self.calls = clock, ms, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        d = self.clock.durations
        self.clock.t += (self.ms if self.ms is not None else (d.pop(0) if d else 0.0)) / 1e3
        return x


def _fake_backbone(clock: _FakeClock, ms: float | None = None) -> nn.Module:
    backbone = nn.Module()
    backbone.layers = nn.Sequential(_Ticking(clock, ms))
    return backbone


@pytest.fixture
def fake_clock(monkeypatch):
    def make(durations_ms=()) -> _FakeClock:
        clock = _FakeClock(durations_ms)
        monkeypatch.setitem(timing._NOW, 'wall', clock)
        return clock

    return make


def test_netadapt_and_the_benchmark_report_the_same_quartiles(fake_clock) -> None:
    """Forwards of 10, 1, 3, 2, 4 ms: NetAdapt's measure_latency and a benchmark Row give
    numpy's linear quartiles 2 / 3 / 4 (statistics.quantiles' default, which NetAdapt used
    before, would give 1.5 and 7)."""
    ms = [10.0, 1.0, 3.0, 2.0, 4.0]
    r = measure_latency(_fake_backbone(fake_clock(ms)), (4, 4), threads=1, repeats=5, warmup=0)
    assert (r['min_ms'], r['p25_ms'], r['median_ms'], r['p75_ms']) == pytest.approx((1, 2, 3, 4))
    assert (r['repeats'], r['threads']) == (5, 1)
    row = bm.Row('X', 'mmbackbones', 'classifier', 'infer', 1, 1, 4, 4, [t / 1e3 for t in ms])
    assert (row.min_ms, row.p25_ms, row.median_ms, row.p75_ms) == pytest.approx((1, 2, 3, 4))


def test_lut_and_compare_latency_time_through_the_harness(fake_clock) -> None:
    clock = fake_clock([99.0, 1.0, 2.0, 3.0, 10.0])  # one warm-up forward, four timed
    total, per_layer = LatencyLUT(repeats=4, warmup=1).estimate(_fake_backbone(clock), (4, 4))
    assert per_layer == [pytest.approx(2.5)] and total == pytest.approx(2.5)
    fast, slow = _fake_backbone(clock, 1.0), _fake_backbone(clock, 3.0)
    assert compare_latency([fast, slow], (4, 4), rounds=3, repeats=2) == pytest.approx([1, 3])
    assert fast.layers[0].calls == slow.layers[0].calls == 4 + 3 * 2  # 4 warm-up rounds


def test_round_robin_bursts_record_every_call() -> None:
    """``calls=3``: each turn runs one step three times in a row, each call timed."""
    calls: list[str] = []
    steps = {n: (lambda n=n: calls.append(n)) for n in 'ab'}
    times = bm.time_round_robin(steps, repeats=4, warmup=0, calls=3)
    assert [len(v) for v in times.values()] == [12, 12]
    turns = [calls[i : i + 3] for i in range(0, len(calls), 3)]
    assert len(turns) == 8 and all(len(set(t)) == 1 for t in turns)
    assert all(sorted(t[0] for t in turns[i : i + 2]) == ['a', 'b'] for i in range(0, 8, 2))
    with pytest.raises(bm.BenchmarkError, match='calls >= 1'):
        bm.time_round_robin(steps, repeats=1, warmup=0, calls=0)


def test_quantile_rejects_bad_input() -> None:
    with pytest.raises(bm.BenchmarkError, match='quantile of no values'):
        bm.quantile([], 0.5)
    with pytest.raises(bm.BenchmarkError, match=r'q must be in \[0, 1\]'):
        bm.quantile([1.0], 1.5)


def test_make_step_train_runs_backward_and_clears_grads() -> None:
    conv = nn.Conv2d(3, 4, 3)
    step = bm.make_step(conv, 'tensor', 'train', 2, (8, 8))
    seen = []
    conv.weight.register_hook(lambda g: seen.append(g.shape))
    step()
    assert conv.training and seen == [conv.weight.shape] and conv.weight.grad is None
    bm.make_step(conv, 'tensor', 'infer', 1, (8, 8))()
    assert not conv.training


_HEAVY = ('RegNetX-3.2GF', 'ResNeXt-50 32x4d')


@pytest.mark.parametrize(
    'comp',
    [
        pytest.param(c, id=c.label, marks=[pytest.mark.slow] if c.label in _HEAVY else [])
        for c in bm.COMPARISONS.values()
    ],
)
def test_every_comparison_builds_the_same_architecture(comp: bm.Comparison) -> None:
    """Each peer has exactly our parameter count in the form it is compared in (the
    peers' own builders are the reference); nothing is downloaded."""
    params = {}
    for c in bm.candidates_for(comp.family, comp.arch):
        params[(c.impl, c.form)] = sum(p.numel() for p in c.build().parameters())
    assert len(params) == 1 + len(comp.peers) + len({p.form for p in comp.peers} - {'classifier'})
    for (impl, form), n in params.items():
        assert n == params[('mmbackbones', form)], (comp.label, impl, form, params)


def test_deploy_mode_fuses_ours_only() -> None:
    pytest.importorskip('mmbackbones.deploy')
    cands = bm.candidates_for('MobileNetV3', 'small', peers=['torchvision'])
    rows = bm.run_session(cands, 'deploy', 1, (32, 32), 1, repeats=1, warmup=0, memory=False)
    assert [(r.impl, r.note) for r in rows] == [
        ('mmbackbones', 'fused'),
        ('torchvision mobilenet_v3_small', ''),
    ]


def test_compile_all_compiles_ours_fused_and_peers_as_is() -> None:
    """``compiled='all'``: ours fused then compiled, the peer compiled unfused; the
    compiled rows are timed (compilation in warm-up) and get no peak-memory figure."""
    cands = bm.candidates_for('MobileNetV3', 'small', peers=['torchvision'])
    rows = bm.run_session(cands, 'deploy', 1, (32, 32), 1, repeats=2, warmup=1, compiled='all')
    assert [(r.impl, r.note) for r in rows] == [
        ('mmbackbones', 'fused+compiled'),
        ('torchvision mobilenet_v3_small', 'compiled'),
    ]
    assert all(len(r.times) == 2 and min(r.times) > 0 for r in rows)
    assert all(r.peak_mem_mb is None for r in rows)
    assert rows[0].ratio_fastest is not None


def test_compile_rejects_training_and_unknown_choices() -> None:
    cands = bm.candidates_for('MobileNetV3', 'small', peers=[])
    with pytest.raises(bm.BenchmarkError, match='mode train is always eager'):
        bm.run_session(cands, 'train', 2, (32, 32), 1, repeats=1, warmup=0, compiled='ours')
    with pytest.raises(bm.BenchmarkError, match="valid choices are \\['none', 'ours', 'all'\\]"):
        bm.run_session(cands, 'infer', 1, (32, 32), 1, repeats=1, warmup=0, compiled='yes')


def test_plot_shows_the_rows(tmp_path, monkeypatch) -> None:
    """The PNG is the figure asked for (7.5 x 5 in at 110 dpi, data drawn in colour), and
    the figure plots median latency (ms) against GFLOPs on log axes: our rows one line per
    series in FLOPs order, labelled by preset, the peers as crosses; rows of a later
    session or without FLOPs are left out."""
    from matplotlib.figure import Figure

    figures = []
    savefig = Figure.savefig

    def spy(fig, *args, **kwargs):
        figures.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, 'savefig', spy)
    common = dict(form='classifier', mode='infer', batch=1, height=8, width=8)

    def row(arch, impl, ms, gflops, threads=1, family='ReXNet'):
        return bm.Row(arch, impl, times=[ms / 1e3], gflops=gflops, family=family,
                      threads=threads, **common)  # fmt: skip

    rows = [
        row('ReXNet 1.0', 'mmbackbones', 20, 0.4),
        row('ReXNet 0.9', 'mmbackbones', 10, 0.35),
        row('ReXNet lite-1.0', 'mmbackbones', 15, 0.41),
        row('ReXNet-1.0', 'timm rexnet_100', 30, 0.4, family=''),
        row('ReXNet 1.3', 'mmbackbones', 40, None),  # no FLOPs count
        row('ReXNet 1.5', 'mmbackbones', 50, 0.9, threads=2),  # another session
    ]
    path = bm.plot_latency_vs_flops(rows, str(tmp_path / 'p.png'))
    read_plot(path, figsize=(7.5, 5), dpi=110)
    (fig,) = figures
    (ax,) = fig.axes
    lines = {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()), line.get_marker())
        for line in ax.get_lines()
    }
    assert lines == {
        'ReXNet': ([0.35, 0.4], [pytest.approx(10), pytest.approx(20)], 'o'),
        'ReXNet-lite': ([0.41], [pytest.approx(15)], 'o'),
        'peers (timm / torchvision)': ([0.4], [pytest.approx(30)], 'x'),
    }
    assert sorted(t.get_text() for t in ax.texts) == ['0.9', '1.0', 'lite-1.0']
    assert (ax.get_xscale(), ax.get_yscale()) == ('log', 'log')
    assert ax.get_ylabel() == 'median latency (ms)' and 'GFLOPs' in ax.get_xlabel()
    assert 'infer, batch 1, 1 thread(s), 8x8' in ax.get_title()


@pytest.mark.slow  # exports SSDLite twice (ours, torchvision's): ~1-2 min on 2 cores
def test_whole_models_end_to_end(tmp_path, capsys) -> None:
    """``--whole ssdlite``: our SSDLite config and torchvision's ``ssdlite320`` end to end,
    in PyTorch and in ONNX Runtime, timed in one interleaved session."""
    pytest.importorskip('onnxruntime')
    out = tmp_path / 'whole'
    run_main('--whole', 'ssdlite', '--runtime', 'onnxruntime', '--fast', '--threads', '1',
             '--out', str(out))  # fmt: skip
    rows = _read_csv(str(out / 'benchmark.csv'))
    peer = 'torchvision ssdlite320_mobilenet_v3_large'
    assert sorted((r['impl'], r['engine']) for r in rows) == sorted(
        (impl, e) for impl in ('mmbackbones', peer) for e in ('', 'onnxruntime fp32')
    )
    for r in rows:
        assert r['form'] == 'detector (end to end)' and (r['height'], r['width']) == ('320', '320')
        _positive(r, ['median_ms', 'min_ms'])
        ours = r['impl'] == 'mmbackbones'
        _positive(r, ['ratio_ours_over_fastest_peer' if ours else 'ratio_ours_over_peer'])
    assert '## Fastest path' in (out / 'benchmark.md').read_text()


@pytest.mark.slow  # torchvision's SSDLite and LR-ASPP exported: ~1 min
def test_torchvision_peer_exports_equal_torchvision() -> None:
    """The peers we time in a runtime compute what torchvision's models compute. LR-ASPP:
    the same class per pixel in ONNX Runtime as in PyTorch. SSDLite with random weights
    scores many anchors exactly alike, and NMS breaks such ties by position, which
    differs between the two: the same number of detections with the same scores."""
    pytest.importorskip('onnxruntime')
    import dataclasses
    import tempfile

    from mmbackbones.benchmark import wholemodels as wm
    from mmbackbones.deploy import randomize_bn
    from mmbackbones.deploy.engines import Engine, export_onnx

    torch.manual_seed(0)
    for name in ('lraspp', 'ssdlite'):
        pair = dataclasses.replace(wm.WHOLE_MODELS[name], shape=(256, 320))
        model = wm.build_peer_model(pair)
        if name == 'lraspp':  # untrained logits are near-constant: make the map vary
            randomize_bn(model)
            with torch.no_grad():
                for conv in (
                    model.model.classifier.low_classifier,
                    model.model.classifier.high_classifier,
                ):
                    conv.weight.mul_(100)
        x = torch.from_numpy(wm._peer_input(wm._image(pair.shape), pair.form))
        with torch.no_grad():
            ref = model(x)
        path = export_onnx(model, (x,), osp.join(tempfile.mkdtemp(), f'{name}.onnx'))
        got = Engine(path)(x.numpy())
        if name == 'lraspp':
            assert got[0].shape == tuple(ref.shape) == (1, 256, 320)
            assert (got[0] == ref.numpy()).mean() >= 0.999
            assert len(set(ref.unique().tolist())) > 1  # not a constant map
        else:
            boxes, scores, _ = ref
            assert len(boxes) > 0 and got[0].shape == tuple(boxes.shape)
            assert abs(sorted(got[1]) - scores.sort().values.numpy()).max() <= 1e-5
            assert got[0].min() >= 0 and got[0][:, 2].max() <= 320 and got[0][:, 3].max() <= 256

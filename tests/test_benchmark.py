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

from mmbackbones import benchmark as bm

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


@pytest.mark.parametrize(
    'args, message',
    [
        (['--backbone', 'MobileNetV4'], "unknown backbone 'MobileNetV4'"),
        (['--backbone', 'ReXNet', '--arch', '1.0', '--peers', 'keras'], "unknown peer 'keras'"),
        (['--backbone', 'ReXNet', '--arch', '7.0'], "unknown arch '7.0'"),
        (['--backbone', 'ReXNet', '--arch', '0.9', '--compare'], "no peers for ReXNet '0.9'"),
        (['--backbone', 'ReXNet', '--mode', 'train'], 'needs --batch >= 2'),
        (['configs/nope.py'], 'config not found'),
        ([], 'nothing to run'),
        (['--backbone', 'ReXNet', '--device', 'tpu'], "--device must be 'cpu' or 'cuda"),
        (
            ['--backbone', 'ReXNet', '--mode', 'train', '--batch', '2', '--compile', 'ours'],
            '--compile applies to --mode infer/deploy',
        ),
    ],
)
def test_bad_input_clear_error(capsys, args: list[str], message: str) -> None:
    """In-process (fast): exit status 2 and a message naming what is valid."""
    with pytest.raises(SystemExit) as exc:
        _tool_main()([*args, '--fast'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if 'backbone' in message:
        assert "'ReXNet', 'MobileNetV3', 'EfficientNet', 'RegNet', 'ResNeXt'" in err
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
        for c in bm._COMPARISONS
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


def test_plot_writes_png(tmp_path) -> None:
    common = dict(form='classifier', mode='infer', batch=1, threads=1, height=8, width=8)
    rows = [
        bm.Row('ReXNet 0.9', 'mmbackbones', times=[0.01], gflops=0.3, family='ReXNet', **common),
        bm.Row('ReXNet-1.0', 'mmbackbones', times=[0.02], gflops=0.4, family='ReXNet', **common),
        bm.Row('ReXNet-1.0', 'timm rexnet_100', times=[0.02], gflops=0.4, **common),
    ]
    path = bm.plot_latency_vs_flops(rows, str(tmp_path / 'p.png'))
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

"""Design-space toolkit: statistics against hand-computed cases and scipy, the paper's
tables (ranges, space sizes), analytic vs counted complexity, and a tiny CLI sweep."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import read_plot
from scipy import stats as st

from mmbackbones.complexity import measure
from mmbackbones.design_space import (
    SPACES,
    build_classifier,
    edf,
    edf_area,
    expected_min,
    get_space,
    ks,
    ks_vs_sample_size,
    normalized_weights,
    random_search_efficiency,
    sample,
    weighted_ks,
)
from mmbackbones.design_space.data import generated_set

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ statistics


def test_edf_hand_computed():
    x, f = edf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1, 2, 2, 3]
    assert f.tolist() == [0.25, 0.75, 0.75, 1.0]
    _, f = edf([3.0, 1.0, 2.0], at=[0.5, 1.0, 2.5, 9], weights=[1, 2, 1])
    assert f.tolist() == [0.0, 0.5, 0.75, 1.0]


def test_normalized_weights_hand_computed():
    # log-bins over the shared range [1, 100] with 2 bins: [1, 10) and [10, 100].
    a = [1, 2, 3, 50]  # 3 low, 1 high
    b = [20, 30, 5, 1000]  # 1 low, 2 high, 1000 widens the range -> bins of width 1.5 decades
    wa, wb = normalized_weights([a, [1, 100]], bins=2)
    assert np.allclose(wa, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    assert np.allclose(wb, [1 / 2, 1 / 2])
    # a bin empty in one population drops out for both
    wa, wb = normalized_weights([a, b], bins=2)  # edges 1, 31.6, 1000
    assert np.allclose(wa, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    assert np.allclose(wb, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    wa, wb = normalized_weights([[1, 2], [50, 60]], bins=1)
    assert np.allclose(wa, 0.5) and np.allclose(wb, 0.5)
    with pytest.raises(ValueError, match='share no'):
        normalized_weights([[1, 2], [50, 60]], bins=2)


def test_ks_matches_scipy_and_weighted_reduces_to_it():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 80)
    ref = st.ks_2samp(a, b)
    assert ks(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    asymp = st.ks_2samp(a, b, method='asymp')
    d, p = weighted_ks(a, b)
    assert d == pytest.approx(asymp.statistic) and p == pytest.approx(asymp.pvalue)
    d, p = weighted_ks(a, b, np.full(60, 3.0), np.full(80, 0.1))  # scale-free
    assert d == pytest.approx(asymp.statistic) and p == pytest.approx(asymp.pvalue)
    # hand case: weights 3:1 on a = [0, 1] vs b = [0.5]; D = max(|0.75 - 0|, |0.75 - 1|)
    d, _ = weighted_ks([0.0, 1.0], [0.5], [3, 1])
    assert d == pytest.approx(0.75)


def test_edf_area_and_expected_min():
    assert edf_area([0.0, 10.0], 0, 10) == pytest.approx(0.5)
    assert edf_area([2.0, 4.0], 0, 10, weights=[1, 3]) == pytest.approx(1 - 3.5 / 10)
    # m = 1: the mean; m = 2 from {1, 3}: min is 1 unless both draws are 3 (1/4)
    assert expected_min([1.0, 3.0], [1, 2]).tolist() == pytest.approx([2.0, 1.5])
    rng = np.random.default_rng(0)
    e = rng.uniform(0, 1, 50)
    mc = np.mean(np.min(rng.choice(e, (20000, 5)), axis=1))
    assert expected_min(e, [5])[0] == pytest.approx(mc, abs=0.01)
    r = random_search_efficiency(e, [1, 4, 16], n_boot=50)
    assert np.all(np.diff(r['mean']) < 0) and np.all(r['lo'] <= r['hi'])


def test_complexity_confound_synthetic():
    """Error depends only on complexity; B is shifted to higher complexity. Plain KS sees a
    large difference, complexity-normalized KS does not (the paper's Fig. 5 argument)."""
    rng = np.random.default_rng(0)
    ca = np.exp(rng.uniform(np.log(1e6), np.log(1e8), 1000))
    cb = np.exp(rng.uniform(np.log(1e7), np.log(1e9), 1000))

    def err(c):
        return 20 - 2 * np.log10(c) + rng.normal(0, 0.3, len(c))

    ea, eb = err(ca), err(cb)
    d_plain, p_plain = ks(ea, eb)
    wa, wb = normalized_weights([ca, cb], bins=20)
    d_norm, p_norm = weighted_ks(ea, eb, wa, wb)
    assert d_plain > 0.4 and p_plain < 1e-10
    assert d_norm < 0.1 and p_norm > 0.01


def test_point_estimate_fallacy():
    """100 vs 1000 samples of one population: the larger set has the lower minimum most
    of the time, yet KS finds no significant difference."""
    rng = np.random.default_rng(0)
    wins = significant = 0
    trials = 200
    for _ in range(trials):
        a = rng.gamma(4.0, 2.0, 100) + 5
        b = rng.gamma(4.0, 2.0, 1000) + 5
        wins += b.min() < a.min()
        significant += ks(a, b)[1] < 0.05
    assert wins / trials > 0.85  # paper: ~90%
    assert significant / trials < 0.1  # ~5% false positives at alpha 0.05
    r = ks_vs_sample_size(rng.normal(size=1000), ns=[10, 100, 1000], n_boot=30)
    assert r['mean'][0] > r['mean'][1] > r['mean'][2]


# ------------------------------------------------------------------ spaces and sampling

PAPER = {  # REFERENCE.md "Network design spaces" ("a,b,n"), per stage, and model totals
    'vanilla': ({'depth': (1, 24, 9), 'width': (16, 256, 12)}, 1_259_712),
    'resnet': ({'depth': (1, 24, 9), 'width': (16, 256, 12)}, 1_259_712),
    'resnext_a': (
        {'depth': (1, 16, 5), 'width': (16, 256, 5), 'bot_ratio': (1, 4, 3), 'groups': (1, 4, 3)},
        11_390_625,
    ),
    'resnext_b': (
        {
            'depth': (1, 16, 5),
            'width': (64, 1024, 5),
            'bot_ratio': (1, 4, 3),
            'groups': (1, 16, 5),
        },
        52_734_375,
    ),
}


@pytest.mark.parametrize('name', list(PAPER))
def test_nds_ranges_and_sizes(name):
    ranges, size = PAPER[name]
    sp = get_space(name)
    got = sp.ranges()
    assert set(got) == set(ranges)
    for k, (a, b, n) in ranges.items():
        assert len(got[k]) == n and got[k][0] == a and got[k][-1] == b
        assert np.allclose(got[k], np.logspace(np.log10(a), np.log10(b), n), atol=0.5)
    assert sp.size == size and sp.stages == 3
    recs = sample(name, 200, seed=1)
    for r in recs:
        a = r['arch']
        assert a['stem_type'] == 'cifar' and a['stem_w'] == 16 and a['strides'] == [1, 2, 2]
        for k, v in r['design'].items():
            assert len(v) == 3 and set(v) <= set(got[k])


def test_other_spaces_ranges():
    a = get_space('AnyNetX').ranges()
    assert a['depth'] == tuple(range(1, 17)) and a['width'] == tuple(range(8, 1025, 8))
    assert a['bot_ratio'] == (1, 2, 4) and a['group_w'] == (1, 2, 4, 8, 16, 32)
    r = get_space('RegNet').ranges()
    assert max(r['depth']) < 64 and r['wm'] == (1.5, 3.0) and r['wa'][1] <= 256
    for rec in sample('regnet', 50, seed=0):
        assert 1.5 <= rec['design']['wm'] <= 3 and rec['design']['depth'] < 64
    for rec in sample('rexnet', 50, seed=0):
        ch = rec['arch']['channels']
        assert rec['family'] == 'ReXNet' and len(ch) == 16 and ch == sorted(ch)


def test_sampler_seeded_dedup_bounds_and_fast():
    a, b = sample('resnext_a', 50, seed=3), sample('resnext_a', 50, seed=3)
    assert a == b and a != sample('resnext_a', 50, seed=4)
    keys = [json.dumps(r['arch'], sort_keys=True) for r in sample('resnet', 500, seed=0)]
    assert len(set(keys)) == len(keys)
    recs = sample('resnet', 100, seed=0, flops_range=(5e7, 2e8), params_range=(None, 2e6))
    assert all(5e7 <= r['flops'] <= 2e8 and r['params'] <= 2e6 for r in recs)
    t = time.perf_counter()
    assert len(sample('resnext_b', 10_000, seed=0)) == 10_000
    assert time.perf_counter() - t < 30  # ~5 s on an unloaded core
    with pytest.raises(ValueError, match='within the bounds'):
        sample('vanilla', 5, flops_range=(None, 1.0), max_tries=100)


@pytest.mark.parametrize('name', sorted(SPACES))
def test_analytic_complexity_equals_counted(name):
    recs = sample(name, 2, seed=0, flops_range=(None, 1.5e8))
    for r in recs:
        c = measure(build_classifier(r), (32, 32))
        assert (r['params'], r['flops']) == (c.params, c.flops)


def test_generated_set_deterministic():
    x, y = generated_set(40, seed=0)
    x2, y2 = generated_set(40, seed=0)
    assert x.shape == (40, 32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(x, x2) and np.array_equal(y, y2) and set(y) == set(range(10))


# ------------------------------------------------------------------ CLI end to end


def _cli(*args, capsys=None, timeout=600):
    """In-process when ``capsys`` is given (fast), else a subprocess (``--launcher ray``)."""
    if capsys is not None:
        import importlib.util

        spec = importlib.util.spec_from_file_location('ds_cli', ROOT / 'tools/design_space.py')
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.main([str(a) for a in args])
        got = capsys.readouterr()
        return got.out + got.err
    out = subprocess.run(
        [sys.executable, str(ROOT / 'tools/design_space.py'), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


TRAIN = ('--iters', 2, '--batch-size', 8, '--n-train', 100, '--n-test', 50, '--no-progress')


def test_cli_sample_train_analyze(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for space, seed in (('vanilla', 0), ('resnet', 1)):
        _cli('sample', '--space', space, '-n', 4, '--seed', seed, '--flops', ',2e7',
             '-o', tmp_path / f'{space}.jsonl', capsys=capsys)  # fmt: skip
    log = _cli(
        'train',
        tmp_path / 'vanilla.jsonl',
        '-o',
        tmp_path / 't/vanilla.jsonl',
        *TRAIN,
        capsys=capsys,
    )
    assert 'generated set' in log
    # resnet: train 2, then resume: the 2 already trained are skipped
    lines = (tmp_path / 'resnet.jsonl').read_text().splitlines()
    (tmp_path / 'half.jsonl').write_text('\n'.join(lines[:2]) + '\n')
    _cli(
        'train', tmp_path / 'half.jsonl', '-o', tmp_path / 't/resnet.jsonl', *TRAIN, capsys=capsys
    )
    log = _cli(
        'train',
        tmp_path / 'resnet.jsonl',
        '-o',
        tmp_path / 't/resnet.jsonl',
        *TRAIN,
        capsys=capsys,
    )
    assert '2 already trained' in log and '2 to train' in log
    res = [json.loads(s) for s in (tmp_path / 't/resnet.jsonl').read_text().splitlines()]
    assert len(res) == 4 and all(0 <= r['error'] <= 100 for r in res)
    out = tmp_path / 'out'
    _cli('analyze', tmp_path / 't/vanilla.jsonl', tmp_path / 't/resnet.jsonl',
         '--normalize', 'flops', '-o', out, capsys=capsys)  # fmt: skip
    s = json.loads((out / 'summary.json').read_text())
    assert set(s) == {'populations', 'pairs'}
    assert set(s['populations']) == {'vanilla', 'resnet'}
    assert set(s['populations']['resnet']) == {'n', 'min', 'mean', 'edf_area'}
    assert set(s['pairs'][0]) == {'a', 'b', 'ks_D', 'ks_p', 'ks_D_normalized', 'ks_p_normalized'}
    for png in ('edf.png', 'edf_flops_normalized.png', 'error_vs_flops.png',
                'random_search.png', 'ks_vs_n.png'):  # fmt: skip
        read_plot(out / png, figsize=(5, 3.6), dpi=80)  # plots.py's size, data in colour
        assert png in (out / 'report.md').read_text()


@pytest.mark.slow
def test_cli_train_ray(tmp_path):
    _cli('sample', '--space', 'resnet', '-n', 3, '--flops', ',2e7', '-o', tmp_path / 's.jsonl')
    _cli('train', tmp_path / 's.jsonl', '-o', tmp_path / 'r.jsonl', '--launcher', 'ray',
         '--workers', 2, *TRAIN, timeout=600)  # fmt: skip
    res = [json.loads(s) for s in (tmp_path / 'r.jsonl').read_text().splitlines()]
    assert len(res) == 3 and all('error' in r for r in res)

"""ReXNet channel search (mmbackbones/design_space/channel_search.py, tools/channel_search.py):
budgets, ranking and groups against hand-computed cases, and a tiny end-to-end run whose
best arch builds a ReXNet and an mmdet Faster R-CNN config; a rerun resumes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_tool
from helpers import read_plot

from mmbackbones.design_space import channel_search as cs
from mmbackbones.design_space import sample

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location('cs_tool', ROOT / 'tools/channel_search.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    'text, match',
    [
        ('5e6', 'expected "lo,hi"'),
        ('a,b', 'must be numbers'),
        (',', 'at least one bound'),
        ('4e6,1e6', 'lower bound 4e\\+06 is above upper bound 1e\\+06'),
        ('-1,', '>= 0'),
    ],
)
def test_bad_budget_is_a_clear_error(text, match):
    with pytest.raises(ValueError, match=match):
        cs.parse_budget(text, '--flops')


def test_budget_filter_rejects_over_budget_samples():
    cap = 9.2e6
    free = sample('rexnet', 40, seed=0)
    assert sum(r['flops'] > cap for r in free) > 20  # the cap binds for most of the space
    recs = cs.sample_configs(10, seed=0, flops=(None, cap), params=(1e6, 4e6))
    assert len(recs) == 10 and all(r['flops'] <= cap and 1e6 <= r['params'] <= 4e6 for r in recs)
    assert cs.within(5.0, (None, 5.0)) and not cs.within(5.1, (None, 5.0))
    with pytest.raises(ValueError, match='within the bounds'):
        cs.sample_configs(2, flops=(None, 1e3))


def test_bad_space_is_a_clear_error():
    with pytest.raises(ValueError, match='needs a ReXNet channel space'):
        cs.sample_configs(2, space='resnet')
    with pytest.raises(ValueError, match='unknown design space'):
        cs.sample_configs(2, space='nope')
    with pytest.raises(ValueError, match='>= 1'):
        cs.sample_configs(0)


def test_ranking_groups_and_fits_hand_computed():
    def rec(rid, ch, err):
        return dict(id=rid, arch=dict(channels=ch), params=1, flops=1, error=err)

    res = [rec('a', [16, 24, 40], 30.0), rec('a', [16, 24, 40], 10.0),  # mean 20
           rec('b', [16, 32, 48], 12.0), rec('b', [16, 32, 48], 14.0),  # mean 13
           rec('c', [32, 32, 32], 50.0)]  # fmt: skip
    ranked = cs.rank_configs(res)
    assert [(r['id'], r['rank'], r['mean_error'], r['std_error']) for r in ranked] == [
        ('b', 1, 13.0, 1.0),
        ('a', 2, 20.0, 10.0),
        ('c', 3, 50.0, 0.0),
    ]
    g = cs.width_groups(ranked)
    assert [[r['id'] for r in g[k]] for k in ('top', 'middle', 'bottom')] == [['b'], ['a'], ['c']]
    s = cs.group_summary(g)
    assert s['top']['fit'] == {'slope': 16.0, 'intercept': 16.0, 'r2': 1.0}
    # [16, 24, 40]: slope 12, intercept 14.667, residuals (4/3, -8/3, 4/3): R2 = 1 - 32/3/...
    y = np.array([16, 24, 40.0])
    r2 = 1 - (16 / 9 + 64 / 9 + 16 / 9) / np.sum((y - y.mean()) ** 2)
    assert s['middle']['fit']['slope'] == 12.0 and s['middle']['fit']['r2'] == round(r2, 4)
    assert s['bottom']['fit']['r2'] == 1.0  # flat: no variance to explain
    with pytest.raises(ValueError, match='no trained'):
        cs.width_groups([])


def test_bad_tool_arguments(tmp_path, capsys):
    tool = _tool()
    for args, match in (
        (['--flops', '9e6,1e6'], 'lower bound'),
        (['--params', 'lots'], 'expected "lo,hi"'),
        (['--space', 'resnet'], 'needs a ReXNet channel space'),
        (['--seeds', '0'], '--seeds must be >= 1'),
    ):
        with pytest.raises(SystemExit) as e:
            tool.main(['--out', str(tmp_path), '--quick', *args])
        assert e.value.code == 2
        assert match in capsys.readouterr().err


TINY = ['--quick', '-n', '3', '--seeds', '2', '--iters', '2', '--batch-size', '4',
        '--n-train', '40', '--n-test', '20', '--no-progress', '--seed', '1']  # fmt: skip


def test_tiny_search_end_to_end_resumes_and_emits_a_buildable_arch(tmp_path, capsys):
    out = tmp_path / 'search'
    res = run_tool(['tools/channel_search.py', '--out', str(out), *TINY], cwd=str(ROOT),
                   env={'OMP_NUM_THREADS': '1'})  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    ranked = json.loads((out / 'ranking.json').read_text())
    assert len(ranked) == 3 and [r['rank'] for r in ranked] == [1, 2, 3]
    assert all(len(r['errors']) == 2 for r in ranked)
    errs = [r['mean_error'] for r in ranked]
    assert errs == sorted(errs) and all(0 <= e <= 100 for e in errs)
    read_plot(out / 'width_curves.png', figsize=(5.6, 3.8), dpi=72)  # the tool's size, in colour
    runs = sorted((out / 'runs').glob('seed*.jsonl'))
    before = [p.read_text() for p in runs]
    assert len(runs) == 2 and all(len(t.splitlines()) == 3 for t in before)

    # rerun: nothing is retrained, the records are untouched
    _tool().main(['--out', str(out), *TINY])
    log = capsys.readouterr().out
    assert log.count('3 already trained') == 2 and log.count('0 to train') == 2
    assert [p.read_text() for p in runs] == before

    # the best arch builds a ReXNet with those channels ...
    from mmbackbones.models.backbones import ReXNet

    arch = json.loads((out / 'best_arch.json').read_text())
    assert arch['channels'] == ranked[0]['channels'] and len(arch['channels']) == 16
    m = ReXNet(arch, out_indices=(1, 2, 3, 4)).eval()
    ch = arch['channels']
    assert m.out_channels == [ch[2], ch[4], ch[10], ch[15]]  # stage ends (1,2,2,3,3,5)
    with torch.no_grad():
        feats = m(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == m.out_channels

    # ... and best_arch.py, inheriting configs/rexnet_fasterrcnn_fpn.py, builds a detector
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmbackbones.utils import check_neck_channels

    cfg = Config.fromfile(str(out / 'best_arch.py'))
    assert cfg.model.backbone.arch.channels == ch and cfg.model.backbone.init_cfg is None
    assert check_neck_channels(cfg.model) == m.out_channels
    init_default_scope('mmdet')
    from mmdet.registry import MODELS

    import mmbackbones.models  # noqa: F401

    det = MODELS.build(cfg.model)
    assert type(det).__name__ == 'FasterRCNN' and det.backbone.out_channels == m.out_channels

"""Shared fixtures: repo paths, the built-in data generated once per session."""

from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys
import time

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)


@pytest.fixture(scope='session')
def builtin_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session-wide built-in data root (``MMBACKBONES_DATA_ROOT`` for subprocesses)."""
    from mmbackbones.datasets import ensure_shapes_coco

    root = str(tmp_path_factory.mktemp('builtin'))
    ensure_shapes_coco(osp.join(root, 'shapes_coco'), verbose=False)
    return root


@pytest.fixture(scope='session')
def seg_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A built-in data root holding the Cityscapes-format set (``MMBACKBONES_DATA_ROOT``).

    Kept in pytest's cache directory between sessions (the generator's VERSION stamp
    decides when it is regenerated; test_generator_is_deterministic catches a forgotten
    bump), or in a temporary directory when the cache plugin is off.
    """
    cache = getattr(request.config, 'cache', None)
    if cache is not None:
        root = str(cache.mkdir('mmbackbones_builtin'))
    else:
        root = str(tmp_path_factory.mktemp('builtin_seg'))
    from mmbackbones.datasets import ensure_cityscapes_synth

    ensure_cityscapes_synth(osp.join(root, 'cityscapes_synth'), verbose=False)
    return root


def run_tool(
    args: list[str], cwd: str, env: dict | None = None, timeout: int = 900, **kw
) -> subprocess.CompletedProcess:
    """Run ``python tools/...`` from the repo as a user would, capturing output."""
    full_env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '2', **(env or {})}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        capture_output=True,
        text=True,
        **kw,
    )


def train_builtin(config: str, work_dir: str, data_root: str) -> str:
    """``tools/train.py CONFIG --builtin-data`` with the full built-in schedule (the slow
    learning tests); returns stdout + stderr and fails the test on a non-zero exit. The
    caller's OMP_NUM_THREADS wins (default 2): on a machine shared with other jobs one
    thread is faster than two oversubscribed ones."""
    env = dict(os.environ, PYTHONPATH=REPO, MMBACKBONES_DATA_ROOT=data_root)
    env.setdefault('OMP_NUM_THREADS', '2')
    t0 = time.time()
    res = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--builtin-data']
        + ['--work-dir', work_dir],
        cwd=osp.dirname(work_dir),
        env=env,
        capture_output=True,
        text=True,
        timeout=4 * 3600,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    print(f'{osp.basename(config)}: trained in {time.time() - t0:.0f} s')
    return out

"""Shared fixtures: repo paths, the built-in data generated once per session."""

from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys

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

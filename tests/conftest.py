"""Shared fixtures (repo paths, the built-in data generated once per session) and the
guard that turns skipped reference-parity tests into a failed session.

Parity tests import their reference implementation with ``pytest.importorskip`` (timm,
torchvision, onnxruntime), so a developer without one gets skips. ``make test`` and CI set
``MMBACKBONES_REQUIRE_REFERENCES=1``: then any test or module skipped because one of those
packages could not be imported fails the session (exit status 1) with a summary naming
the tests and the package.
"""

from __future__ import annotations

import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

# ------------------------------------------------------- reference packages required
REFERENCE_PACKAGES = ('timm', 'torchvision', 'onnxruntime')
REQUIRE_REFERENCES = 'MMBACKBONES_REQUIRE_REFERENCES'
# pytest.importorskip's reason: "could not import 'timm.models': No module named 'timm'";
# an ImportError's: "No module named 'torchvision'"
_MISSING = re.compile(r"(?:could not import|No module named) '([\w.]+)'")


def missing_reference(report: pytest.CollectReport | pytest.TestReport) -> str | None:
    """The reference package whose failed import skipped ``report`` (a test, or a module
    with a module-level ``importorskip``), or None."""
    if not report.skipped or hasattr(report, 'wasxfail'):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    for module in _MISSING.findall(reason):
        if module.split('.')[0] in REFERENCE_PACKAGES:
            return module.split('.')[0]
    return None


class ReferenceGuard:
    """Records what a missing reference package skipped; with
    ``MMBACKBONES_REQUIRE_REFERENCES=1`` it reports them and fails the session."""

    def __init__(self) -> None:
        self.skipped: list[tuple[str, str]] = []  # (node id, package)
        self.required = os.environ.get(REQUIRE_REFERENCES) == '1'

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        package = missing_reference(report)
        if package is not None:
            self.skipped.append((report.nodeid, package))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.required and self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skipped:
            return
        packages = sorted({p for _, p in self.skipped})
        if self.required:
            title, markup = f'{REQUIRE_REFERENCES}=1: reference parity not run', {'red': True}
        else:
            title, markup = 'reference parity skipped (missing packages)', {'yellow': True}
        terminalreporter.section(title, sep='=', **markup)
        for nodeid, package in self.skipped:
            terminalreporter.line(f'SKIPPED {nodeid}: {package} is not importable')
        verdict = 'FAILED' if self.required else 'note'
        terminalreporter.line(
            f'{verdict}: {len(self.skipped)} test(s)/module(s) skipped because '
            f'{", ".join(packages)} could not be imported; install the reference packages '
            f'(tools/bootstrap_env.sh)'
            + ('' if self.required else f' ({REQUIRE_REFERENCES}=1 makes this an error)'),
            **markup,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ReferenceGuard(), 'mmbackbones-reference-guard')


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


def kill_after_checkpoint(
    cmd: list[str], cwd: str, env: dict, work_dir: str, name: str, timeout: float = 900
) -> str:
    """Start a training ``cmd``, wait until ``work_dir/last_checkpoint`` names checkpoint
    ``name`` (e.g. ``iter_4.pth``), then SIGKILL it with its data-loader workers (its own
    process group). Returns the checkpoint the pointer names after the kill."""
    import signal

    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pointer = osp.join(work_dir, 'last_checkpoint')
    deadline = time.time() + timeout
    while time.time() < deadline:
        if osp.isfile(pointer) and open(pointer).read().strip().endswith(name):
            break
        assert proc.poll() is None, 'training ended before it could be killed'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return open(pointer).read().strip()

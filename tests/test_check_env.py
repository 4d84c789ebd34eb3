"""python -m mmbackbones.check_env: version report and known-bad combinations."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import REPO, run_tool

from mmbackbones import check_env
from mmbackbones.check_env import (
    check_mmcv_hosts,
    check_mmcv_ops,
    check_torch_load,
    mmengine_allowlist_active,
    parse_version,
    run_checks,
)

HEALTHY = dict(torch='2.14.1', mmcv='2.1.0', mmengine='0.10.7', mmdet='3.3.0', mmseg='1.2.2')


def test_mmcv_2_2_breaks_mmdet_and_mmseg() -> None:
    (f,) = check_mmcv_hosts('2.2.0', mmdet='3.3.0')
    assert not f.ok and 'mmcv < 2.2.0' in f.message and 'mmcv 2.1.0' in f.fix
    (f,) = check_mmcv_hosts('2.2.0', mmseg='1.2.2')
    assert not f.ok and 'tools/bootstrap_env.sh' in f.fix


def test_mmcv_2_1_accepted() -> None:
    found = check_mmcv_hosts('2.1.0', mmdet='3.3.0', mmseg='1.2.2')
    assert [f.ok for f in found] == [True, True]
    # local version suffixes and pre-releases parse; too old an mmcv is flagged too
    assert check_mmcv_hosts('2.1.0+cu121', mmdet='3.3.0')[0].ok
    assert not check_mmcv_hosts('1.7.2', mmdet='3.3.0')[0].ok
    # hosts that are absent, or of another major version, impose nothing
    assert check_mmcv_hosts('2.2.0') == []
    assert check_mmcv_hosts('2.2.0', mmdet='2.28.2') == []


def test_torch_load_allowlist() -> None:
    (f,) = check_torch_load('2.6.0', allowlist_active=False)
    assert not f.ok and 'allow_mmengine_checkpoints' in f.fix
    assert check_torch_load('2.6.0', allowlist_active=True)[0].ok
    assert check_torch_load('2.14.1+cu130', allowlist_active=True)[0].ok
    assert not check_torch_load('2.14.1+cu130', allowlist_active=False)[0].ok
    assert check_torch_load('2.5.1', allowlist_active=False)[0].ok


def test_mmcv_ops() -> None:
    (f,) = check_mmcv_ops('2.1.0', ops_ok=False)
    assert not f.ok and 'RoIAlign/NMS' in f.message
    assert check_mmcv_ops('2.1.0', ops_ok=True)[0].ok
    assert not check_mmcv_ops(None, ops_ok=False)[0].ok


def test_run_checks_combines() -> None:
    versions = dict(torch='2.6.0', mmcv='2.2.0', mmdet='3.3.0', mmseg='1.2.2')
    found = run_checks(versions, ops_ok=True, allowlist_active=False)
    assert [f.ok for f in found] == [True, False, False, False]
    found = run_checks(versions, ops_ok=True, allowlist_active=True)
    assert [f.ok for f in found] == [True, False, False, True]


def test_parse_version() -> None:
    assert parse_version('2.0.0rc4') < parse_version('2.0.0') < parse_version('2.1.0+cu118')
    assert parse_version('not-a-version') is None and parse_version(None) is None


def test_allowlist_active_after_import() -> None:
    assert mmengine_allowlist_active()


@pytest.fixture
def fake_env(monkeypatch):
    """``main()`` on a fixed, healthy version table (nothing probed)."""
    monkeypatch.setattr(check_env, 'collect_versions', lambda: dict(python='3.11.7', **HEALTHY))
    monkeypatch.setattr(check_env, 'mmcv_ops_available', lambda: True)
    monkeypatch.setattr(check_env, 'mmengine_allowlist_active', lambda: True)
    return monkeypatch


def test_main_on_a_healthy_environment(fake_env, capsys) -> None:
    assert check_env.main() == 0
    out = capsys.readouterr().out
    assert out.startswith('mmbackbones environment\n')
    assert out.endswith('no known-bad combination found\n')


def test_main_fails_on_a_known_bad_combination(fake_env, capsys) -> None:
    fake_env.setattr(check_env, 'collect_versions', lambda: dict(HEALTHY, mmcv='2.2.0'))
    assert check_env.main() == 1
    out = capsys.readouterr().out
    assert '[FAIL] mmdet 3.3.0 requires 2.0.0rc4 <= mmcv < 2.2.0' in out
    assert out.endswith('2 problem(s) found\n')  # mmdet and mmseg


def _report(tmp_path, pythonpath: str) -> tuple[int, str]:
    args = ['-m', 'mmbackbones.check_env']
    res = run_tool(args, cwd=str(tmp_path), env=dict(PYTHONPATH=pythonpath))
    return res.returncode, res.stdout + res.stderr


def test_check_env_module(tmp_path) -> None:
    """This project's environment is healthy: the full report, exit status 0."""
    rc, out = _report(tmp_path, REPO)
    for name in (
        'python',
        'torch',
        'torchvision',
        'mmcv',
        'mmengine',
        'mmdet',
        'mmseg',
        'timm',
        'onnx',
        'onnxruntime',
    ):
        assert f'  {name} ' in out, out
    assert sys.version.split()[0] in out
    assert 'CUDA available' in out and 'mmcv._ext' in out
    assert '[FAIL]' not in out and 'no known-bad combination found' in out, out
    assert rc == 0, out


def test_check_env_module_fails_on_mmcv_2_2(tmp_path) -> None:
    """mmcv 2.2.0's metadata first on the path (as a pip upgrade would leave it): the
    mmdet check fails and the exit status is 1."""
    for dist, version in (('mmcv', '2.2.0'), ('mmdet', '3.3.0')):
        info = tmp_path / 'fake' / f'{dist}-{version}.dist-info'
        info.mkdir(parents=True)
        meta = f'Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n'
        (info / 'METADATA').write_text(meta)
    rc, out = _report(tmp_path, os.pathsep.join([str(tmp_path / 'fake'), REPO]))
    assert '  mmcv         2.2.0' in out, out
    assert '[FAIL] mmdet 3.3.0 requires 2.0.0rc4 <= mmcv < 2.2.0' in out, out
    assert rc == 1, out

"""python -m mmbackbones.check_env: version report and known-bad combinations."""

from __future__ import annotations

import sys

from conftest import REPO, run_tool

from mmbackbones.check_env import (
    check_mmcv_hosts,
    check_mmcv_ops,
    check_torch_load,
    mmengine_allowlist_active,
    parse_version,
    run_checks,
)


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


def test_parse_version() -> None:
    assert parse_version('2.0.0rc4') < parse_version('2.0.0') < parse_version('2.1.0+cu118')
    assert parse_version('not-a-version') is None and parse_version(None) is None


def test_allowlist_active_after_import() -> None:
    assert mmengine_allowlist_active()


def test_check_env_module(tmp_path) -> None:
    res = run_tool(['-m', 'mmbackbones.check_env'], cwd=str(tmp_path), env=dict(PYTHONPATH=REPO))
    out = res.stdout
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
    assert res.returncode == (1 if '[FAIL]' in out else 0), out

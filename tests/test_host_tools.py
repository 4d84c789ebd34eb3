"""mmdet's and mmseg's own ``tools/train.py`` (shipped inside the pip packages, under
``.mim/tools``) run our configs: the configs need nothing of ours beyond the
``custom_imports`` they carry. The data part is pointed at the built-in sets by
:func:`mmbackbones.datasets.apply_builtin_data`, and the result dumped to a plain config
file, which is what the host tool reads."""

from __future__ import annotations

import os.path as osp
import re

import pytest
from conftest import REPO, run_tool
from mmengine.config import Config

from mmbackbones.datasets import apply_builtin_data

FEW_ITERS = {
    'train_cfg.max_iters': 2,
    'train_cfg.val_interval': 2,
    'default_hooks.checkpoint.interval': 2,
    'default_hooks.logger.interval': 1,
    'train_dataloader.batch_size': 2,
}
NO_WORKERS = {
    f'{split}_dataloader.{key}': value
    for split in ('train', 'val', 'test')
    for key, value in (('num_workers', 0), ('persistent_workers', False))
}


def host_train_py(package: str) -> str:
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(path), f'{package} ships no tools/train.py at {path}'
    return path


def run_host_train(package: str, config: str, tmp_path, metric: str) -> None:
    """Run the host's own train.py on a dumped config (two iterations and a validation,
    see :data:`FEW_ITERS`), and check it trained, validated (``metric``) and saved."""
    res = run_tool(
        [host_train_py(package), config, '--work-dir', str(tmp_path / 'wd')],
        cwd=str(tmp_path),
        env={'OMP_NUM_THREADS': '1'},
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'Iter(train) [2/2]' in out
    assert re.search(metric, out), out[-3000:]
    assert osp.isfile(tmp_path / 'wd' / 'iter_2.pth')


def _dump_builtin(config: str, data_root: str, out: str, extra: dict) -> str:
    cfg = apply_builtin_data(Config.fromfile(osp.join(REPO, 'configs', config)), data_root)
    cfg.merge_from_dict({**FEW_ITERS, **NO_WORKERS, **extra})
    cfg.dump(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    'host, config, metric',
    [
        ('mmdet', 'rexnet_maskrcnn_fpn.py', r'coco/segm_mAP: \d'),
        ('mmseg', 'mobilenetv3-large_lraspp_cityscapes.py', r'Iter\(val\).*mIoU: \d+\.\d+'),
    ],
    ids=['mmdet', 'mmseg'],
)
def test_host_train_py_runs_our_config(
    host: str, config: str, metric: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    """Two iterations and a validation on 4 images, with the host's train.py."""
    data_root = request.getfixturevalue('builtin_root' if host == 'mmdet' else 'seg_root')
    cfg = _dump_builtin(
        config,
        data_root,
        str(tmp_path / config.replace('.py', '_builtin.py')),
        {'val_dataloader.dataset.indices': 4},
    )
    run_host_train(host, cfg, tmp_path, metric)

"""Multi-process training on CPUs: torchrun (gloo) through tools/train.py."""

from __future__ import annotations

import os.path as osp
import re

import pytest
from conftest import REPO, run_tool
from mmengine.config import Config

from mmbackbones.utils.dist import cpu_distributed_config

CONFIGS = osp.join(REPO, 'configs')
TRAIN = osp.join(REPO, 'tools', 'train.py')


def test_cpu_distributed_config_rewrites_gpu_only_settings() -> None:
    """NCCL -> gloo, every SyncBN -> BN, and a DDP wrapper without device_ids."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'rexnet_ssdlite.py'))  # SyncBN everywhere
    cfg.launcher = 'pytorch'
    assert 'SyncBN' in cfg.pretty_text
    changes = cpu_distributed_config(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert "'SyncBN'" not in str(cfg.model)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.bbox_head.norm_cfg.type == 'BN'
    assert cfg.model_wrapper_cfg.type == 'mmbackbones.CPUDistributedDataParallel'
    assert len(changes) == 3


def test_cpu_distributed_config_keeps_user_choices() -> None:
    cfg = Config.fromfile(osp.join(CONFIGS, 'rexnet_fasterrcnn_fpn.py'))
    cfg.launcher = 'pytorch'
    cfg.env_cfg.dist_cfg = dict(backend='mpi')
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
    cpu_distributed_config(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'mpi'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'


def test_cpu_distributed_config_rejects_slurm_without_cuda() -> None:
    cfg = Config.fromfile(osp.join(CONFIGS, 'rexnet_fasterrcnn_fpn.py'))
    cfg.launcher = 'slurm'
    with pytest.raises(ValueError, match='only the pytorch launcher'):
        cpu_distributed_config(cfg)


def test_cpu_ddp_wrapper_is_registered_in_our_scope() -> None:
    from mmengine.registry import MODEL_WRAPPERS

    from mmbackbones.utils.dist import CPUDistributedDataParallel

    assert MODEL_WRAPPERS.get('mmbackbones.CPUDistributedDataParallel') is (
        CPUDistributedDataParallel
    )


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path, builtin_root: str) -> None:
    """``torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch`` on CPUs:
    both ranks join a gloo group, train 4 iterations with DDP, validate and save."""
    res = run_tool(
        [
            '-m',
            'torch.distributed.run',
            '--nproc_per_node',
            '2',
            '--master_port',
            '29517',
            TRAIN,
            osp.join(CONFIGS, 'rexnet_fasterrcnn_fpn.py'),
            '--launcher',
            'pytorch',
            '--builtin-data',
            '--work-dir',
            str(tmp_path / 'wd'),
            '--cfg-options',
            'train_cfg.max_iters=4',
            'train_cfg.val_interval=4',
            'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0',
            'val_dataloader.persistent_workers=False',
            'val_dataloader.dataset.indices=8',
        ],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root, 'OMP_NUM_THREADS': '1'},
        timeout=1200,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert 'no CUDA device, 2 processes' in out, out[-3000:]
    assert re.search(r'Distributed training: True', out)
    assert "type='mmbackbones.CPUDistributedDataParallel'" in out
    assert 'Iter(train) [4/4]' in out
    assert 'coco/bbox_mAP' in out
    assert osp.isfile(tmp_path / 'wd' / 'iter_4.pth')

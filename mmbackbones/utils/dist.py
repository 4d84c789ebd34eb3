"""Multi-process training without CUDA (``torchrun`` on CPUs, e.g. to try a config on a
workstation before a cluster run).

mmengine 0.10's ``pytorch`` launcher assumes GPUs in three places: the default
``dist_cfg`` backend is NCCL, ``init_dist`` calls ``torch.cuda.set_device`` and the Runner
wraps the model in DDP with ``device_ids=[LOCAL_RANK]`` (refused for CPU modules). SyncBN
needs GPUs too. :func:`prepare_cpu_distributed` fixes all four from the tools' side, and
does nothing when CUDA is available.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
from mmengine.model import MMDistributedDataParallel

from mmbackbones.registry import MODEL_WRAPPERS

TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')  # env:// rendezvous


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU modules: drops the ``device_ids`` the Runner passes.

    Args:
        module: the model to wrap.
        device_ids: ignored (DDP takes none for CPU modules).
        **kwargs: passed to :class:`mmengine.model.MMDistributedDataParallel`.

    Example:
        >>> model_wrapper_cfg = dict(type='mmbackbones.CPUDistributedDataParallel')
    """

    def __init__(self, module: torch.nn.Module, device_ids: Any = None, **kwargs: Any) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)


def _replace_type(node: Any, old: str, new: str) -> int:
    """Replace every ``type=old`` in a nested config by ``new``; return the count."""
    from .nested import walk_config

    count = 0
    for parent, key, value in walk_config(node):
        if key == 'type' and value == old and isinstance(parent, dict):
            parent[key] = new
            count += 1
    return count


def cpu_distributed_config(cfg: Any) -> list[str]:
    """Rewrite ``cfg`` (launcher set) for multi-process training without CUDA: gloo
    backend, per-process BN, the CPU DDP wrapper. Returns what it changed, for printing.

    Raises:
        ValueError: for a launcher other than ``pytorch``.
    """
    if cfg.launcher != 'pytorch':
        raise ValueError(
            f'launcher {cfg.launcher!r} without CUDA: only the pytorch launcher (torchrun) '
            'runs on CPUs here; use --launcher pytorch, or a machine with GPUs'
        )
    changes = []
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        changes.append('distributed backend nccl -> gloo')
    env_cfg['dist_cfg'] = dist_cfg
    if n := _replace_type(cfg.model, 'SyncBN', 'BN'):
        changes.append(f'SyncBN -> BN ({n} norm configs; SyncBN needs GPUs)')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='mmbackbones.CPUDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
        )
        changes.append('DDP wrapper without device_ids')
    return changes


def prepare_cpu_distributed(cfg: Any) -> None:
    """Make ``cfg.launcher`` work without CUDA (:func:`cpu_distributed_config`) and
    initialise the process group here, so that mmengine's ``init_dist`` (which calls
    ``torch.cuda.set_device``) is skipped. Does nothing when CUDA is available."""
    if torch.cuda.is_available():
        return
    changes = cpu_distributed_config(cfg)
    dist_cfg = cfg.env_cfg.dist_cfg
    unset = [k for k in TORCHRUN_ENV if k not in os.environ]
    if unset and not torch.distributed.is_initialized():
        raise ValueError(
            f'--launcher pytorch: {", ".join(unset)} not set; this launcher runs under '
            'torchrun, e.g. torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher '
            'pytorch (or tools/dist_train.sh CONFIG 2); for one process use --launcher none'
        )
    if not torch.distributed.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if 'timeout' in kwargs:  # mmengine's configs give seconds
            kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
        torch.distributed.init_process_group(backend=dist_cfg['backend'], **kwargs)
    if os.environ.get('RANK', '0') == '0':
        print(
            f'[mmbackbones] no CUDA device, {os.environ.get("WORLD_SIZE")} processes: '
            + '; '.join(changes),
            flush=True,
        )

"""A fault test: ``kill -9`` a training run after its first checkpoint, ``--resume``, and
compare with an uninterrupted run of the same seed (slow: three short trainings).

Checked: the resumed run finishes the schedule; it trains exactly the iterations after the
checkpoint, once each (its log, and the optimizer's step count); every tensor of its final
checkpoint equals the uninterrupted run's (bitwise: the data order and augmentations are
seeded and replayed, :class:`mmbackbones.loading_hooks.RandomStateHook` restores the random
state of the checkpoint, and the CPU kernels are deterministic at a fixed thread count);
``last_checkpoint`` named a complete file when the process died.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO, kill_after_checkpoint

from mmbackbones.checkpoint import check_checkpoint_file

CONFIG = osp.join(REPO, 'configs', 'rexnet_fasterrcnn_fpn.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')
MAX_ITERS = 8
# a short seeded schedule: 2 images a batch, a checkpoint every 2 iterations, the data
# loader with its 2 persistent workers (the built-in default: the augmentations run there)
SCHEDULE = [
    '--seed',
    '7',
    '--cfg-options',
    f'train_cfg.max_iters={MAX_ITERS}',
    'train_cfg.val_interval=1000',  # validate only after the last iteration
    'train_dataloader.batch_size=2',
    'val_dataloader.dataset.indices=4',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.max_keep_ckpts=10',
    'default_hooks.logger.interval=1',
]
ITER_LINE = re.compile(rf'Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\].*?\bloss: ([\d.]+)')

pytestmark = pytest.mark.slow


def _cmd(work_dir: str, *extra: str) -> list[str]:
    return [sys.executable, TRAIN, CONFIG, '--builtin-data', '--work-dir', work_dir, *extra]


def _env(builtin_root: str) -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='2', MMBACKBONES_DATA_ROOT=builtin_root
    )


def _run(cmd: list[str], cwd: str, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    return out


def _losses(log: str) -> dict[int, list[str]]:
    """Iteration -> the total losses logged for it (one entry per time it was trained)."""
    out: dict[int, list[str]] = {}
    for it, loss in ITER_LINE.findall(log):
        out.setdefault(int(it), []).append(loss)
    return out


def _weights(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_kill_and_resume_equals_uninterrupted(tmp_path, builtin_root) -> None:
    env = _env(builtin_root)
    cwd = str(tmp_path)

    # the reference: one uninterrupted run
    ref_dir = str(tmp_path / 'ref')
    ref_log = _run(_cmd(ref_dir, *SCHEDULE), cwd, env)
    ref_losses = _losses(ref_log)
    assert sorted(ref_losses) == list(range(1, MAX_ITERS + 1)), ref_log[-3000:]

    # the same run, killed with SIGKILL once its first checkpoints are written
    wd = str(tmp_path / 'wd')
    named = kill_after_checkpoint(_cmd(wd, *SCHEDULE), cwd, env, wd, 'iter_4.pth')
    check_checkpoint_file(named)  # the pointer names a complete checkpoint
    assert not osp.exists(osp.join(wd, f'iter_{MAX_ITERS}.pth'))
    resumed_at = torch.load(named, map_location='cpu', weights_only=True)['meta']['iter']
    assert 4 <= resumed_at < MAX_ITERS

    log = _run(_cmd(wd, '--resume', *SCHEDULE), cwd, env)
    assert f'resumed epoch: 0, iter: {resumed_at}' in log
    assert f'restored the random state saved at iteration {resumed_at}' in log
    losses = _losses(log)
    # exactly the iterations after the checkpoint, each once
    assert sorted(losses) == list(range(resumed_at + 1, MAX_ITERS + 1)), log[-3000:]
    assert all(len(v) == 1 for v in losses.values())
    # and as the uninterrupted run trained them
    assert {i: ref_losses[i] for i in losses} == losses
    # the resumed run's scalars (its own timestamped folder) hold the same iterations
    scalars = [json.loads(line) for line in open(_scalar_files(wd)[-1]) if '"loss"' in line]
    assert [s['iter'] for s in scalars] == list(range(resumed_at + 1, MAX_ITERS + 1))

    final = torch.load(
        osp.join(wd, f'iter_{MAX_ITERS}.pth'), map_location='cpu', weights_only=True
    )
    assert final['meta']['iter'] == MAX_ITERS
    steps = {float(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {float(MAX_ITERS)}  # 8 optimizer steps in all: none repeated or lost
    ref = _weights(osp.join(ref_dir, f'iter_{MAX_ITERS}.pth'))
    ours = final['state_dict']
    assert ours.keys() == ref.keys()
    differing = [k for k in ref if not torch.equal(ours[k], ref[k])]
    assert not differing, f'{len(differing)} tensors differ, first {differing[:3]}'


def _scalar_files(work_dir: str) -> list[str]:
    """The ``vis_data/scalars.json`` of every run (timestamped folder) in ``work_dir``."""
    out = []
    for name in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, name, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            out.append(path)
    return out

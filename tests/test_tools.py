"""tools/train.py and tools/test.py as a user runs them: missing data, a short train and
evaluation on the built-in data, resume after an interruption, bad checkpoints."""

from __future__ import annotations

import os
import os.path as osp
import re
import sys
import time

import pytest
import torch
from conftest import REPO, kill_after_checkpoint, run_tool

CONFIG = osp.join(REPO, 'configs', 'rexnet_fasterrcnn_fpn.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
# tiny schedule: a few iterations on 2 images per batch
FAST = [
    '--cfg-options',
    'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    # evaluate on the first 8 validation images only
    'val_dataloader.dataset.indices=8',
    'test_dataloader.dataset.indices=8',
]


def test_missing_coco_fails_at_once_with_layout_and_builtin_hint(tmp_path) -> None:
    t0 = time.time()
    res = run_tool([TRAIN, CONFIG], cwd=str(tmp_path), timeout=120)
    assert res.returncode == 2, res.stderr
    err = res.stderr
    assert 'COCO not found' in err
    assert 'data/coco/annotations/instances_train2017.json' in err
    assert 'train2017/*.jpg' in err and 'val2017/*.jpg' in err
    assert f'python tools/train.py {CONFIG} --builtin-data' in err
    assert 'Traceback' not in err
    assert time.time() - t0 < 60  # fails before building anything heavy


def test_missing_pretrained_weights_explained(tmp_path) -> None:
    os.makedirs(tmp_path / 'data' / 'coco' / 'annotations')
    for name in ('annotations/instances_train2017.json', 'annotations/instances_val2017.json'):
        (tmp_path / 'data' / 'coco' / name).write_text('{}')
    os.makedirs(tmp_path / 'data' / 'coco' / 'train2017')
    os.makedirs(tmp_path / 'data' / 'coco' / 'val2017')
    # the config names timm://rexnet_100.nav_in1k: an empty Hugging Face cache, offline
    hf_home = tmp_path / 'hf'
    env = {'HF_HUB_OFFLINE': '1', 'HF_HOME': str(hf_home)}
    res = run_tool([TRAIN, CONFIG], cwd=str(tmp_path), env=env, timeout=120)
    assert res.returncode == 2
    err = res.stderr
    assert 'timm://rexnet_100.nav_in1k' in err and 'HF_HUB_OFFLINE=1' in err
    assert str(hf_home / 'hub' / 'models--timm--rexnet_100.nav_in1k') in err
    assert 'tools/convert_weights.py model.safetensors --source timm' in err
    assert 'Traceback' not in err


def test_neck_channel_mismatch_names_both_lists(tmp_path, builtin_root) -> None:
    res = run_tool(
        [
            TRAIN,
            CONFIG,
            '--builtin-data',
            '--cfg-options',
            'model.neck.in_channels=[38,61,128,999]',
        ],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
        timeout=120,
    )
    assert res.returncode == 2
    assert 'in_channels [38, 61, 128, 999]' in res.stderr
    assert 'out_channels [38, 61, 128, 185]' in res.stderr


def _train(tmp_path, builtin_root, work_dir, opts, flags=()):
    return run_tool(
        [TRAIN, CONFIG, '--builtin-data', '--work-dir', work_dir, *flags, *FAST, *opts],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
    )


def test_short_train_then_evaluate(tmp_path, builtin_root) -> None:
    wd = str(tmp_path / 'wd')
    res = _train(
        tmp_path,
        builtin_root,
        wd,
        [
            'train_cfg.max_iters=4',
            'train_cfg.val_interval=4',
            'default_hooks.checkpoint.interval=4',
            'default_hooks.logger.interval=1',
        ],
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert 'Iter(train) [4/4]' in out
    assert 'coco/bbox_mAP_50' in out  # validation ran with the COCO metric
    ckpt = osp.join(wd, 'iter_4.pth')
    assert osp.isfile(ckpt)
    res = run_tool(
        [
            TEST,
            CONFIG,
            ckpt,
            '--builtin-data',
            '--work-dir',
            str(tmp_path / 't'),
            '--cfg-options',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            'test_dataloader.dataset.indices=8',
        ],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r'coco/bbox_mAP: \d\.\d+', res.stdout + res.stderr)


def test_resume_after_interruption(tmp_path, builtin_root) -> None:
    """Kill a run after its 4th-iteration checkpoint; --resume continues at iteration 5."""
    wd = str(tmp_path / 'wd')
    sched = [
        'train_cfg.max_iters=8',
        'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=5',
        'default_hooks.logger.interval=1',
    ]
    env = dict(
        os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='2', MMBACKBONES_DATA_ROOT=builtin_root
    )
    interrupted_at = kill_after_checkpoint(
        [sys.executable, TRAIN, CONFIG, '--builtin-data', '--work-dir', wd, *FAST, *sched],
        str(tmp_path),
        env,
        wd,
        'iter_4.pth',
        timeout=600,
    )
    assert not osp.exists(osp.join(wd, 'iter_8.pth'))
    state = torch.load(interrupted_at, map_location='cpu', weights_only=True)
    resumed_iter = state['meta']['iter']

    res = _train(tmp_path, builtin_root, wd, sched, flags=['--resume'])
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert f'resumed epoch: 0, iter: {resumed_iter}' in out
    first_iter = re.findall(r'Iter\(train\) \[\s*(\d+)/8\]', out)
    assert first_iter and int(first_iter[0]) == resumed_iter + 1
    final = torch.load(osp.join(wd, 'iter_8.pth'), map_location='cpu', weights_only=True)
    assert final['meta']['iter'] == 8
    # optimizer state survived the interruption: AdamW step counts continue
    steps = [s['step'] for s in final['optimizer']['state'].values()]
    assert max(float(s) for s in steps) == 8


@pytest.mark.parametrize('kind', ['missing', 'corrupt'])
def test_resume_from_bad_checkpoint_is_a_clear_error(tmp_path, builtin_root, kind) -> None:
    path = tmp_path / 'bad.pth'
    if kind == 'corrupt':
        path.write_bytes(b'PK\x03\x04 truncated')
    res = run_tool(
        [TRAIN, CONFIG, '--builtin-data', '--resume', str(path)],
        cwd=str(tmp_path),
        env={'MMBACKBONES_DATA_ROOT': builtin_root},
        timeout=300,
    )
    assert res.returncode == 2
    assert 'Traceback' not in res.stderr
    assert str(path) in res.stderr
    assert ('does not exist' if kind == 'missing' else 'not a PyTorch checkpoint') in res.stderr


def test_get_flops_backbone_matches_reference_and_paper(tmp_path) -> None:
    timm = pytest.importorskip('timm')
    res = run_tool(
        [
            osp.join(REPO, 'tools', 'get_flops.py'),
            '--backbone',
            'ReXNet',
            '--arch',
            '1.0',
            '--classifier',
            '--shape',
            '224',
            '224',
        ],
        cwd=str(tmp_path),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    params = int(re.search(r'params: ([\d,]+)', res.stdout).group(1).replace(',', ''))
    flops = int(re.search(r'FLOPs:  ([\d,]+)', res.stdout).group(1).replace(',', ''))
    ref = timm.create_model('rexnet_100', pretrained=False)
    assert params == sum(p.numel() for p in ref.parameters())
    assert abs(flops - 0.40e9) <= 0.005e9  # ReXNet paper: 0.40B multiply-adds
    bad = run_tool(
        [osp.join(REPO, 'tools', 'get_flops.py'), '--backbone', 'ReXNet', '--arch', 'x9'],
        cwd=str(tmp_path),
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown arch 'x9'" in bad.stderr

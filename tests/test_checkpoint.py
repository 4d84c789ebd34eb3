"""Safe checkpoint loading under torch >= 2.6 (mmbackbones/checkpoint.py)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

import mmbackbones  # noqa: F401  (registers the allow-list)
from mmbackbones.checkpoint import check_checkpoint_file, load_weights


def _roundtrip(obj) -> object:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf)  # torch >= 2.6: weights_only=True by default


def test_mmengine_training_state_loads_with_weights_only() -> None:
    hub = MessageHub.get_instance('mmbackbones-test')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 3)
    state = dict(
        message_hub=hub.state_dict(),
        meta=dict(iter=3, seed=np.int64(7), lr=np.float32(0.1), arr=np.arange(3)),
        state_dict={'w': torch.ones(2)},
    )
    loaded = _roundtrip(state)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.current() == pytest.approx(1 / 3)
    assert buf.min() == pytest.approx(1 / 3) and buf.max() == pytest.approx(1.0)
    assert loaded['meta']['seed'] == 7 and list(loaded['meta']['arr']) == [0, 1, 2]


class _GetattrAttack:
    """A pickle that uses ``getattr`` for something other than HistoryBuffer statistics."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


class _CodeAttack:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_other_getattr_is_refused() -> None:
    with pytest.raises(Exception, match=r'refusing getattr\(.*__init__'):
        _roundtrip({'x': _GetattrAttack()})


def test_foreign_pickle_with_code_is_refused(tmp_path) -> None:
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _CodeAttack()}, path)
    with pytest.raises(ValueError, match='refusing to load'):
        load_weights(path)


def test_plain_weights_and_safetensors_load(tmp_path) -> None:
    from safetensors.torch import save_file

    sd = {'a': torch.arange(4.0)}
    torch.save(sd, tmp_path / 'w.pth')
    save_file(sd, str(tmp_path / 'w.safetensors'))
    for name in ('w.pth', 'w.safetensors'):
        assert torch.equal(load_weights(str(tmp_path / name))['a'], sd['a'])


@pytest.mark.parametrize(
    'content,match',
    [
        (None, 'does not exist'),
        (b'not a zip', 'not a PyTorch checkpoint'),
        (b'PK\x03\x04junk', 'not a PyTorch checkpoint'),
    ],
)
def test_bad_checkpoint_files(tmp_path, content, match) -> None:
    path = tmp_path / 'c.pth'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        check_checkpoint_file(str(path))


# ------------------------------------------------------------------ atomic writes
# A child process that writes a checkpoint and dies in the middle of it: the file size
# limit (RLIMIT_FSIZE) with SIGXFSZ's default action kills it in the write system call
# once 64 KiB are on disk, as a crash or ``kill -9`` would (Python ignores SIGXFSZ, so it is
# reset first). The write goes through mmengine's own save_checkpoint, as CheckpointHook's.
_DYING_WRITER = """
import resource, signal, sys, torch
import mmbackbones
from mmengine.runner.checkpoint import save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
backend = None if sys.argv[2] == 'local' else dict(backend=sys.argv[2])
save_checkpoint({'state_dict': {'w': torch.ones(1 << 18)}}, sys.argv[1], backend_args=backend)
"""


def _die_writing(jobs: dict[str, str]) -> None:
    """Run one dying writer per ``{path: backend}``, side by side."""
    import signal
    import subprocess
    import sys

    from conftest import REPO

    procs = [
        subprocess.Popen(
            [sys.executable, '-c', _DYING_WRITER, path, backend],
            env={**os.environ, 'PYTHONPATH': REPO},
            stderr=subprocess.PIPE,
        )
        for path, backend in jobs.items()
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == -signal.SIGXFSZ, err.decode()[-2000:]


def test_a_process_dying_mid_write_leaves_the_previous_checkpoint(tmp_path) -> None:
    """Through the atomic backend the previous checkpoint survives intact; through
    mmengine's default local backend (the control) it is truncated."""
    from mmengine.runner.checkpoint import save_checkpoint

    from mmbackbones.checkpoint import ATOMIC_BACKEND

    atomic, plain = tmp_path / 'atomic', tmp_path / 'plain'
    paths = {}
    for folder, backend in ((atomic, ATOMIC_BACKEND), (plain, 'local')):
        folder.mkdir()
        path = str(folder / 'iter_2.pth')
        torch.save({'state_dict': {'w': torch.zeros(4)}}, path)
        paths[path] = backend
    before = open(atomic / 'iter_2.pth', 'rb').read()
    _die_writing(paths)

    assert open(atomic / 'iter_2.pth', 'rb').read() == before  # untouched and complete
    check_checkpoint_file(str(atomic / 'iter_2.pth'))
    left = sorted(os.listdir(atomic))
    assert left[-1] == 'iter_2.pth' and all(f.startswith('.iter_2.pth.tmp-') for f in left[:-1])
    # the next write removes what the dead writer left, and lands complete
    path = str(atomic / 'iter_2.pth')
    save_checkpoint({'w': torch.ones(3)}, path, backend_args=dict(backend=ATOMIC_BACKEND))
    assert os.listdir(atomic) == ['iter_2.pth']
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.ones(3))

    assert os.path.getsize(plain / 'iter_2.pth') == 1 << 16  # the control: truncated
    with pytest.raises(ValueError, match='corrupt|not a PyTorch checkpoint'):
        check_checkpoint_file(str(plain / 'iter_2.pth'))


def test_last_checkpoint_skips_an_incomplete_file(tmp_path) -> None:
    from mmbackbones.checkpoint import last_checkpoint

    wd = tmp_path
    assert last_checkpoint(str(wd)) is None
    good = str(wd / 'iter_2.pth')
    torch.save({'w': torch.ones(1)}, good)
    (wd / 'last_checkpoint').write_text(good)
    assert last_checkpoint(str(wd)) == good
    bad = str(wd / 'iter_4.pth')
    with open(bad, 'wb') as f:
        f.write(open(good, 'rb').read()[:100])  # a truncated checkpoint
    (wd / 'last_checkpoint').write_text(bad)
    assert last_checkpoint(str(wd)) == good
    (wd / 'last_checkpoint').write_text('')  # a pointer cut short
    assert last_checkpoint(str(wd)) == good


def _draw() -> tuple:
    import random

    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()


def _seed_all(seed: int) -> None:
    import random

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def test_random_state_hook_restores_on_resume_and_keeps_validation_neutral() -> None:
    import logging
    from types import SimpleNamespace

    from mmbackbones.loading_hooks import RandomStateHook

    hook = RandomStateHook()
    runner = SimpleNamespace(iter=4, world_size=1, logger=logging.getLogger('test'))
    _seed_all(0)
    ckpt: dict = {}
    hook.before_save_checkpoint(runner, ckpt)
    expected = _draw()  # what the uninterrupted run draws after the checkpoint
    # a resumed process: seeded afresh, the checkpoint read back with weights_only
    _seed_all(1)
    hook.after_load_checkpoint(runner, _roundtrip(ckpt))
    hook.before_train(runner)
    assert _draw() == expected
    # validation leaves the training's random stream as it was
    _seed_all(2)
    hook.before_val(runner)
    _draw()
    hook.after_val(runner)
    after_val = _draw()
    _seed_all(2)
    assert _draw() == after_val
    # load_from (iteration 0) is not a resume: the state is not restored
    _seed_all(3)
    hook.after_load_checkpoint(SimpleNamespace(iter=0), ckpt)
    hook.before_train(SimpleNamespace(iter=0, world_size=1))
    assert _draw() != expected

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

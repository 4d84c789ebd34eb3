"""Safe checkpoint loading under torch >= 2.6 (``torch.load`` defaults to ``weights_only``).

mmengine 0.10 calls ``torch.load`` without ``weights_only``. Since torch 2.6 that refuses
mmengine's own checkpoints, which pickle a ``MessageHub`` (``HistoryBuffer`` objects and
numpy scalars/arrays), so ``--resume`` breaks. Instead of turning load safety off, we
allow-list exactly those plain-data classes with ``torch.serialization.add_safe_globals``:
our own checkpoints load, and any other pickle that needs code is still refused.
Foreign weights (timm, torchvision, authors' files) go through :func:`load_weights`,
which always uses ``weights_only=True`` (or safetensors).
"""

from __future__ import annotations

import contextlib
import glob
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from typing import Any

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend


def _history_buffer_statistic(obj: Any, name: str) -> Any:
    """A restricted stand-in for the ``getattr`` global in mmengine checkpoints.

    ``HistoryBuffer.__getstate__`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'min')``. Allow-listing the builtin ``getattr`` would let a
    file fetch any attribute of anything; this resolves only ``HistoryBuffer``'s
    statistics methods and refuses everything else.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if (
        obj is HistoryBuffer
        and isinstance(name, str)
        and (
            name in HistoryBuffer._statistics_methods or name in ('min', 'max', 'current', 'mean')
        )
    ):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) in a checkpoint: only HistoryBuffer statistics '
        'methods are allowed'
    )


def mmengine_safe_globals() -> list[Any]:
    """The classes an mmengine training checkpoint pickles besides tensors."""
    from mmengine.logging.history_buffer import HistoryBuffer

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: list[Any] = [
        HistoryBuffer,
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        # HistoryBuffer pickles getattr(HistoryBuffer, "min"): a restricted stand-in
        (_history_buffer_statistic, 'builtins.getattr'),
    ]
    # numpy >= 1.25 pickles dtypes as instances of per-type classes (np.dtypes.Float64DType)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return allowed


def allow_mmengine_checkpoints() -> None:
    """Allow-list mmengine's checkpoint classes for ``weights_only`` loading (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights_only default to work around
        add(mmengine_safe_globals())


def check_checkpoint_file(path: str, what: str = 'checkpoint') -> None:
    """Raise ``ValueError`` with a clear message if ``path`` is missing or corrupt."""
    if not osp.isfile(path):
        raise ValueError(f'{what} {path!r} does not exist')
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f'{what} {path!r} is not a PyTorch checkpoint (not a zip archive; '
            'truncated or corrupt?)'
        )
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f'{what} {path!r} is corrupt: {e}') from None
    if bad is not None:
        raise ValueError(f'{what} {path!r} is corrupt: member {bad!r} fails its CRC check')


def load_weights(path: str, map_location: str = 'cpu') -> dict[str, Any]:
    """Load a foreign weight file safely: safetensors, or ``torch.load(weights_only=True)``.

    A pickle that needs arbitrary code is refused with ``ValueError``.
    """
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file

        return load_file(path, device=map_location)
    check_checkpoint_file(path, 'weight file')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError subclasses and RuntimeError
        raise ValueError(
            f'refusing to load {path!r}: it is not a plain tensor checkpoint '
            f'(weights_only loading failed: {str(e).splitlines()[0]})'
        ) from None


#: ``meta['converter']`` of the files ``tools/convert_weights.py`` writes
CONVERTER = 'mmbackbones.convert'


def converted_meta(path: str) -> dict[str, Any] | None:
    """The ``meta`` of a weight file written by our converter, or ``None`` for anything
    else (no such file, another format, another writer). Reads safely (``weights_only``,
    memory-mapped: the tensors are not read).

    Example:
        >>> converted_meta('no/such/file.pth') is None
        True
    """
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return None
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception:  # not a plain tensor checkpoint: not ours
        return None
    meta = obj.get('meta') if isinstance(obj, dict) else None
    if isinstance(meta, dict) and meta.get('converter') == CONVERTER:
        return meta
    return None


# ------------------------------------------------------------------ atomic writes
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing each file under a temporary name in the
    same directory and renaming it into place (``os.replace``, atomic on POSIX).

    A process that dies while it writes a checkpoint leaves the previous file (or none)
    under the final name, never a truncated one, and ``CheckpointHook`` writes
    ``last_checkpoint`` only after the rename, so that never names a partial file. Used by
    every ``CheckpointHook`` of ``tools/train.py`` through
    ``backend_args=dict(backend='atomic_local')`` (:func:`apply_checkpoint_policy`).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> AtomicLocalBackend().put(b'weights', osp.join(d, 'iter_1.pth'))
        >>> sorted(os.listdir(d))
        ['iter_1.pth']
    """

    def put(self, obj: bytes, filepath: str | os.PathLike) -> None:
        self._atomic_write(obj, filepath, 'wb')

    def put_text(self, obj: str, filepath: str | os.PathLike, encoding: str = 'utf-8') -> None:
        self._atomic_write(obj.encode(encoding), filepath, 'wb')

    @staticmethod
    def _atomic_write(data: bytes, filepath: str | os.PathLike, mode: str) -> None:
        path = os.fspath(filepath)
        folder, name = osp.split(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        for stale in glob.glob(osp.join(glob.escape(folder), f'.{glob.escape(name)}.tmp-*')):
            with contextlib.suppress(OSError):  # an earlier writer that died
                os.remove(stale)
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.tmp-', dir=folder)
        try:
            with os.fdopen(fd, mode) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise


#: ``backend_args`` that select :class:`AtomicLocalBackend`
ATOMIC_BACKEND = 'atomic_local'
register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def apply_checkpoint_policy(cfg: Any) -> None:
    """Make a training config's checkpoints reliable (``tools/train.py``):

    * its ``CheckpointHook`` writes through :class:`AtomicLocalBackend` (unless the config
      chose a backend of its own, e.g. for object storage);
    * ``mmbackbones.RandomStateHook`` saves the random state in each checkpoint and
      restores it on ``--resume`` (:mod:`mmbackbones.loading_hooks`).

    Example:
        >>> from mmengine.config import Config
        >>> cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook'))))
        >>> apply_checkpoint_policy(cfg)
        >>> cfg.default_hooks.checkpoint.backend_args, cfg.custom_hooks[-1].type
        ({'backend': 'atomic_local'}, 'mmbackbones.RandomStateHook')
    """
    import mmbackbones.loading_hooks  # noqa: F401  (registers the hook)

    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook and not hook.get('backend_args') and not hook.get('file_client_args'):
        hook['backend_args'] = dict(backend=ATOMIC_BACKEND)
    kind = 'mmbackbones.RandomStateHook'
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') != kind]
    cfg.custom_hooks = [*hooks, dict(type=kind)]


def last_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``work_dir/last_checkpoint`` names, if that is a complete file;
    else the newest complete ``*.pth`` in ``work_dir`` (a run that died while it rewrote
    the pointer file); ``None`` when there is none.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        with contextlib.suppress(ValueError):
            check_checkpoint_file(named)
            return named
    candidates = sorted(glob.glob(osp.join(glob.escape(work_dir), '*.pth')), key=osp.getmtime)
    for path in reversed(candidates):
        with contextlib.suppress(ValueError):
            check_checkpoint_file(path)
            return path
    return None

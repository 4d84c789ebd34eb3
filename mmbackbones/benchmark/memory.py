"""Peak memory of one step: ``torch.cuda`` statistics on CUDA, live tensor storage on CPU.

The CPU accounting sees every operator through a ``TorchDispatchMode``, a private PyTorch
API (``torch.utils._python_dispatch``): this module is the only place that imports it,
and only after :func:`cpu_tracking_problem`, a numerical self-test run once per process,
found that it counts what it should. Where it does not (the API moved, or counts
differently), :func:`peak_memory` answers ``None`` (the report prints no figure) and says
why in one warning.
"""

from __future__ import annotations

import functools
import gc
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch


def _storage_key(t: torch.Tensor) -> int:
    """The storage's address (0 for empty or opaque, e.g. mkldnn, tensors)."""
    try:
        st = t.untyped_storage()
        return st.data_ptr() if st.nbytes() else 0
    except (RuntimeError, NotImplementedError):
        return 0


class _LiveTensorBytes:
    """Peak bytes of tensor storage allocated while active (CPU memory accounting).

    Every operator output is seen through a ``TorchDispatchMode``; its storage counts as
    live until the last tensor seen on it is freed (``weakref.finalize`` on the tensor,
    which PyTorch keeps alive as long as autograd or a view still holds it).
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_leaves

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                inputs = {
                    _storage_key(t)
                    for t in tree_leaves((args, kwargs))
                    if isinstance(t, torch.Tensor)
                }
                for t in tree_leaves(out):
                    if isinstance(t, torch.Tensor):
                        tracker._seen(t, inputs)
                return out

        self.mode = _Mode()
        self.live = self.peak = 0
        self._refs: dict[int, list[int]] = {}

    def _seen(self, t: torch.Tensor, inputs: set[int]) -> None:
        key = _storage_key(t)
        if not key:
            return
        ref = self._refs.get(key)
        if ref is None and key in inputs:
            return  # in place on / a view of a tensor that existed before the step
        if ref is None:
            nbytes = t.untyped_storage().nbytes()
            self._refs[key] = [nbytes, 1]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            ref[1] += 1
        weakref.finalize(t, self._free, key)

    def _free(self, key: int) -> None:
        ref = self._refs.get(key)
        if ref is None:
            return
        ref[1] -= 1
        if ref[1] == 0:
            del self._refs[key]
            self.live -= ref[0]

    def __enter__(self) -> _LiveTensorBytes:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mode.__exit__(*exc)


def _self_test() -> tuple[int, int]:
    """``(peak, live at the end)`` of a step with known allocations: two new 4 KiB float32
    tensors live at once (8192 bytes), an in-place op and a view (nothing new), all freed."""
    base = torch.ones(1024)  # exists before: neither it nor ops in place on it count
    with _LiveTensorBytes() as tracker:
        a = base * 2  # 4096
        b = a + 1  # 4096: peak 8192
        base.add_(0)  # in place on an older tensor: 0
        v = b.view(32, 32)  # a view of b: 0
        del a, b, v  # all freed: live 0
        c = base * 3  # 4096 again: the peak stays 8192
        del c
    return tracker.peak, tracker.live


@functools.cache
def cpu_tracking_problem() -> str | None:
    """Why CPU peak memory cannot be counted here, or ``None`` when it can (cached).

    Runs :func:`_self_test` once: the ``TorchDispatchMode`` accounting must count exactly
    the bytes the test allocates (8192 at the peak, 0 left live).

    Example:
        >>> cpu_tracking_problem() is None
        True
    """
    expected = (8192, 0)
    try:
        got = _self_test()
    except Exception as e:  # the private API moved or changed: any failure means "no"
        return f'the TorchDispatchMode self-test raised {type(e).__name__}: {e}'
    if got != expected:
        return f'the TorchDispatchMode self-test counted (peak, live) = {got}, not {expected}'
    return None


def peak_memory(step: Callable[[], None], device: str = 'cpu') -> int | None:
    """Peak bytes one ``step`` allocates above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: live tensor storage tracked per
    operator (see :class:`_LiveTensorBytes`; allocator caches and library workspaces
    outside tensors are not seen); ``None``, with a warning, where that tracking fails
    its self-test (:func:`cpu_tracking_problem`).

    Example:
        >>> x = torch.ones(1024, requires_grad=True)
        >>> peak_memory(lambda: (x * 2).sum().backward()) >= 1024 * 4  # x * 2, then its grad
        True
    """
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    problem = cpu_tracking_problem()
    if problem is not None:
        warnings.warn(
            f'peak memory on CPU is not measured (reported as no figure): {problem}',
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    with _LiveTensorBytes() as tracker:
        step()
    return tracker.peak

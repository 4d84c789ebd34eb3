"""Compiled deploy form: :func:`fuse` followed by ``torch.compile`` with frozen weights.

On CPU, eager PyTorch hands oneDNN plain NCHW/NHWC weights on every call, and oneDNN
reorders them into its blocked layout each time; for a large model at batch 1 (ResNeXt-50)
that reordering is a visible share of the latency. Inductor's *freezing* treats the
parameters as constants: it folds what is left of BatchNorm, pre-packs the convolution
weights once for oneDNN and fuses the pointwise epilogues (bias, activation, residual add)
into generated C++ kernels. This module only chooses those options; the work is
PyTorch's.

Requirements: a C++ compiler (the one that built mmcv), and calls under ``torch.no_grad()``
or ``torch.inference_mode()``: freezing only applies to graphs that do not record
autograd. The first call compiles (seconds to a minute on a CPU); later calls at the same
input shape reuse the compiled graph. A new input shape compiles again.
"""

from __future__ import annotations

import os
import shutil
import sysconfig

import torch
import torch.nn as nn

from .fuse import fuse


class CompileUnavailableError(RuntimeError):
    """``torch.compile`` cannot build CPU kernels here (no C++ compiler)."""


#: C++ compilers looked for, after ``$CXX``, when inductor's private config cannot be read
#: (its default is ``$CXX`` or g++; ``c++`` is most systems' name for their default one)
PORTABLE_CXX = ('c++', 'g++', 'clang++')


def _inductor_cxx() -> tuple[str | None, ...] | None:
    """Inductor's configured ``cpp.cxx`` (a private config: this is the only place the
    package reads ``torch._inductor``), or ``None`` when that config is not there."""
    try:
        from torch._inductor import config as inductor_config

        cxx = inductor_config.cpp.cxx
    except (ImportError, AttributeError):
        return None
    return cxx if isinstance(cxx, tuple) else (cxx,)


def compiler_names() -> tuple[str, ...]:
    """The C++ compilers ``torch.compile`` would try for CPU kernels, in order: inductor's
    configured ``cpp.cxx``, or ``$CXX`` and :data:`PORTABLE_CXX` when that config cannot
    be read.

    Example:
        >>> all(isinstance(name, str) and name for name in compiler_names())
        True
    """
    names = _inductor_cxx()
    if names is None:
        names = (os.environ.get('CXX'), *PORTABLE_CXX)
    return tuple(name for name in names if name)


def cpp_compiler() -> str | None:
    """The path of the first of :func:`compiler_names` on ``PATH``, or ``None``."""
    for name in compiler_names():
        path = shutil.which(name)
        if path:
            return path
    return None


def _check_compiler() -> None:
    if cpp_compiler() is None:
        raise CompileUnavailableError(
            'mmbackbones.deploy.compile_for_inference: torch.compile needs a C++ compiler '
            f'to build CPU kernels, and none of {", ".join(compiler_names())} is on PATH. '
            'Install g++ (the compiler that builds mmcv) or use mmbackbones.deploy.fuse '
            'alone.'
        )
    if sysconfig.get_paths().get('include') is None:  # pragma: no cover - odd Pythons
        raise CompileUnavailableError('torch.compile needs the Python headers (Python.h)')


def compile_for_inference(
    model: nn.Module, fuse_first: bool = True, dynamic: bool | None = False
) -> nn.Module:
    """Fold with :func:`fuse`, then ``torch.compile`` with inductor freezing.

    Args:
        model (nn.Module): Any of our backbones, or a model containing them. It is not
            modified (``fuse`` works on a copy).
        fuse_first (bool): Apply :func:`fuse` first (our SE/partial-residual forms and
            BN folding); inductor would fold plain conv-BN pairs itself, but not ours.
            Default: True.
        dynamic (bool | None): ``torch.compile``'s ``dynamic``. ``False`` (default)
            specialises on the input shape, which is what a deployment at a fixed size
            wants; ``None`` lets PyTorch switch to a dynamic-shape graph after a second
            shape.

    Returns:
        nn.Module: ``torch.compile``'s ``OptimizedModule`` around the fused model (an
        ``nn.Module``; its ``_orig_mod`` is the fused model). Call it under
        ``torch.no_grad()``.

    Raises:
        CompileUnavailableError: None of :func:`compiler_names` is on ``PATH``.

    Example:
        >>> import torch
        >>> from mmbackbones.models import MobileNetV3
        >>> m = MobileNetV3('small', out_indices=(-1,)).eval()
        >>> c = compile_for_inference(m)
        >>> x = torch.rand(1, 3, 64, 64)
        >>> with torch.no_grad():
        ...     (c(x)[0] - m(x)[0]).abs().max().item() < 1e-4
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'compile_for_inference: expected an nn.Module, got {type(model)}')
    _check_compiler()
    if fuse_first:
        model = fuse(model)
    else:
        model.eval()  # not `model = model.eval()`: mmdet's backbones' train() returns None
    return torch.compile(
        model, dynamic=dynamic, options={'freezing': True, 'layout_optimization': False}
    )

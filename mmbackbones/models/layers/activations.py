"""Activation builder: mmcv-style ``act_cfg`` dicts mapped to PyTorch's fused built-ins.

PyTorch's ``nn.Hardswish``/``nn.Hardsigmoid``/``nn.SiLU`` are single fused kernels; mmcv's
``HSigmoid`` is an add/div/clamp chain. Types we do not map fall back to mmcv's builder.

In-place and autograd: the backward of SiLU, h-swish, h-sigmoid and ReLU6 needs their
*input*, so when autograd records an in-place call it first saves a copy of the input (a
full extra tensor copy per activation, and a slower backward). ReLU's backward needs only
its output, so in-place ReLU is free. The subclasses below therefore run in place only
when autograd does not record (inference, frozen layers) and out of place in training:
the same function, the same module types (``isinstance(m, nn.SiLU)`` holds), no state.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _in_place(module: nn.Module, x: torch.Tensor) -> bool:
    """In place only if asked for and autograd would not have to copy the input."""
    return module.inplace and not (x.requires_grad and torch.is_grad_enabled())


class SiLU(nn.SiLU):
    """``nn.SiLU`` that runs in place only when autograd does not record."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x, inplace=_in_place(self, x))


class Hardswish(nn.Hardswish):
    """``nn.Hardswish`` that runs in place only when autograd does not record."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x, inplace=_in_place(self, x))


class Hardsigmoid(nn.Hardsigmoid):
    """``nn.Hardsigmoid`` that runs in place only when autograd does not record."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardsigmoid(x, inplace=_in_place(self, x))


class ReLU6(nn.ReLU6):
    """``nn.ReLU6`` that runs in place only when autograd does not record."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(x, self.min_val, self.max_val, inplace=_in_place(self, x))


_BUILTIN = {
    'ReLU': nn.ReLU,
    'ReLU6': ReLU6,
    'SiLU': SiLU,
    'Swish': SiLU,
    'HSwish': Hardswish,
    'Hardswish': Hardswish,
    'HSigmoid': Hardsigmoid,
    'Hardsigmoid': Hardsigmoid,
    'Sigmoid': nn.Sigmoid,
    'ELU': nn.ELU,
}
_NO_INPLACE = ('Sigmoid',)


def build_act(act_cfg: dict | None) -> nn.Module:
    """Build an activation from ``act_cfg`` (``None`` gives ``nn.Identity``).

    Example:
        >>> build_act(dict(type='HSwish'))
        Hardswish()
    """
    if act_cfg is None:
        return nn.Identity()
    cfg = dict(act_cfg)
    act_type = cfg.pop('type')
    if act_type in _BUILTIN:
        if act_type in _NO_INPLACE:
            cfg.pop('inplace', None)
        return _BUILTIN[act_type](**cfg)
    from mmcv.cnn import build_activation_layer

    return build_activation_layer(dict(act_cfg))

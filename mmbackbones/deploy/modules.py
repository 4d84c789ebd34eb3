"""Inference-only forms of our blocks, built by :func:`mmbackbones.deploy.fuse`.

Only the SE needs one (its BatchNorm folded into ``fc1``, the product in place): the
residual blocks keep their own modules, whose forward already adds the shortcut in place
on a fresh output when autograd does not record.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SqueezeExciteDeploy(nn.Module):
    """``x * gate(fc2(act(fc1(mean(x)))))`` with the SE's BatchNorm folded into ``fc1``.

    Args:
        fc1 (nn.Conv2d): Squeeze conv (BN folded in).
        act (nn.Module): Activation after the squeeze.
        fc2 (nn.Conv2d): Excite conv.
        gate (nn.Module): Gate (sigmoid / hard-sigmoid).
        inplace (bool): Multiply ``x`` in place; only when the caller owns ``x`` (it is
            the fresh output of the preceding conv). Default: False.

    Example:
        >>> se = SqueezeExciteDeploy(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 8, 1),
        ...                          nn.Sigmoid())
        >>> se(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        fc1: nn.Conv2d,
        act: nn.Module,
        fc2: nn.Conv2d,
        gate: nn.Module,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.gate = fc1, act, fc2, gate
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x.mul_(s) if self.inplace else x * s

"""Inference-only forms of our blocks, built by :func:`mmbackbones.deploy.fuse`.

Each keeps the original block's child names (so a fused state dict has the original keys
minus the BatchNorms) and computes the same function in eval mode, with fewer memory
passes: residual sums and the SE product are done in place on tensors the block itself
just produced (never on its input), and there is no stochastic depth.
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


class InvertedResidualDeploy(nn.Module):
    """Deploy form of :class:`~mmbackbones.models.layers.InvertedResidual`.

    The ReXNet partial residual adds the input to the first ``in_channels`` channels of
    the projection's output in place (a narrow view of a fresh tensor: no slice or
    concatenation copies); the full residual is an in-place add.

    Args:
        block (nn.Module): The (BN-folded) ``InvertedResidual`` whose children to reuse.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.in_channels = block.in_channels
        self.out_channels = block.out_channels
        self.mid_channels = block.mid_channels
        self.shortcut = block.shortcut
        self.expand = block.expand
        self.dw = block.dw
        self.se = block.se
        self.post_se_act = block.post_se_act
        self.project = block.project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        if self.post_se_act is not None:
            out = self.post_se_act(out)
        out = self.project(out)
        if self.shortcut == 'full':
            out += x
        elif self.shortcut == 'partial':
            out[:, : self.in_channels] += x
        return out


class ResidualDeploy(nn.Module):
    """Deploy form of the AnyNet residual blocks: ``act(f(x) + proj(x))`` with the sum
    and the activation in place on ``f``'s fresh output.

    Args:
        block (nn.Module): The (BN-folded) ``ResBasicBlock`` / ``ResBottleneckBlock``.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.in_channels = block.in_channels
        self.out_channels = block.out_channels
        self.proj = block.proj
        self.f = block.f
        self.act = block.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.f(x)
        out += x if self.proj is None else self.proj(x)
        return self.act(out)

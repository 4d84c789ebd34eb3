"""Params, FLOPs (multiply-adds) and activations, counted on a forward pass.

Convention (the papers' and pycls's): FLOPs are the multiply-adds of convolutions and
linear layers, SE's 1x1 convs included; norms, activations, pooling and the SE
multiplication are not counted. Activations are the output elements of convolutions and
linear layers. Params count trainable tensors (BatchNorm running statistics excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Complexity:
    params: int
    flops: int
    acts: int

    def __str__(self) -> str:
        return (
            f'params {self.params / 1e6:.3f}M, FLOPs {self.flops / 1e9:.3f}G, '
            f'acts {self.acts / 1e6:.3f}M'
        )


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or frozen; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def measure(
    model: nn.Module, shape: tuple[int, int] = (224, 224), in_channels: int = 3
) -> Complexity:
    """Count params, FLOPs and activations of ``model`` on one random input of ``shape``."""
    flops = acts = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal flops, acts
        kh, kw = m.kernel_size
        flops += out.numel() * (m.in_channels // m.groups) * kh * kw
        acts += out.numel()

    def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal flops, acts
        flops += out.numel() * m.in_features
        acts += out.numel()

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.rand(1, in_channels, *shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Complexity(count_params(model), flops, acts)

"""Params, FLOPs (multiply-adds) and activations: the one set of complexity primitives.

Two ways to get the figures, which tests keep equal:

* **Analytic** (pycls's ``complexity`` functions, used to score thousands of sampled
  architectures per second without building them): a running :class:`Cx` that the
  primitives below (:func:`conv_cx`, :func:`norm_cx`, :func:`maxpool_cx`,
  :func:`linear_cx`, :func:`se_cx`) update, one call per layer. Every block has a static
  ``complexity`` method built from them, beside its constructor, and every family's
  ``complexity(arch, shape, num_classes)`` walks its ``layout(arch)``.
* **Counted** on a forward pass of a built model (:func:`measure`).

Convention (the papers' and pycls's): FLOPs are the multiply-adds of convolutions and
linear layers, SE's 1x1 convs included; norms, activations, pooling and the SE
multiplication are not counted. Activations are the output elements of convolutions and
linear layers. Params count trainable tensors (BatchNorm running statistics excluded).
The analytic primitives know two variants (:data:`CONVENTIONS`):

* ``'pycls'``: pycls exactly, the figures of its model zoo and of REFERENCE.md: a
  conv/linear bias adds ``w_out`` FLOPs (once, not per position) and a max-pool's output
  counts as activations.
* ``'counted'``: what :func:`measure` counts (biases and pooling are free).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

#: The two counting conventions of the analytic primitives (see the module docstring).
CONVENTIONS = ('pycls', 'counted')


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


class Cx:
    """Running complexity of a network being "built" on paper.

    Args:
        h (int): Input height.
        w (int): Input width.
        convention (str): ``'pycls'`` or ``'counted'`` (see the module docstring).

    Example:
        >>> cx = Cx(32, 32, 'counted')
        >>> _ = norm_cx(conv_cx(cx, 3, 16, 3, stride=2), 16)
        >>> cx.h, cx.result()
        (16, Complexity(params=464, flops=110592, acts=4096))
    """

    __slots__ = ('h', 'w', 'flops', 'params', 'acts', 'pycls')

    def __init__(self, h: int, w: int, convention: str = 'pycls') -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
        if not (int(h) == h and int(w) == w and h >= 1 and w >= 1):
            raise ValueError(f'input size must be positive integers, got {h!r} x {w!r}')
        self.h, self.w, self.pycls = int(h), int(w), convention == 'pycls'
        self.flops = self.params = self.acts = 0

    def result(self) -> Complexity:
        return Complexity(params=self.params, flops=self.flops, acts=self.acts)


def conv_cx(
    cx: Cx, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False
) -> Cx:
    """A k x k 'same'-padded conv (any dilation): output size ``(h - 1) // stride + 1``."""
    cx.h, cx.w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    hw = cx.h * cx.w
    per_out = k * k * w_in // groups
    cx.flops += per_out * w_out * hw + (w_out if bias and cx.pycls else 0)
    cx.params += per_out * w_out + (w_out if bias else 0)
    cx.acts += w_out * hw
    return cx


def norm_cx(cx: Cx, w: int) -> Cx:
    """BatchNorm: two parameters per channel, no FLOPs (folded into the conv)."""
    cx.params += 2 * w
    return cx


def maxpool_cx(cx: Cx, w: int, stride: int) -> Cx:
    """A 'same'-padded max-pool: activations only, and only in pycls's convention."""
    cx.h, cx.w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    if cx.pycls:
        cx.acts += w * cx.h * cx.w
    return cx


def linear_cx(cx: Cx, w_in: int, w_out: int, bias: bool = True) -> Cx:
    """Global average pooling followed by a linear layer (or a 1x1 conv on the pooled
    features, which counts the same)."""
    cx.h = cx.w = 1
    cx.flops += w_in * w_out + (w_out if bias and cx.pycls else 0)
    cx.params += w_in * w_out + (w_out if bias else 0)
    cx.acts += w_out
    return cx


def se_cx(cx: Cx, w: int, w_se: int, norm: bool = False) -> Cx:
    """Squeeze-and-excitation on ``w`` channels: pooled to 1x1, two biased 1x1 convs
    (``w -> w_se [-> BN] -> w``), back to full size (the gating product is free)."""
    h, wd = cx.h, cx.w
    cx.h = cx.w = 1
    conv_cx(cx, w, w_se, 1, bias=True)
    if norm:
        norm_cx(cx, w_se)
    conv_cx(cx, w_se, w, 1, bias=True)
    cx.h, cx.w = h, wd
    return cx


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

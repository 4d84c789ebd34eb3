"""Folding an inference-mode BatchNorm into the convolution that feeds it.

``conv -> BN`` in eval mode is ``y = scale * (W * x + b - mean) + beta`` with
``scale = gamma / sqrt(var + eps)``: one convolution with weight ``scale * W`` and bias
``scale * (b - mean) + beta``. The arithmetic is done in float64 and cast back, so the
folded conv matches the pair to float32 rounding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def can_fold(bn: nn.Module) -> bool:
    """Whether ``bn`` is a BatchNorm whose eval-mode output is a per-channel affine map
    (it tracks running statistics; SyncBN included).

    Example:
        >>> can_fold(nn.BatchNorm2d(8)), can_fold(nn.BatchNorm2d(8, track_running_stats=False))
        (True, False)
    """
    return (
        isinstance(bn, _BatchNorm) and bn.running_mean is not None and bn.running_var is not None
    )


def conv_config(conv: nn.Conv2d, **overrides) -> dict:
    """``nn.Conv2d``'s constructor arguments for a convolution like ``conv`` (its geometry,
    bias or not, dtype), with ``overrides``.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        >>> nn.Conv2d(**conv_config(conv, device='meta')).weight.shape
        torch.Size([8, 3, 3, 3])
    """
    config = dict(
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        dtype=conv.weight.dtype,
    )
    return {**config, **overrides}


@torch.no_grad()
def fold_bn(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """Return a new ``nn.Conv2d`` equal to ``bn(conv(x))`` in eval mode (with a bias).

    Args:
        conv (nn.Conv2d): The convolution (any groups, stride, dilation, bias or not).
        bn (nn.Module): A BatchNorm with running statistics over ``conv``'s outputs.

    Example:
        >>> conv, bn = nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8).eval()
        >>> x = torch.rand(1, 3, 8, 8)
        >>> bool(torch.allclose(fold_bn(conv, bn)(x), bn(conv(x)), atol=1e-6))
        True
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f'fold_bn: expected an nn.Conv2d, got {type(conv).__name__}')
    if not can_fold(bn):
        raise ValueError(
            f'fold_bn: {type(bn).__name__} cannot be folded: only BatchNorm layers with '
            'running statistics (track_running_stats=True) are per-channel affine in eval'
        )
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f'fold_bn: BatchNorm has {bn.num_features} channels but the conv outputs '
            f'{conv.out_channels}'
        )
    w = conv.weight.double()
    b = conv.bias.double() if conv.bias is not None else torch.zeros_like(bn.running_mean).double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(b)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(b)
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    fused = nn.Conv2d(**conv_config(conv, bias=True, device=conv.weight.device))
    fused.weight.copy_(w * scale.reshape(-1, 1, 1, 1))
    fused.bias.copy_((b - bn.running_mean.double()) * scale + beta)
    return fused

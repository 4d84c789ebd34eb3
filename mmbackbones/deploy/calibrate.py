"""Random, non-trivial BatchNorm statistics for numerical checks of untrained models.

A freshly built model has BatchNorm running mean 0, variance 1, weight 1 and bias 0:
folding such a BN into its conv changes nothing, so a fusion check would pass even if the
folding were wrong. :func:`randomize_bn` draws statistics and affine parameters away from
that identity but near unit scale, so features keep a realistic magnitude. (Statistics
measured on random data instead make an untrained network numerically ill-conditioned:
its float32 and float64 outputs then already differ by ~1e-3.)
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Draw every BatchNorm's running mean ~ N(0, 0.2^2), running variance ~ U(0.5, 2),
    weight ~ U(0.5, 1.5) and bias ~ N(0, 0.2^2), reproducibly.

    Args:
        model (nn.Module): Any model; its BatchNorm layers are modified in place.
        seed (int): Seed of the draws. Default: 0.

    Returns:
        nn.Module: ``model``.

    Example:
        >>> bn = randomize_bn(nn.Sequential(nn.BatchNorm2d(4)))[0]
        >>> bool((bn.running_var >= 0.5).all() and (bn.running_mean != 0).any())
        True
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if not isinstance(m, _BatchNorm):
            continue
        n = m.num_features
        if m.track_running_stats:
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
        if m.affine:
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model

"""Helpers shared by the test modules: building backbones and classifiers, counting
parameters, reference models (torchvision, timm) with random weights, the tolerance of a
published figure, and a check that a saved plot is a real picture.

Reference packages are imported through ``pytest.importorskip``: the skip reason names the
missing package, which ``conftest.py`` turns into a failure under
``MMBACKBONES_REQUIRE_REFERENCES=1`` (``make test``, CI).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.models import ImageClassifier
from mmbackbones.registry import MODELS


# ------------------------------------------------------------------------ our models
def build(name: str, arch: Any, **kw: Any) -> nn.Module:
    """The backbone ``name`` (a registered family) through the registry, as a config would."""
    return MODELS.build(dict(type=f'mmbackbones.{name}', arch=arch, **kw))


def classifier(
    name: str, arch: Any, num_classes: int = 1000, device: str = 'cpu', **kw: Any
) -> ImageClassifier:
    """The family's ImageNet classifier (backbone + the paper's head); ``device='meta'``
    builds it without allocating weights (parameter counts, shapes)."""
    with torch.device(device):
        return ImageClassifier(dict(type=name, arch=arch, **kw), num_classes=num_classes)


def on_meta(fn: Callable[[], nn.Module]) -> nn.Module:
    """``fn()`` on the meta device: a model without weights, for counting parameters."""
    with torch.device('meta'):
        return fn()


def nparams(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def expected_hw(size: int, reduction: int) -> int:
    """Output size after ``log2(reduction)`` stride-2 layers with 'same' padding, each
    mapping n -> ceil(n / 2)."""
    for _ in range(int(math.log2(reduction))):
        size = math.ceil(size / 2)
    return size


# -------------------------------------------------------------- reference models
def torchvision_model(name: str, device: str = 'cpu', **kw: Any) -> nn.Module:
    """``torchvision.models.<name>(weights=None, **kw)``: random weights, nothing
    downloaded."""
    tvm = pytest.importorskip('torchvision.models')
    with torch.device(device):
        return getattr(tvm, name)(weights=None, **kw)


def timm_model(name: str, device: str = 'cpu', **kw: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False, **kw)``: random weights."""
    timm = pytest.importorskip('timm')
    with torch.device(device):
        return timm.create_model(name, pretrained=False, **kw)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (in place), so that an eval-mode
    parity check means something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def load_in_order(ours: nn.Module, ref: nn.Module) -> None:
    """Copy ``ref``'s state into ``ours`` entry by entry (same architecture, other names);
    the number of entries, their order and every shape must agree, which is itself a
    structural parity check."""
    mine, theirs = ours.state_dict(), ref.state_dict()
    assert len(mine) == len(theirs)
    for (k, a), (k_ref, b) in zip(mine.items(), theirs.items()):
        assert a.shape == b.shape, (k, k_ref, a.shape, b.shape)
    ours.load_state_dict(dict(zip(mine, theirs.values())))


# ------------------------------------------------------------- published figures
_UNITS = {'K': 1e3, 'M': 1e6, 'B': 1e9, 'G': 1e9}


def within_published(ours: float, published: str | float) -> bool:
    """Within 1% of a published figure, or within its printed rounding (half a unit of
    its last digit), whichever is looser.

    ``published`` as printed, e.g. ``'4.8M'`` or ``'0.40B'`` (the decimals say how
    precise it is: ``'16M'`` covers 15.5-16.5M), or a number whose significant digits
    are the printed ones (``0.4e9`` covers 0.35-0.45e9).
    """
    if isinstance(published, str):
        number, unit = published[:-1], published[-1]
        decimals = len(number.split('.')[1]) if '.' in number else 0
        value = float(number) * _UNITS[unit]
        half_unit = 0.5 * 10 ** (-decimals) * _UNITS[unit]
    else:
        mantissa, exponent = f'{published:.2e}'.split('e')
        digits = mantissa.rstrip('0').rstrip('.')
        decimals = len(digits.split('.')[1]) if '.' in digits else 0
        value = published
        half_unit = 0.5 * 10 ** (int(exponent) - decimals)
    return abs(ours - value) <= max(0.01 * value, half_unit)


# ---------------------------------------------------------------------- plots
def read_plot(path: str | os.PathLike, figsize: tuple[float, float], dpi: int) -> np.ndarray:
    """Load a saved PNG and check that it is the figure that was asked for: ``figsize``
    inches at ``dpi`` (give or take a pixel of rounding) with data drawn in colour, not a
    blank or grey-only canvas (axes, ticks and text alone are grey). Returns the RGB
    pixels (floats in [0, 1])."""
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4), img.shape
    want = (round(figsize[1] * dpi), round(figsize[0] * dpi))
    assert abs(img.shape[0] - want[0]) <= 1 and abs(img.shape[1] - want[1]) <= 1, (
        img.shape,
        want,
    )
    rgb = img[..., :3]
    assert (rgb < 0.9).any(axis=2).mean() > 0.01, 'the plot is (almost) blank'
    colourful = (rgb.max(axis=2) - rgb.min(axis=2)) > 0.25
    assert colourful.sum() > 50, 'no coloured data drawn, only axes and text'
    return rgb

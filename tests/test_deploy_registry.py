"""fuse()'s two tables: which fuser a block type gets (FUSERS, register_fuser) and which
kernel a convolution runs (policy.conv_kernel)."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmbackbones.deploy import fuse, policy, randomize_bn, register_fuser
from mmbackbones.models.layers import (
    ConvNormAct,
    InvertedResidual,
    ResBasicBlock,
    ResBottleneckBlock,
    ResidualBlock,
    SqueezeExcite,
    VanillaBlock,
)

# the module (``mmbackbones.deploy.fuse`` is the function)
fuse_mod = importlib.import_module('mmbackbones.deploy.fuse')


def test_fusers_are_found_through_the_mro() -> None:
    table = fuse_mod.FUSERS
    cases = [
        (ConvNormAct(4, 8, 3, norm_cfg=dict(type='BN')), ConvNormAct),
        (ResBasicBlock(8, 8), ResidualBlock),
        (ResBottleneckBlock(8, 16, group_w=4), ResidualBlock),
        (SqueezeExcite(8, 2), SqueezeExcite),
        (InvertedResidual(8, 16, 8, 3, 1), InvertedResidual),
        (VanillaBlock(8, 8), nn.Sequential),  # a Sequential of ConvNormAct
        (ConvModule(4, 8, 3, norm_cfg=dict(type='BN')), ConvModule),
        (nn.Sequential(nn.Conv2d(4, 4, 1)), nn.Sequential),
        (nn.Linear(4, 4), nn.Module),  # the fallback: fuse the children
    ]
    for module, owner in cases:
        assert fuse_mod.fuser_for(module) is table[owner], type(module).__name__
    # ConvNormAct is a Sequential, but its own entry wins
    assert table[ConvNormAct] is not table[nn.Sequential]


def test_register_fuser_extends_fuse(monkeypatch) -> None:
    """A block type of a user's: registered, fuse() calls its fuser (and its subclasses')."""
    monkeypatch.setattr(fuse_mod, 'FUSERS', dict(fuse_mod.FUSERS))

    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * x

    class SubScale(Scale):
        pass

    seen = []

    @register_fuser(Scale)
    def fuse_scale(m: nn.Module, own_inputs: bool) -> nn.Module:
        seen.append((type(m).__name__, own_inputs))
        return nn.Identity()

    model = nn.Sequential(Scale(), ResBasicBlock(4, 4), SubScale()).eval()
    model[1].f.add_module('s', Scale())  # inside one of our blocks: own_inputs
    fused = fuse(randomize_bn(model), channels_last=False)
    assert isinstance(fused[0], nn.Identity) and isinstance(fused[2], nn.Identity)
    assert isinstance(fused[1].f.s, nn.Identity)
    assert sorted(seen) == [('Scale', False), ('Scale', True), ('SubScale', False)]
    with pytest.raises(ValueError, match='Scale already has a fuser'):
        register_fuser(Scale)(fuse_scale)
    with pytest.raises(TypeError, match='one or more classes'):
        register_fuser()


def test_conv_kernel_policy() -> None:
    def kernel(conv: nn.Module, cl=True) -> str:
        return policy.conv_kernel(conv, channels_last=cl)

    pw, dense = nn.Conv2d(16, 32, 1), nn.Conv2d(16, 32, 3, padding=1)
    long_dw = nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8)
    short_dw = nn.Conv2d(8, 8, 5, padding=4, dilation=2, groups=8)
    # GEMMs for pointwise convs, in either layout
    assert kernel(pw) == kernel(pw, cl=False) == 'pointwise'
    # sub-grids past oneDNN's fast NHWC span; only channels-last
    assert kernel(long_dw) == 'space_to_batch' and kernel(long_dw, cl=False) == 'plain'
    assert kernel(short_dw) == kernel(dense) == 'plain'
    assert kernel(nn.Conv2d(16, 32, 1, stride=2)) == 'plain'
    # not a plain Conv2d: left as it is
    assert kernel(nn.ReLU()) == 'plain' and kernel(nn.Conv1d(4, 4, 1)) == 'plain'
    hooked = nn.Conv2d(16, 32, 1)
    hooked.register_forward_pre_hook(lambda m, i: None)
    assert kernel(hooked) == 'plain'
    assert set(policy.KERNELS) == {'pointwise', 'space_to_batch', 'plain'}

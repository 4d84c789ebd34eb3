"""The residual blocks of AnyNet, RegNet and ResNeXt (pycls ``blocks.py``/``anynet.py``).

* ``'vanilla'``: [3x3 conv, BN, ReLU] x 2 (NDS "Vanilla" space).
* ``'res_basic'``: ReLU(x + [3x3, BN, ReLU, 3x3, BN](x)) (NDS "ResNet" space).
* ``'res_bottleneck'``: ReLU(x + [1x1, BN, ReLU, 3x3 grouped (stride), BN, ReLU, SE,
  1x1, BN](x)) with bottleneck width ``round(w_out * bot_mul)``, groups
  ``w_b // group_w`` and SE width ``round(w_in * se_ratio)`` (pycls: relative to the
  block's *input* width); RegNetX/Y, ResNeXt.

Residual blocks use a 1x1 (strided) conv + BN projection shortcut when the shape changes at
the nominal stride (``output_stride=32``): a strided block that ``output_stride`` < 32
turns into a dilated one keeps its projection, so a block computes the same function (and
loads the same weights) at every output stride.
Every block has a static ``complexity`` that mirrors its constructor with the primitives
of :mod:`mmbackbones.complexity`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn

from mmbackbones.complexity import Cx, conv_cx, norm_cx, se_cx

from .activations import build_act
from .conv import ConvNormAct
from .se import SqueezeExcite


def _defaults(norm_cfg: dict | None, act_cfg: dict | None) -> tuple[dict, dict]:
    """BN and in-place ReLU unless configured (pycls's blocks)."""
    norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
    act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
    return norm_cfg, act_cfg


def _conv3x3_pair(
    w_in: int,
    w_out: int,
    stride: int,
    dilation: int,
    norm_cfg: dict | None,
    act_cfg: dict | None,
    last_act: bool,
) -> OrderedDict[str, ConvNormAct]:
    """``a``: 3x3 (stride) -> BN -> act; ``b``: 3x3 -> BN [-> act]: the vanilla block and
    the basic block's residual branch."""
    norm_cfg, act_cfg = _defaults(norm_cfg, act_cfg)
    return OrderedDict(
        a=ConvNormAct(w_in, w_out, 3, stride, dilation, norm_cfg=norm_cfg, act_cfg=act_cfg),
        b=ConvNormAct(
            w_out, w_out, 3, 1, dilation, norm_cfg=norm_cfg, act_cfg=act_cfg if last_act else None
        ),
    )


def _conv3x3_pair_cx(cx: Cx, w_in: int, w_out: int, stride: int) -> Cx:
    """Complexity of :func:`_conv3x3_pair` (activations are free)."""
    norm_cx(conv_cx(cx, w_in, w_out, 3, stride), w_out)
    return norm_cx(conv_cx(cx, w_out, w_out, 3), w_out)


def bottleneck_widths(
    w_in: int, w_out: int, bot_mul: float, group_w: int | None, se_ratio: float
) -> tuple[int, int, int]:
    """``(w_b, groups, w_se)`` of a bottleneck block, with pycls's rounding."""
    w_b = int(round(w_out * bot_mul))
    groups = w_b // group_w if group_w else 1
    w_se = int(round(w_in * se_ratio)) if se_ratio else 0
    return w_b, groups, w_se


class VanillaBlock(nn.Sequential):
    """Vanilla block: [3x3 conv, BN, ReLU] x 2 (pycls ``vanilla_block``).

    Args:
        w_in (int): Input channels.
        w_out (int): Output channels.
        stride (int): Stride of the first conv. Default: 1.
        dilation (int): Dilation of both convs (``output_stride`` < 32). Default: 1.
        norm_cfg (dict | None): Norm config. Default: BN.
        act_cfg (dict | None): Activation config. Default: ReLU.
    """

    def __init__(
        self,
        w_in: int,
        w_out: int,
        stride: int = 1,
        dilation: int = 1,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
    ) -> None:
        super().__init__(_conv3x3_pair(w_in, w_out, stride, dilation, norm_cfg, act_cfg, True))

    @staticmethod
    def complexity(cx: Cx, w_in: int, w_out: int, stride: int, **_: Any) -> Cx:
        return _conv3x3_pair_cx(cx, w_in, w_out, stride)


def _projects(w_in: int, w_out: int, stride: int, nominal_stride: int | None) -> bool:
    """Whether a residual block needs a projection shortcut (decided at its nominal stride)."""
    return w_in != w_out or (stride if nominal_stride is None else nominal_stride) != 1


class ResidualBlock(nn.Module):
    """``act(shortcut(x) + f(x))`` with a 1x1 conv + BN projection when the shape changes
    (at the nominal stride, ``nominal_stride`` when given)."""

    def __init__(
        self,
        w_in: int,
        w_out: int,
        stride: int,
        norm_cfg: dict,
        act_cfg: dict,
        nominal_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.proj = (
            ConvNormAct(w_in, w_out, 1, stride, norm_cfg=norm_cfg)
            if _projects(w_in, w_out, stride, nominal_stride)
            else None
        )
        self.act = build_act(act_cfg)
        self.in_channels, self.out_channels = w_in, w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        out = self.f(x)
        # in place on f's fresh output (its last BN's): one tensor less per block, and
        # autograd needs neither operand of an addition
        out += shortcut
        return self.act(out)

    @staticmethod
    def proj_complexity(
        cx: Cx, w_in: int, w_out: int, stride: int, nominal_stride: int | None = None
    ) -> Cx:
        if _projects(w_in, w_out, stride, nominal_stride):
            h, w = cx.h, cx.w
            conv_cx(cx, w_in, w_out, 1, stride)
            norm_cx(cx, w_out)
            cx.h, cx.w = h, w  # a parallel branch: the main branch starts from the input
        return cx


class ResBasicBlock(ResidualBlock):
    """Residual basic block: ReLU(x + [3x3, BN, ReLU, 3x3, BN](x)) (pycls
    ``res_basic_block``, the ResNet-18/34 block).

    Args:
        w_in (int): Input channels.
        w_out (int): Output channels.
        stride (int): Stride of the first 3x3 and of the projection. Default: 1.
        dilation (int): Dilation of both 3x3 convs. Default: 1.
        norm_cfg (dict | None): Norm config. Default: BN.
        act_cfg (dict | None): Activation config. Default: ReLU.
        nominal_stride (int | None): The stride at ``output_stride=32``, which decides the
            projection shortcut. Default: ``stride``.
    """

    def __init__(
        self,
        w_in: int,
        w_out: int,
        stride: int = 1,
        dilation: int = 1,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        nominal_stride: int | None = None,
    ) -> None:
        norm_cfg, act_cfg = _defaults(norm_cfg, act_cfg)
        super().__init__(w_in, w_out, stride, norm_cfg, act_cfg, nominal_stride)
        self.f = nn.Sequential(
            _conv3x3_pair(w_in, w_out, stride, dilation, norm_cfg, act_cfg, last_act=False)
        )

    @staticmethod
    def complexity(
        cx: Cx, w_in: int, w_out: int, stride: int, nominal_stride: int | None = None, **_: Any
    ) -> Cx:
        ResidualBlock.proj_complexity(cx, w_in, w_out, stride, nominal_stride)
        return _conv3x3_pair_cx(cx, w_in, w_out, stride)


class ResBottleneckBlock(ResidualBlock):
    """Residual bottleneck block (pycls ``res_bottleneck_block``; RegNetX/Y, ResNeXt):
    ReLU(x + [1x1, BN, ReLU, 3x3 grouped (stride), BN, ReLU, SE, 1x1, BN](x)).

    The stride is on the 3x3 conv (pycls AnyNet, torchvision ResNeXt).

    Args:
        w_in (int): Input channels.
        w_out (int): Output channels.
        stride (int): Stride of the 3x3 conv and of the projection. Default: 1.
        dilation (int): Dilation of the 3x3 conv. Default: 1.
        bot_mul (float): Bottleneck width ``round(w_out * bot_mul)``. Default: 1.0.
        group_w (int | None): Channels per group of the 3x3; ``None`` for a dense conv.
        se_ratio (float): SE width ``round(w_in * se_ratio)``; 0 for no SE. Default: 0.
        norm_cfg (dict | None): Norm config. Default: BN.
        act_cfg (dict | None): Activation config (also inside SE). Default: ReLU.
        nominal_stride (int | None): The stride at ``output_stride=32``, which decides the
            projection shortcut. Default: ``stride``.
    """

    def __init__(
        self,
        w_in: int,
        w_out: int,
        stride: int = 1,
        dilation: int = 1,
        bot_mul: float = 1.0,
        group_w: int | None = None,
        se_ratio: float = 0.0,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        nominal_stride: int | None = None,
    ) -> None:
        norm_cfg, act_cfg = _defaults(norm_cfg, act_cfg)
        super().__init__(w_in, w_out, stride, norm_cfg, act_cfg, nominal_stride)
        w_b, groups, w_se = bottleneck_widths(w_in, w_out, bot_mul, group_w, se_ratio)
        self.f = nn.Sequential()
        self.f.add_module('a', ConvNormAct(w_in, w_b, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.f.add_module(
            'b',
            ConvNormAct(
                w_b, w_b, 3, stride, dilation, groups=groups, norm_cfg=norm_cfg, act_cfg=act_cfg
            ),
        )
        if w_se:
            self.f.add_module('se', SqueezeExcite(w_b, w_se, act_cfg=act_cfg))
        self.f.add_module('c', ConvNormAct(w_b, w_out, 1, norm_cfg=norm_cfg))

    @staticmethod
    def complexity(
        cx: Cx,
        w_in: int,
        w_out: int,
        stride: int,
        bot_mul: float = 1.0,
        group_w: int | None = None,
        se_ratio: float = 0.0,
        nominal_stride: int | None = None,
    ) -> Cx:
        w_b, groups, w_se = bottleneck_widths(w_in, w_out, bot_mul, group_w, se_ratio)
        ResidualBlock.proj_complexity(cx, w_in, w_out, stride, nominal_stride)
        conv_cx(cx, w_in, w_b, 1)
        norm_cx(cx, w_b)
        conv_cx(cx, w_b, w_b, 3, stride, groups)
        norm_cx(cx, w_b)
        if w_se:
            se_cx(cx, w_b, w_se)
        conv_cx(cx, w_b, w_out, 1)
        return norm_cx(cx, w_out)


#: block_type -> block class (pycls names accepted as aliases).
BLOCKS: dict[str, type[nn.Module]] = {
    'vanilla': VanillaBlock,
    'res_basic': ResBasicBlock,
    'res_bottleneck': ResBottleneckBlock,
}
BLOCK_ALIASES = {
    'vanilla_block': 'vanilla',
    'res_basic_block': 'res_basic',
    'res_bottleneck_block': 'res_bottleneck',
}

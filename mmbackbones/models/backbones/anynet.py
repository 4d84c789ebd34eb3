"""AnyNet, RegNet and ResNeXt: one stage/block machinery, three ways to describe it.

Papers:

* Xie et al., "Aggregated Residual Transformations for Deep Neural Networks" (ResNeXt,
  CVPR 2017): the bottleneck whose 3x3 is a grouped convolution of cardinality C.
* Radosavovic et al., "On Network Design Spaces for Visual Recognition" (ICCV 2019): the
  AnyNet-style parameterised families (Vanilla, ResNet, ResNeXt) sampled as design spaces.
* Radosavovic et al., "Designing Network Design Spaces" (CVPR 2020): AnyNetX and RegNet,
  a four-number generator (w0, wa, wm, depth) that feeds AnyNet's per-stage lists.

Following pycls (facebookresearch/pycls ``anynet.py``, ``regnet.py``, ``blocks.py``), the
architecture is data: an AnyNet arch dict holds a stem, a block type and per-stage lists
(depth, width, stride, bottleneck multiplier, group width, SE ratio). RegNet and ResNeXt
are *translations* into that dict (:meth:`AnyNet.to_anynet`), so all three build through
the same code, and every stem and block has a static ``complexity`` method, so that
:func:`anynet_complexity` scores an arch with pure arithmetic, without building it.

Stems (``stem_type``; pycls name in brackets):

* ``'imagenet'`` (``simple_stem_in``): 3x3 stride-2 conv, BN, ReLU; ``stem_w`` 32.
* ``'resnet'`` (``res_stem_in``): 7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool;
  ``stem_w`` 64 (ResNet/ResNeXt).
* ``'cifar'`` (``res_stem_cifar``): 3x3 stride-1 conv, BN, ReLU; ``stem_w`` 16 (the NDS
  design-space study on 32x32 CIFAR inputs).

Blocks (``block_type``):

* ``'vanilla'``: [3x3 conv, BN, ReLU] x 2 (NDS "Vanilla" space).
* ``'res_basic'``: ReLU(x + [3x3, BN, ReLU, 3x3, BN](x)) (NDS "ResNet" space).
* ``'res_bottleneck'``: ReLU(x + [1x1, BN, ReLU, 3x3 grouped (stride), BN, ReLU, SE,
  1x1, BN](x)) with bottleneck width ``round(w_out * bot_mul)``, groups
  ``w_b // group_w`` and SE width ``round(w_in * se_ratio)`` (pycls: relative to the
  block's *input* width); RegNetX/Y, ResNeXt.

Residual blocks use a 1x1 (strided) conv + BN projection shortcut when the shape changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import torch
import torch.nn as nn

from mmbackbones.complexity import Complexity
from mmbackbones.registry import MODELS

from ..layers import ConvNormAct, SqueezeExcite, build_act
from .base import BaseBackbone, LayerSpec, StrideSchedule

# ---------------------------------------------------------------------------------------
# Analytic complexity primitives (pycls ``blocks.py``: conv2d_cx, norm2d_cx, ...)
# ---------------------------------------------------------------------------------------

#: The two counting conventions of :func:`anynet_complexity`.
CONVENTIONS = ('pycls', 'counted')


class _Cx:
    """Running complexity of a network being "built" on paper.

    ``pycls=True`` follows pycls's convention exactly: a conv/linear bias adds ``w_out``
    FLOPs (once, not per position) and a max-pool's output counts as activations.
    ``pycls=False`` ("counted") follows :func:`mmbackbones.complexity.measure`: biases
    and pooling are free.
    """

    __slots__ = ('h', 'w', 'flops', 'params', 'acts', 'pycls')

    def __init__(self, h: int, w: int, pycls: bool) -> None:
        self.h, self.w, self.pycls = h, w, pycls
        self.flops = self.params = self.acts = 0


def conv_cx(
    cx: _Cx, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False
) -> _Cx:
    """A k x k 'same'-padded conv (any dilation): output size ``(h - 1) // stride + 1``."""
    cx.h, cx.w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    hw = cx.h * cx.w
    per_out = k * k * w_in // groups
    cx.flops += per_out * w_out * hw + (w_out if bias and cx.pycls else 0)
    cx.params += per_out * w_out + (w_out if bias else 0)
    cx.acts += w_out * hw
    return cx


def norm_cx(cx: _Cx, w: int) -> _Cx:
    """BatchNorm: two parameters per channel, no FLOPs (folded into the conv)."""
    cx.params += 2 * w
    return cx


def maxpool_cx(cx: _Cx, w: int, stride: int) -> _Cx:
    """A 'same'-padded max-pool: activations only, and only in pycls's convention."""
    cx.h, cx.w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    if cx.pycls:
        cx.acts += w * cx.h * cx.w
    return cx


def linear_cx(cx: _Cx, w_in: int, w_out: int, bias: bool = True) -> _Cx:
    """Global average pooling followed by a linear layer."""
    cx.h = cx.w = 1
    cx.flops += w_in * w_out + (w_out if bias and cx.pycls else 0)
    cx.params += w_in * w_out + (w_out if bias else 0)
    cx.acts += w_out
    return cx


# ---------------------------------------------------------------------------------------
# Blocks: each one a module plus a static ``complexity`` that mirrors its constructor
# ---------------------------------------------------------------------------------------


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
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
        super().__init__()
        self.a = ConvNormAct(w_in, w_out, 3, stride, dilation, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.b = ConvNormAct(w_out, w_out, 3, 1, dilation, norm_cfg=norm_cfg, act_cfg=act_cfg)

    @staticmethod
    def complexity(cx: _Cx, w_in: int, w_out: int, stride: int, **_: Any) -> _Cx:
        conv_cx(cx, w_in, w_out, 3, stride)
        norm_cx(cx, w_out)
        conv_cx(cx, w_out, w_out, 3)
        return norm_cx(cx, w_out)


class _ResidualBlock(nn.Module):
    """``act(shortcut(x) + f(x))`` with a 1x1 conv + BN projection when the shape changes."""

    def __init__(self, w_in: int, w_out: int, stride: int, norm_cfg: dict, act_cfg: dict) -> None:
        super().__init__()
        self.proj = (
            ConvNormAct(w_in, w_out, 1, stride, norm_cfg=norm_cfg)
            if w_in != w_out or stride != 1
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
    def proj_complexity(cx: _Cx, w_in: int, w_out: int, stride: int) -> _Cx:
        if w_in != w_out or stride != 1:
            h, w = cx.h, cx.w
            conv_cx(cx, w_in, w_out, 1, stride)
            norm_cx(cx, w_out)
            cx.h, cx.w = h, w  # a parallel branch: the main branch starts from the input
        return cx


class ResBasicBlock(_ResidualBlock):
    """Residual basic block: ReLU(x + [3x3, BN, ReLU, 3x3, BN](x)) (pycls
    ``res_basic_block``, the ResNet-18/34 block).

    Args:
        w_in (int): Input channels.
        w_out (int): Output channels.
        stride (int): Stride of the first 3x3 and of the projection. Default: 1.
        dilation (int): Dilation of both 3x3 convs. Default: 1.
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
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
        super().__init__(w_in, w_out, stride, norm_cfg, act_cfg)
        self.f = nn.Sequential()
        self.f.add_module(
            'a', ConvNormAct(w_in, w_out, 3, stride, dilation, norm_cfg=norm_cfg, act_cfg=act_cfg)
        )
        self.f.add_module('b', ConvNormAct(w_out, w_out, 3, 1, dilation, norm_cfg=norm_cfg))

    @staticmethod
    def complexity(cx: _Cx, w_in: int, w_out: int, stride: int, **_: Any) -> _Cx:
        _ResidualBlock.proj_complexity(cx, w_in, w_out, stride)
        conv_cx(cx, w_in, w_out, 3, stride)
        norm_cx(cx, w_out)
        conv_cx(cx, w_out, w_out, 3)
        return norm_cx(cx, w_out)


class ResBottleneckBlock(_ResidualBlock):
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
    ) -> None:
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
        super().__init__(w_in, w_out, stride, norm_cfg, act_cfg)
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
        cx: _Cx,
        w_in: int,
        w_out: int,
        stride: int,
        bot_mul: float = 1.0,
        group_w: int | None = None,
        se_ratio: float = 0.0,
    ) -> _Cx:
        w_b, groups, w_se = bottleneck_widths(w_in, w_out, bot_mul, group_w, se_ratio)
        _ResidualBlock.proj_complexity(cx, w_in, w_out, stride)
        conv_cx(cx, w_in, w_b, 1)
        norm_cx(cx, w_b)
        conv_cx(cx, w_b, w_b, 3, stride, groups)
        norm_cx(cx, w_b)
        if w_se:  # pooled to 1x1, two biased 1x1 convs, back to full size
            h, w = cx.h, cx.w
            cx.h = cx.w = 1
            conv_cx(cx, w_b, w_se, 1, bias=True)
            conv_cx(cx, w_se, w_b, 1, bias=True)
            cx.h, cx.w = h, w
        conv_cx(cx, w_b, w_out, 1)
        return norm_cx(cx, w_out)


#: block_type -> block class (pycls names accepted as aliases).
BLOCKS: dict[str, type[nn.Module]] = {
    'vanilla': VanillaBlock,
    'res_basic': ResBasicBlock,
    'res_bottleneck': ResBottleneckBlock,
}
_BLOCK_ALIASES = {
    'vanilla_block': 'vanilla',
    'res_basic_block': 'res_basic',
    'res_bottleneck_block': 'res_bottleneck',
}


# ---------------------------------------------------------------------------------------
# Stems, as data: (kernel, stride, max-pool after it, default width)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StemCfg:
    kernel: int
    stride: int
    maxpool: bool
    default_w: int


STEMS: dict[str, StemCfg] = {
    'imagenet': StemCfg(3, 2, False, 32),  # pycls simple_stem_in (RegNet)
    'resnet': StemCfg(7, 2, True, 64),  # pycls res_stem_in (ResNet/ResNeXt)
    'cifar': StemCfg(3, 1, False, 16),  # pycls res_stem_cifar (NDS on CIFAR)
}
_STEM_ALIASES = {'simple_stem_in': 'imagenet', 'res_stem_in': 'resnet', 'res_stem_cifar': 'cifar'}


# ---------------------------------------------------------------------------------------
# The AnyNet arch: defaults, validation, complexity
# ---------------------------------------------------------------------------------------

_ANYNET_DEFAULT_ARCH: dict[str, Any] = dict(
    stem_type='imagenet',  # 'imagenet' | 'resnet' | 'cifar' (see module docstring)
    stem_w=None,  # stem channels; None = the stem's default (32 / 64 / 16)
    block_type='res_bottleneck',  # 'vanilla' | 'res_basic' | 'res_bottleneck'
    depths=None,  # per stage: number of blocks (required)
    widths=None,  # per stage: output channels (required)
    strides=None,  # per stage; None = 2 everywhere, 1 for the first stage after a
    #               'resnet' (already /4) or 'cifar' stem
    bot_muls=None,  # per stage (res_bottleneck only); None = 1.0
    group_ws=None,  # per stage (res_bottleneck only): channels per group; None = dense
    se_ratio=0.0,  # scalar or per stage (res_bottleneck only): SE width / block input
)


@dataclass(frozen=True)
class StageCfg:
    """One resolved AnyNet stage (what pycls's ``AnyStage`` receives)."""

    depth: int
    width: int
    stride: int
    bot_mul: float | None
    group_w: int | None
    se_ratio: float


def _per_stage(arch: dict, key: str, n: int, default: Any) -> list:
    value = arch[key]
    if value is None:
        return [default] * n
    if key == 'se_ratio' and isinstance(value, (int, float)):
        return [value] * n
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise ValueError(
            f'AnyNet: arch[{key!r}] must be a list with one entry per stage '
            f'({n}, as depths), got {value!r}'
        )
    return list(value)


def resolve_anynet_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """Validate an AnyNet arch dict and complete it with the defaults.

    Returns a new dict with canonical names (``stem_type``, ``block_type``), an int
    ``stem_w`` and per-stage lists everywhere (``se_ratio`` included). Anything a block
    cannot be built from raises ``ValueError`` naming the stage.

    Example:
        >>> a = resolve_anynet_arch(dict(depths=[1, 2], widths=[32, 64], group_ws=[8, 8]))
        >>> a['stem_w'], a['strides'], a['bot_muls'], a['se_ratio']
        (32, [2, 2], [1.0, 1.0], [0.0, 0.0])
    """
    unknown = sorted(set(arch) - set(_ANYNET_DEFAULT_ARCH))
    if unknown:
        raise ValueError(
            f'AnyNet: unknown arch keys {unknown}; valid keys are '
            f'{sorted(_ANYNET_DEFAULT_ARCH)}'
        )
    a = {**_ANYNET_DEFAULT_ARCH, **arch}
    stem_type = _STEM_ALIASES.get(a['stem_type'], a['stem_type'])
    if stem_type not in STEMS:
        raise ValueError(
            f'AnyNet: unknown stem_type {a["stem_type"]!r}; valid types are {sorted(STEMS)}'
        )
    block_type = _BLOCK_ALIASES.get(a['block_type'], a['block_type'])
    if block_type not in BLOCKS:
        raise ValueError(
            f'AnyNet: unknown block_type {a["block_type"]!r}; valid types are {sorted(BLOCKS)}'
        )
    if a['depths'] is None or a['widths'] is None:
        raise ValueError('AnyNet: arch needs per-stage lists "depths" and "widths"')
    n = len(a['depths'])
    if n == 0:
        raise ValueError('AnyNet: arch needs at least one stage')
    stem_w = STEMS[stem_type].default_w if a['stem_w'] is None else a['stem_w']
    first_stride = 1 if stem_type in ('resnet', 'cifar') else 2
    depths = [int(d) for d in _per_stage(a, 'depths', n, None)]
    widths = [int(w) for w in _per_stage(a, 'widths', n, None)]
    strides = a['strides']
    strides = (
        [first_stride] + [2] * (n - 1)
        if strides is None
        else [int(s) for s in _per_stage(a, 'strides', n, None)]
    )
    bottleneck = block_type == 'res_bottleneck'
    if not bottleneck:
        for key, trivial in (('bot_muls', None), ('group_ws', None), ('se_ratio', 0.0)):
            if any(v != trivial for v in _per_stage(a, key, n, trivial)):
                raise ValueError(
                    f'AnyNet: arch[{key!r}] applies only to '
                    f"block_type='res_bottleneck', got {a[key]!r} for "
                    f'{block_type!r}'
                )
    bot_muls = _per_stage(a, 'bot_muls', n, 1.0) if bottleneck else [None] * n
    group_ws = _per_stage(a, 'group_ws', n, None) if bottleneck else [None] * n
    se_ratios = [float(r) for r in _per_stage(a, 'se_ratio', n, 0.0)]
    if not isinstance(stem_w, int) or stem_w < 1:
        raise ValueError(f'AnyNet: stem_w must be a positive int, got {stem_w!r}')
    for i in range(n):
        where = f'AnyNet: stage {i + 1}'
        if depths[i] < 1 or widths[i] < 1:
            raise ValueError(
                f'{where}: depth and width must be >= 1, got depth '
                f'{depths[i]}, width {widths[i]}'
            )
        if strides[i] not in (1, 2):
            raise ValueError(f'{where}: stride must be 1 or 2, got {strides[i]}')
        if se_ratios[i] < 0:
            raise ValueError(f'{where}: se_ratio must be >= 0, got {se_ratios[i]}')
        if bottleneck:
            if bot_muls[i] is None or bot_muls[i] <= 0:
                raise ValueError(f'{where}: bot_mul must be > 0, got {bot_muls[i]}')
            w_b = int(round(widths[i] * bot_muls[i]))
            g = group_ws[i]
            if w_b < 1:
                raise ValueError(
                    f'{where}: bottleneck width round({widths[i]} * {bot_muls[i]}) is 0'
                )
            if g is not None and (int(g) != g or g < 1 or w_b % g):
                raise ValueError(
                    f'{where}: group width {g} must divide the bottleneck width {w_b} '
                    f'(= round({widths[i]} * {bot_muls[i]})); adjust_block_compatibility() '
                    'makes widths and group widths compatible'
                )
            group_ws[i] = None if g is None else int(g)
    return dict(
        stem_type=stem_type,
        stem_w=stem_w,
        block_type=block_type,
        depths=depths,
        widths=widths,
        strides=strides,
        bot_muls=bot_muls,
        group_ws=group_ws,
        se_ratio=se_ratios,
    )


def anynet_stages(arch: dict[str, Any]) -> list[StageCfg]:
    """Per-stage configs of a *resolved* arch (see :func:`resolve_anynet_arch`)."""
    return [
        StageCfg(*s)
        for s in zip(
            arch['depths'],
            arch['widths'],
            arch['strides'],
            arch['bot_muls'],
            arch['group_ws'],
            arch['se_ratio'],
        )
    ]


def anynet_complexity(
    arch: dict[str, Any],
    shape: int | tuple[int, int] = (224, 224),
    num_classes: int | None = 1000,
    *,
    convention: str = 'pycls',
    output_stride: int = 32,
    in_channels: int = 3,
) -> Complexity:
    """Params, FLOPs (multiply-adds) and activations of an AnyNet arch, analytically.

    Pure arithmetic over the arch (no model is built): pycls's per-module ``complexity``
    functions. Cost is O(stages), so thousands of sampled configs score per second.

    Conventions (``params`` is the same in both):

    * ``'pycls'``: pycls exactly, the figures of its model zoo and of REFERENCE.md. A
      conv/linear bias adds ``w_out`` FLOPs (the SE convs and the classifier), and the
      ResNet stem's max-pool output counts as activations.
    * ``'counted'``: what :func:`mmbackbones.complexity.measure` counts on the built model
      (biases and pooling are free). ``pycls - counted`` is exactly
      ``flops: sum over SE blocks of (w_se + w_b), plus num_classes`` and
      ``acts: stem_w * H/4 * W/4`` for the ``'resnet'`` stem.

    Args:
        arch (dict): An AnyNet arch (partial dicts are completed with the defaults); use
            ``RegNet.to_anynet(...)`` / ``ResNeXt.to_anynet(...)`` for those families.
        shape (int | tuple[int, int]): Input height and width. Default: (224, 224).
        num_classes (int | None): Classifier (global pool + linear) outputs; ``None`` for
            the backbone alone. Default: 1000.
        convention (str): ``'pycls'`` or ``'counted'``. Default: ``'pycls'``.
        output_stride (int): 8, 16 or 32, as the backbone's argument. Default: 32.
        in_channels (int): Input channels. Default: 3.

    Returns:
        Complexity: ``(params, flops, acts)``.

    Example:
        >>> cx = anynet_complexity(RegNet.to_anynet('regnetx_400mf'))
        >>> cx.flops, cx.params, cx.acts
        (397678568, 5157512, 3143272)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
    a = resolve_anynet_arch(arch)
    h, w = (shape, shape) if isinstance(shape, int) else shape
    cx = _Cx(h, w, convention == 'pycls')
    sched = StrideSchedule(output_stride)
    stem = STEMS[a['stem_type']]
    stem_stride = sched.step(stem.stride)[0]
    conv_cx(cx, in_channels, a['stem_w'], stem.kernel, stem_stride)
    norm_cx(cx, a['stem_w'])
    if stem.maxpool:
        maxpool_cx(cx, a['stem_w'], sched.step(2)[0])
    block = BLOCKS[a['block_type']]
    w_in = a['stem_w']
    for st in anynet_stages(a):
        kw = dict(bot_mul=st.bot_mul, group_w=st.group_w, se_ratio=st.se_ratio)
        block.complexity(cx, w_in, st.width, sched.step(st.stride)[0], **kw)
        if st.depth > 1:  # the other blocks of a stage are identical: count one, scale
            f0, p0, a0 = cx.flops, cx.params, cx.acts
            block.complexity(cx, st.width, st.width, 1, **kw)
            k = st.depth - 2
            cx.flops += k * (cx.flops - f0)
            cx.params += k * (cx.params - p0)
            cx.acts += k * (cx.acts - a0)
        w_in = st.width
    if num_classes:
        linear_cx(cx, w_in, num_classes)
    return Complexity(params=cx.params, flops=cx.flops, acts=cx.acts)


# ---------------------------------------------------------------------------------------
# RegNet: the generator and pycls's width/group compatibility rule
# ---------------------------------------------------------------------------------------


def generate_regnet(
    w0: int, wa: float, wm: float, depth: int, q: int = 8
) -> tuple[list[int], list[int]]:
    """Per-stage widths and depths of a RegNet (Radosavovic et al. 2020, Sec. 3.3).

    Block ``j`` gets the linear width ``u_j = w0 + wa * j``, which is snapped to the
    nearest power of ``wm`` in log space from ``w0`` (``w0 * wm ** round(log_wm(u_j /
    w0))``) and quantized to a multiple of ``q``. Consecutive blocks of equal width form
    a stage.

    Args:
        w0 (int): Initial width (a multiple of ``q``).
        wa (float): Slope of the linear width parameterisation (>= 0).
        wm (float): Width multiplier between stages (> 1).
        depth (int): Total number of blocks.
        q (int): Width quantum. Default: 8.

    Returns:
        tuple[list[int], list[int]]: ``(widths, depths)`` per stage (before
        :func:`adjust_block_compatibility`).

    Example:
        >>> generate_regnet(24, 24.48, 2.54, 22)  # RegNetX-400MF, before rounding to 16
        ([24, 64, 152, 392], [1, 2, 7, 12])
    """
    if not (wa >= 0 and w0 > 0 and wm > 1 and depth >= 1 and w0 % q == 0):
        raise ValueError(
            f'RegNet: need wa >= 0, w0 > 0, wm > 1, depth >= 1 and w0 % q == 0'
            f', got w0={w0}, wa={wa}, wm={wm}, depth={depth}, q={q}'
        )
    log_wm = math.log(wm)
    widths: list[int] = []
    depths: list[int] = []
    for j in range(depth):
        k = round(math.log((w0 + wa * j) / w0) / log_wm)
        w = int(round(w0 * wm**k / q)) * q
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    return widths, depths


def adjust_block_compatibility(
    widths: Sequence[int], bot_muls: Sequence[float], group_ws: Sequence[int]
) -> tuple[list[int], list[float], list[int]]:
    """Make widths, bottleneck multipliers and group widths compatible (pycls's rule).

    The bottleneck width ``v = w * b`` must be a multiple of the group width ``g``
    (capped at ``v``) *and* give back an integer stage width ``v / b``. With ``b > 1``
    both hold only for multiples of ``lcm(g, b)`` (for a fractional ``b = p / r``, of
    ``lcm(g, p)``), so ``v`` is rounded to the nearest such multiple. Rounding to a
    multiple of ``g`` alone (mmdet) can leave ``round(w * b) % g != 0``.

    Returns:
        tuple: ``(widths, bot_muls, group_ws)``.

    Example:
        >>> adjust_block_compatibility([56], [4.0], [6])  # lcm(6, 4) = 12: 224 -> 228
        ([57], [4.0], [6])
    """
    if not len(widths) == len(bot_muls) == len(group_ws):
        raise ValueError(
            'adjust_block_compatibility: widths, bot_muls and group_ws must '
            'have the same length'
        )
    if not all(w > 0 and b > 0 and g > 0 for w, b, g in zip(widths, bot_muls, group_ws)):
        raise ValueError(
            'adjust_block_compatibility: widths, bot_muls and group_ws must '
            f'be positive, got {widths}, {bot_muls}, {group_ws}'
        )
    out_w, out_g = [], []
    for w, b, g in zip(widths, bot_muls, group_ws):
        v = int(max(1, w * b))
        g = int(min(g, v))
        m = math.lcm(g, Fraction(b).limit_denominator(1000).numerator) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        out_w.append(int(v / b))
        out_g.append(g)
    return out_w, list(bot_muls), out_g


def regnet_to_anynet(arch: dict[str, Any]) -> dict[str, Any]:
    """The AnyNet arch of a RegNet arch dict (pycls ``RegNet.get_params``)."""
    widths, depths = generate_regnet(arch['w0'], arch['wa'], arch['wm'], arch['depth'], arch['q'])
    n = len(widths)
    widths, bot_muls, group_ws = adjust_block_compatibility(
        widths, [arch['bot_mul']] * n, [arch['group_w']] * n
    )
    return dict(
        stem_type='imagenet',
        stem_w=arch['stem_w'],
        block_type='res_bottleneck',
        depths=depths,
        widths=widths,
        strides=[2] * n,
        bot_muls=bot_muls,
        group_ws=group_ws,
        se_ratio=arch['se_ratio'],
    )


def resnext_to_anynet(arch: dict[str, Any]) -> dict[str, Any]:
    """The AnyNet arch of a ResNeXt arch dict: C x d bottlenecks, both doubled per stage.

    Stage ``i`` (from 0) has bottleneck width ``C * d * 2**i`` (grouped 3x3 of cardinality
    ``C``, group width ``d * 2**i``) and output width ``widths[i]`` (``256 * 2**i``), so
    ``bot_mul = C * d * 2**i / widths[i]`` (pycls ``X-50-32x4d``: 0.5, group widths
    4/8/16/32).
    """
    c, d = arch['cardinality'], arch['base_width']
    n = len(arch['depths'])
    widths = list(arch['widths'])
    if len(widths) != n:
        raise ValueError(
            f'ResNeXt: widths {widths} and depths {arch["depths"]} must have '
            'one entry per stage'
        )
    w_bs = [c * d * 2**i for i in range(n)]
    return dict(
        stem_type='resnet',
        stem_w=arch['stem_w'],
        block_type='res_bottleneck',
        depths=list(arch['depths']),
        widths=widths,
        strides=[1] + [2] * (n - 1),
        bot_muls=[w_b / w for w_b, w in zip(w_bs, widths)],
        group_ws=[d * 2**i for i in range(n)],
        se_ratio=0.0,
    )


# ---------------------------------------------------------------------------------------
# The backbones
# ---------------------------------------------------------------------------------------


@MODELS.register_module()
class AnyNet(BaseBackbone):
    """AnyNet (pycls): a stem, then stages of identical blocks, as per-stage lists.

    Stage 0 is the stem (with its max-pool for ``stem_type='resnet'``), stage k the k-th
    list entry. Taps (``feature_info``) are the last layer at each reduction: for ImageNet
    stems 0: stem@/2, 1-4: the four stages @/4../32; for the CIFAR stem the stage outputs
    @/1, /2, /4. This family has no expansion layer, so ``feature_location='expansion'``
    raises ``ValueError``. The classifier (``make_classifier``) is the base class's
    global average pool -> linear, pycls's ``AnyHead``.

    Args:
        arch (str | dict): A preset name (``'nds_r56'``, ``'nds_v56'``, ``'nds_r110'``:
            pycls's CIFAR ResNet/Vanilla baselines) or an arch dict with keys
            ``stem_type``, ``stem_w``, ``block_type``, ``depths``, ``widths``,
            ``strides``, ``bot_muls``, ``group_ws``, ``se_ratio`` (see
            :func:`resolve_anynet_arch`).
        out_indices (Sequence[int] | None): Taps to return; ``None`` = every stage output
            (taps 1-4 for ImageNet stems, 0-2 for the CIFAR stem). Default: None.
        norm_cfg (dict | None): Norm config. Default: BN.
        act_cfg (dict | None): Activation config. Default: ReLU.
        init_cfg (dict | list[dict] | None): Default: Kaiming (fan_out) convs, BN = 1.
        **kwargs: The contract's arguments (``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``output_stride``), see ``BaseBackbone``.

    Example:
        >>> import torch
        >>> arch = dict(stem_type='imagenet', block_type='res_bottleneck',
        ...             depths=[1, 1, 2, 1], widths=[32, 64, 128, 256], group_ws=[8] * 4)
        >>> m = AnyNet(arch).eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 32, 56, 56), (1, 64, 28, 28), (1, 128, 14, 14), (1, 256, 7, 7)]
    """

    arch_settings: ClassVar[dict[str, Any]] = {
        # pycls configs/archive/cifar/anynet/{R-56,V-56,R-110}_nds_1gpu.yaml
        'nds_r56': dict(
            stem_type='cifar',
            stem_w=16,
            block_type='res_basic',
            depths=[9, 9, 9],
            widths=[16, 32, 64],
            strides=[1, 2, 2],
        ),
        'nds_v56': dict(
            stem_type='cifar',
            stem_w=16,
            block_type='vanilla',
            depths=[9, 9, 9],
            widths=[16, 32, 64],
            strides=[1, 2, 2],
        ),
        'nds_r110': dict(
            stem_type='cifar',
            stem_w=16,
            block_type='res_basic',
            depths=[18, 18, 18],
            widths=[16, 32, 64],
            strides=[1, 2, 2],
        ),
    }
    #: Keys (and defaults) of this family's arch dict.
    default_arch: ClassVar[dict[str, Any]] = _ANYNET_DEFAULT_ARCH

    def __init__(
        self,
        arch: str | dict,
        out_indices: Sequence[int] | None = None,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
        **kwargs: Any,
    ) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
            ]
        super().__init__(
            out_indices=() if out_indices is None else out_indices, init_cfg=init_cfg, **kwargs
        )
        if self.feature_location != 'bottleneck':
            raise ValueError(
                f"{type(self).__name__}: feature_location='expansion' is not "
                'supported: AnyNet/RegNet/ResNeXt blocks have no expansion '
                "layer (use 'bottleneck')"
            )
        self.arch = self.resolve_arch(arch, self.default_arch)
        self.anynet_arch = resolve_anynet_arch(self._family_to_anynet(self.arch))
        self.norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        self.act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
        specs = self._layer_specs(self.anynet_arch)
        if out_indices is None:
            self._requested_out_indices = self._stage_output_taps(specs)
        self._build(specs)

    # ------------------------------------------------------------ arch translation
    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        """This family's (resolved) arch dict -> an AnyNet arch dict."""
        return arch

    @classmethod
    def to_anynet(cls, arch: str | dict) -> dict[str, Any]:
        """The resolved AnyNet arch of a preset name or arch dict of this family.

        Example:
            >>> ResNeXt.to_anynet('50_32x4d')['group_ws']
            [4, 8, 16, 32]
        """
        return resolve_anynet_arch(cls._family_to_anynet(cls.resolve_arch(arch, cls.default_arch)))

    @classmethod
    def complexity(
        cls,
        arch: str | dict,
        shape: int | tuple[int, int] = (224, 224),
        num_classes: int | None = 1000,
        **kwargs: Any,
    ) -> Complexity:
        """:func:`anynet_complexity` of a preset name or arch dict of this family."""
        return anynet_complexity(cls.to_anynet(arch), shape, num_classes, **kwargs)

    # ----------------------------------------------------------------- construction
    def _layer_specs(self, a: dict[str, Any]) -> list[LayerSpec]:
        sched = StrideSchedule(self.output_stride)
        stem = STEMS[a['stem_type']]
        specs = [
            LayerSpec(
                'stem',
                ConvNormAct(
                    3,
                    a['stem_w'],
                    stem.kernel,
                    sched.step(stem.stride)[0],
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                ),
                a['stem_w'],
                sched.nominal,
                stage=0,
                checkpoint=False,
            )
        ]
        if stem.maxpool:
            stride = sched.step(2)[0]
            specs.append(
                LayerSpec(
                    'pool',
                    nn.MaxPool2d(3, stride, 1),
                    a['stem_w'],
                    sched.nominal,
                    stage=0,
                    checkpoint=False,
                )
            )
        block_cls = BLOCKS[a['block_type']]
        w_in = a['stem_w']
        for i, st in enumerate(anynet_stages(a), start=1):
            for j in range(st.depth):
                stride, dilation = sched.step(st.stride if j == 0 else 1)
                kw: dict[str, Any] = dict(norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
                if block_cls is ResBottleneckBlock:
                    kw.update(bot_mul=st.bot_mul, group_w=st.group_w, se_ratio=st.se_ratio)
                block = block_cls(w_in, st.width, stride, dilation, **kw)
                specs.append(LayerSpec(f's{i}_b{j + 1}', block, st.width, sched.nominal, stage=i))
                w_in = st.width
        return specs

    @staticmethod
    def _stage_output_taps(specs: list[LayerSpec]) -> tuple[int, ...]:
        """Indices (into the taps ``_build`` will compute) of the taps inside stages."""
        taps = [
            i
            for i, s in enumerate(specs)
            if i == len(specs) - 1 or specs[i + 1].reduction != s.reduction
        ]
        return tuple(k for k, i in enumerate(taps) if specs[i].stage >= 1)


_REGNET_DEFAULT_ARCH: dict[str, Any] = dict(
    w0=None,  # initial width (multiple of q)
    wa=None,  # slope of the linear widths
    wm=None,  # width multiplier between stages (log-space quantization)
    depth=None,  # total number of blocks
    group_w=None,  # group width of the 3x3 convs
    bot_mul=1.0,  # bottleneck multiplier (1 for RegNetX/Y)
    se_ratio=0.0,  # SE width / block input width (RegNetY: 0.25)
    stem_w=32,  # 'imagenet' (pycls simple_stem_in) stem width
    q=8,  # width quantum of the generator
)


def _regnet(
    w0: int, wa: float, wm: float, group_w: int, depth: int, se_ratio: float = 0.0
) -> dict[str, Any]:
    return dict(w0=w0, wa=wa, wm=wm, group_w=group_w, depth=depth, se_ratio=se_ratio)


@MODELS.register_module()
class RegNet(AnyNet):
    """RegNetX / RegNetY (Radosavovic et al., CVPR 2020) on the AnyNet machinery.

    :func:`generate_regnet` turns (w0, wa, wm, depth) into per-stage widths and depths,
    :func:`adjust_block_compatibility` makes widths and group widths compatible (pycls's
    LCM rule), and the result is an AnyNet with the ``'imagenet'`` 3x3 stem (32 channels)
    and residual bottleneck blocks, stride 2 per stage; RegNetY adds SE (0.25 of the
    block input width) after the 3x3.

    Taps: 0: stem@/2, 1-4: the four stages @/4, /8, /16, /32 (the default).

    Args:
        arch (str | dict): A preset (``'regnetx_400mf'``, ``'regnetx_800mf'``,
            ``'regnetx_1.6gf'``, ``'regnetx_3.2gf'``, ``'regnetx_4.0gf'``,
            ``'regnetx_6.4gf'``, ``'regnetx_8.0gf'``, ``'regnetx_12gf'`` and the
            ``'regnety_*'`` counterparts) or a dict with keys ``w0``, ``wa``, ``wm``,
            ``depth``, ``group_w``, ``bot_mul`` (1.0), ``se_ratio`` (0.0), ``stem_w``
            (32), ``q`` (8). Default: ``'regnetx_400mf'``.
        out_indices (Sequence[int] | None): Taps to return; ``None`` = the stage outputs.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``init_cfg`` and the contract's arguments,
            see :class:`AnyNet`.

    Example:
        >>> import torch
        >>> m = RegNet('regnetx_3.2gf').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 96, 56, 56), (1, 192, 28, 28), (1, 432, 14, 14), (1, 1008, 7, 7)]
    """

    # Columns: w0, wa, wm, group_w, depth (pycls dds_baselines; REFERENCE.md / timm)
    arch_settings: ClassVar[dict[str, Any]] = {
        'regnetx_400mf': _regnet(24, 24.48, 2.54, 16, 22),
        'regnetx_800mf': _regnet(56, 35.73, 2.28, 16, 16),
        'regnetx_1.6gf': _regnet(80, 34.01, 2.25, 24, 18),
        'regnetx_3.2gf': _regnet(88, 26.31, 2.25, 48, 25),
        'regnetx_4.0gf': _regnet(96, 38.65, 2.43, 40, 23),
        'regnetx_6.4gf': _regnet(184, 60.83, 2.07, 56, 17),
        'regnetx_8.0gf': _regnet(80, 49.56, 2.88, 120, 23),
        'regnetx_12gf': _regnet(168, 73.36, 2.37, 112, 19),
        'regnety_400mf': _regnet(48, 27.89, 2.09, 8, 16, se_ratio=0.25),
        'regnety_800mf': _regnet(56, 38.84, 2.4, 16, 14, se_ratio=0.25),
        'regnety_1.6gf': _regnet(48, 20.71, 2.65, 24, 27, se_ratio=0.25),
        'regnety_3.2gf': _regnet(80, 42.63, 2.66, 24, 21, se_ratio=0.25),
        'regnety_4.0gf': _regnet(96, 31.41, 2.24, 64, 22, se_ratio=0.25),
        'regnety_6.4gf': _regnet(112, 33.22, 2.27, 72, 25, se_ratio=0.25),
        'regnety_8.0gf': _regnet(192, 76.82, 2.19, 56, 17, se_ratio=0.25),
        'regnety_12gf': _regnet(168, 73.36, 2.37, 112, 19, se_ratio=0.25),
    }
    default_arch: ClassVar[dict[str, Any]] = _REGNET_DEFAULT_ARCH

    def __init__(
        self,
        arch: str | dict = 'regnetx_400mf',
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, out_indices=out_indices, **kwargs)

    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ('w0', 'wa', 'wm', 'depth', 'group_w') if arch[k] is None]
        if missing:
            raise ValueError(
                f'RegNet: arch dict is missing {missing}; valid keys are '
                f'{sorted(_REGNET_DEFAULT_ARCH)}'
            )
        return regnet_to_anynet(arch)


_RESNEXT_DEFAULT_ARCH: dict[str, Any] = dict(
    depths=None,  # blocks per stage, e.g. (3, 4, 6, 3) for ResNeXt-50
    cardinality=32,  # C: groups of the 3x3 conv
    base_width=4,  # d: channels per group in the first stage (doubled every stage)
    widths=(256, 512, 1024, 2048),  # stage output widths (expansion 4)
    stem_w=64,  # 7x7 stem width
)


@MODELS.register_module()
class ResNeXt(AnyNet):
    """ResNeXt (Xie et al., CVPR 2017) on the AnyNet machinery.

    The torchvision/pycls layout: 7x7 stride-2 stem (64) + 3x3 stride-2 max-pool, then
    bottleneck blocks whose 3x3 is a grouped conv of cardinality C and width ``C * d``
    (doubled per stage), stride on the 3x3, expansion 4 (outputs 256/512/1024/2048), a
    1x1 projection shortcut when the shape changes. It is the arch translation
    :func:`resnext_to_anynet`; ``cardinality=1, base_width=64`` gives ResNet.

    Taps: 0: stem@/2 (before the max-pool), 1-4: the four stages @/4../32 (the default).

    Args:
        arch (str | dict): A preset (``'50_32x4d'``, ``'101_32x4d'``, ``'101_64x4d'``,
            ``'152_32x4d'``, ``'101_32x8d'``) or a dict with keys ``depths``,
            ``cardinality`` (32), ``base_width`` (4), ``widths`` ((256, 512, 1024, 2048)),
            ``stem_w`` (64). Default: ``'50_32x4d'``.
        out_indices (Sequence[int] | None): Taps to return; ``None`` = the stage outputs.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``init_cfg`` and the contract's arguments,
            see :class:`AnyNet`.

    Example:
        >>> import torch
        >>> m = ResNeXt('50_32x4d').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 256, 56, 56), (1, 512, 28, 28), (1, 1024, 14, 14), (1, 2048, 7, 7)]
    """

    # Columns: blocks per stage, cardinality C, bottleneck width d (the name's "CxDd")
    arch_settings: ClassVar[dict[str, Any]] = {
        '50_32x4d': dict(depths=(3, 4, 6, 3), cardinality=32, base_width=4),
        '101_32x4d': dict(depths=(3, 4, 23, 3), cardinality=32, base_width=4),
        '101_64x4d': dict(depths=(3, 4, 23, 3), cardinality=64, base_width=4),
        '152_32x4d': dict(depths=(3, 8, 36, 3), cardinality=32, base_width=4),
        '101_32x8d': dict(depths=(3, 4, 23, 3), cardinality=32, base_width=8),
    }
    default_arch: ClassVar[dict[str, Any]] = _RESNEXT_DEFAULT_ARCH

    def __init__(
        self,
        arch: str | dict = '50_32x4d',
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, out_indices=out_indices, **kwargs)

    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        if arch['depths'] is None:
            raise ValueError(
                f'ResNeXt: arch dict needs "depths"; valid keys are '
                f'{sorted(_RESNEXT_DEFAULT_ARCH)}'
            )
        return resnext_to_anynet(arch)


__all__ = [
    'AnyNet',
    'RegNet',
    'ResNeXt',
    'VanillaBlock',
    'ResBasicBlock',
    'ResBottleneckBlock',
    'adjust_block_compatibility',
    'anynet_complexity',
    'generate_regnet',
    'resolve_anynet_arch',
    'regnet_to_anynet',
    'resnext_to_anynet',
]

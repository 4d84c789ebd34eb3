"""The inverted residual (MobileNetV2) block shared by ReXNet, MobileNetV3 and EfficientNet.

Layout: [1x1 expand -> norm -> act] -> kxk depthwise -> norm -> [act] -> [SE] -> [act]
-> 1x1 project -> norm, with one of three shortcuts:

* ``'full'``: ``out + x`` when stride is 1 and channels match (MobileNetV3, EfficientNet);
* ``'partial'``: ``out[:, :c_in] += x`` when stride is 1 and ``c_in <= c_out`` (ReXNet);
* ``'none'``.

The families differ only in where the activations and SE sit, which are arguments here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath

from mmbackbones.complexity import Cx, conv_cx, norm_cx, se_cx

from .activations import build_act
from .conv import ConvNormAct
from .se import SqueezeExcite


def _drop_path_(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """mmcv's ``drop_path`` in training (the same random draw and arithmetic, so the same
    result), in place on ``x``, a fresh tensor that autograd does not need: no new
    full-size tensors instead of two."""
    if drop_prob == 0.0:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = (keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)).floor_()
    return x.div_(keep_prob).mul_(mask)


class InvertedResidual(nn.Module):
    """Inverted residual block with optional expansion, SE and (partial) shortcut.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int): Channels of the expanded (depthwise) part.
        kernel_size (int): Depthwise kernel size. Default: 3.
        stride (int): Depthwise stride. Default: 1.
        dilation (int): Depthwise dilation (``output_stride`` < 32). Default: 1.
        nominal_stride (int | None): The stride the block has at ``output_stride=32``;
            it, not the (possibly dilated) actual stride, decides the shortcut, so a block
            computes the same function at every output stride. Default: ``stride``.
        with_expand (bool | None): Build the 1x1 expansion conv; default when
            ``mid_channels != in_channels``.
        norm_cfg (dict): Norm config for every conv. Default: BN.
        expand_act_cfg (dict | None): Activation after the expansion conv.
        dw_act_cfg (dict | None): Activation after the depthwise conv (before SE).
        se_cfg (dict | None): ``SqueezeExcite`` kwargs (``reduced_channels``, ``act_cfg``,
            ``gate_cfg``, ``norm_cfg``); ``None`` for no SE.
        post_se_act_cfg (dict | None): Activation after SE (ReXNet's ReLU6).
        shortcut (str): ``'full'``, ``'partial'`` or ``'none'``; applied only where the
            shapes allow it (see module docstring). Default: ``'full'``.
        drop_path_rate (float): Stochastic depth on the residual branch. Default: 0.
        padding (str): The depthwise conv's padding mode, ``'symmetric'`` or
            ``'tf_same'`` (TensorFlow's, see :mod:`.padding`). Default: 'symmetric'.

    Example:
        >>> import torch
        >>> m = InvertedResidual(16, 24, 96, stride=2, norm_cfg=dict(type='BN'),
        ...                      expand_act_cfg=dict(type='ReLU'))
        >>> m(torch.rand(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        nominal_stride: int | None = None,
        with_expand: bool | None = None,
        norm_cfg: dict | None = None,
        expand_act_cfg: dict | None = None,
        dw_act_cfg: dict | None = None,
        se_cfg: dict | None = None,
        post_se_act_cfg: dict | None = None,
        shortcut: str = 'full',
        drop_path_rate: float = 0.0,
        padding: str = 'symmetric',
    ) -> None:
        super().__init__()
        if shortcut not in ('full', 'partial', 'none'):
            raise ValueError(f"shortcut must be 'full', 'partial' or 'none', got {shortcut!r}")
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        if with_expand is None:
            with_expand = mid_channels != in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mid_channels = mid_channels
        unstrided = (stride if nominal_stride is None else nominal_stride) == 1
        if shortcut == 'full':
            self.shortcut = 'full' if unstrided and in_channels == out_channels else 'none'
        elif shortcut == 'partial':
            self.shortcut = 'partial' if unstrided and in_channels <= out_channels else 'none'
        else:
            self.shortcut = 'none'

        self.expand = (
            ConvNormAct(in_channels, mid_channels, 1, norm_cfg=norm_cfg, act_cfg=expand_act_cfg)
            if with_expand
            else None
        )
        self.dw = ConvNormAct(
            mid_channels,
            mid_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            groups=mid_channels,
            norm_cfg=norm_cfg,
            act_cfg=dw_act_cfg,
            padding=padding,
        )
        self.se = SqueezeExcite(mid_channels, **se_cfg) if se_cfg else None
        self.post_se_act = build_act(post_se_act_cfg) if post_se_act_cfg else None
        self.project = ConvNormAct(mid_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None

    def split_expansion(self) -> nn.Module:
        """Detach and return the expansion conv; this block then starts at the depthwise.

        Used for ``feature_location='expansion'``: the stride-16 tap is the output of the
        expansion layer of the first stride-32 block (MobileNetV3 paper, SSDLite C4). It
        is an explicit split, not a hook, so the model stays traceable.
        """
        if self.expand is None:
            raise ValueError('this block has no expansion layer to split off')
        if self.shortcut != 'none':
            raise ValueError('cannot split a block with a shortcut (its input is needed)')
        expand, self.expand = self.expand, None
        return expand

    @staticmethod
    def complexity(
        cx: Cx,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        se_channels: int = 0,
        se_norm: bool = False,
    ) -> Cx:
        """Analytic complexity of the block built with these arguments (the expansion conv
        exists when ``mid_channels != in_channels``; SE with ``se_channels`` > 0, a BN
        after its squeeze with ``se_norm``)."""
        if mid_channels != in_channels:
            norm_cx(conv_cx(cx, in_channels, mid_channels, 1), mid_channels)
        conv_cx(cx, mid_channels, mid_channels, kernel_size, stride, groups=mid_channels)
        norm_cx(cx, mid_channels)
        if se_channels:
            se_cx(cx, mid_channels, se_channels, norm=se_norm)
        return norm_cx(conv_cx(cx, mid_channels, out_channels, 1), out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        if self.post_se_act is not None:
            out = self.post_se_act(out)
        out = self.project(out)
        if self.shortcut == 'full':
            if self.drop_path is not None and self.training:
                out = _drop_path_(out, self.drop_path.drop_prob)
            out += x  # in place on project's fresh output: one tensor less per block
            return out
        if self.shortcut == 'partial':
            # ReXNet: add the input to the first c_in output channels. In place when
            # autograd does not record; in training, adding the zero-padded input is
            # cheaper than autograd's bookkeeping of an in-place add on a slice (which
            # copies the whole gradient in backward) or timm's cat of two slices. ONNX
            # export takes the padded form too: the in-place slice add exports as
            # ScatterND, which NNCF cannot quantize around (OpenVINO INT8 ReXNet-1.0:
            # 8.3 ms padded, 9.3 ms with ScatterND; docs/speed.md).
            if torch.onnx.is_in_onnx_export() or (
                torch.is_grad_enabled() and (out.requires_grad or x.requires_grad)
            ):
                return out + F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))
            out[:, : self.in_channels] += x
        return out

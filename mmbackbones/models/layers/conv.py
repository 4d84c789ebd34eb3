"""Conv -> norm -> activation as a plain ``nn.Sequential`` (fast, fusable, traceable)."""

from __future__ import annotations

import torch.nn as nn
from mmcv.cnn import build_norm_layer

from .activations import build_act
from .padding import conv_padding


class ConvNormAct(nn.Sequential):
    """``conv`` -> ``bn`` -> ``act`` with 'same' padding for odd kernels and dilation.

    Children are named ``conv``, ``bn`` and ``act`` (the last two only when configured),
    which keeps state-dict keys stable and lets ``mmcv.cnn.fuse_conv_bn`` fold them. With
    ``padding='tf_same'`` a strided conv is preceded by a parameter-free ``pad``
    (:class:`~.padding.TFSamePad`, TensorFlow's asymmetric padding) and has none itself.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size. Default: 1.
        stride (int): Stride. Default: 1.
        dilation (int): Dilation. Default: 1.
        groups (int): Groups; ``in_channels`` gives a depthwise conv. Default: 1.
        bias (bool | None): Conv bias; default is ``True`` only without a norm layer.
        norm_cfg (dict | None): mmcv norm config, ``None`` for no norm. Default: None.
        act_cfg (dict | None): Activation config, ``None`` for none. Default: None.
        padding (int | str | None): Explicit padding, or a mode of
            :data:`~.padding.PADDINGS`: ``'symmetric'`` (the default, ``None``: keeps the
            size at stride 1) or ``'tf_same'`` (TensorFlow's ``'SAME'``).

    Example:
        >>> import torch
        >>> m = ConvNormAct(3, 16, 3, stride=2, norm_cfg=dict(type='BN'),
        ...                 act_cfg=dict(type='ReLU'))
        >>> m(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool | None = None,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        padding: int | str | None = None,
    ) -> None:
        super().__init__()
        if padding is None or isinstance(padding, str):
            padding, pad = conv_padding(kernel_size, stride, dilation, padding or 'symmetric')
            if pad is not None:
                self.pad = pad
        if bias is None:
            bias = norm_cfg is None
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        if norm_cfg is not None:
            self.bn = build_norm_layer(norm_cfg, out_channels)[1]
        if act_cfg is not None:
            self.act = build_act(act_cfg)
        self.out_channels = out_channels

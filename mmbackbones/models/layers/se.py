"""Squeeze-and-excitation, in the variants the papers use.

* ReXNet: conv -> BN -> ReLU -> conv -> sigmoid, reduction 1/12 of the block's dw channels.
* MobileNetV3: conv -> ReLU -> conv -> hard-sigmoid, 1/4 of the expansion (rounded to 8).
* EfficientNet: conv -> SiLU -> conv -> sigmoid, 1/4 of the block's *input* channels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from .activations import build_act


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """The SE's global average, ``(N, C, 1, 1)``. Exported to ONNX as
    ``GlobalAveragePool`` rather than ``ReduceMean``: ONNX Runtime's INT8 quantization
    covers the former (``QLinearGlobalAveragePool``) and leaves the latter in float, a
    dequantize / quantize round trip per SE (measured: EfficientNet-B0 INT8 in ONNX
    Runtime 9.6 ms instead of 12.0, docs/speed.md). PyTorch itself keeps ``mean``.
    """
    if torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, 1)
    return x.mean((2, 3), keepdim=True)


class SqueezeExcite(nn.Module):
    """Channel gating ``x * gate(fc2(act(norm(fc1(avgpool(x))))))``.

    Args:
        channels (int): Channels of the gated tensor.
        reduced_channels (int): Channels of the squeeze (bottleneck) layer.
        act_cfg (dict): Activation after the squeeze. Default: ReLU.
        gate_cfg (dict): Gate activation. Default: Sigmoid.
        norm_cfg (dict | None): Norm after the squeeze conv (ReXNet uses BN). Default: None.

    Example:
        >>> import torch
        >>> SqueezeExcite(64, 16)(torch.rand(2, 64, 7, 7)).shape
        torch.Size([2, 64, 7, 7])
    """

    def __init__(
        self,
        channels: int,
        reduced_channels: int,
        act_cfg: dict | None = None,
        gate_cfg: dict | None = None,
        norm_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced_channels, 1, bias=True)
        self.bn = build_norm_layer(norm_cfg, reduced_channels)[1] if norm_cfg else nn.Identity()
        self.act = build_act(act_cfg if act_cfg is not None else dict(type='ReLU', inplace=True))
        self.fc2 = nn.Conv2d(reduced_channels, channels, 1, bias=True)
        self.gate = build_act(gate_cfg if gate_cfg is not None else dict(type='Sigmoid'))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = squeeze(x)
        s = self.fc2(self.act(self.bn(self.fc1(s))))
        return x * self.gate(s)

"""LR-ASPP, the segmentation head of "Searching for MobileNetV3" (Howard et al., ICCV 2019).

Lite Reduced Atrous Spatial Pyramid Pooling (paper section 6.3, Fig. 10), as torchvision's
``LRASPPHead``:

* on the high-level features (output stride 16, atrous last stage): a 1x1 conv with
  ``channels`` (128) filters -> BN -> ReLU, gated (multiplied) by a pooled branch:
  average pooling -> 1x1 conv to ``channels`` -> sigmoid, "similar to Squeeze-and-Excite";
* the gated features are upsampled bilinearly to the low-level skip (stride 8) and
  classified by a 1x1 conv; the low-level features get their own 1x1 classifier, and the two
  logits are added.

Unlike mmseg's ``LRASPPHead`` (fixed ``AvgPool2d(49, stride=(16, 20))``, so the top feature
map must be at least 49x49 px), the pooled branch works at any input size: global average
pooling by default (torchvision), or the paper's large-kernel pooling with the kernel
clamped to the feature map (``pool_kernel=(49, 49), pool_stride=(16, 20)``). The head is
registered as ``mmbackbones.AdaptiveLRASPPHead``, distinct from mmseg's ``LRASPPHead``.

This module needs mmseg (the head subclasses its ``BaseDecodeHead`` to plug into
``EncoderDecoder``); the backbones never import it. Configs load it with
``custom_imports = dict(imports=['mmbackbones.models', 'mmbackbones.models.heads'])``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from mmbackbones.registry import MODELS


@MODELS.register_module()
class AdaptiveLRASPPHead(BaseDecodeHead):
    """LR-ASPP head (MobileNetV3 paper, section 6.3) with input-size-agnostic pooling.

    Takes two backbone features, ``(low, high)``: the stride-8 skip and the stride-16
    (or 32) top features. Output: logits at the low-level (stride-8) resolution;
    ``EncoderDecoder`` upsamples them to the input size.

    Args:
        in_channels (Sequence[int]): Channels of ``(low, high)``.
        channels (int): Filters of the 1x1 conv branch and of the gate (paper: 128).
        in_index (Sequence[int]): Indices of ``(low, high)`` in the backbone outputs.
            Default: (0, 1).
        pool_kernel (int | tuple[int, int] | None): ``None``: global average pooling for the
            gate (torchvision). Otherwise the paper's large-kernel average pooling, e.g.
            ``(49, 49)``, each side clamped to the feature map, so any input size works;
            the pooled map is upsampled bilinearly to the features. Default: None.
        pool_stride (int | tuple[int, int] | None): Stride of the large-kernel pooling
            (paper/TF and mmseg: ``(16, 20)``); defaults to ``pool_kernel``.
        norm_cfg (dict): Norm of the 1x1 conv branch. Default: BN.
        **kwargs: ``BaseDecodeHead`` arguments (``num_classes``, ``dropout_ratio``,
            ``act_cfg``, ``align_corners``, ``loss_decode``, ...). ``input_transform`` is
            always ``'multiple_select'``.

    Example:
        >>> import torch
        >>> head = AdaptiveLRASPPHead(in_channels=(40, 480), channels=128, num_classes=19)
        >>> low, high = torch.rand(1, 40, 64, 128), torch.rand(1, 480, 32, 64)
        >>> tuple(head.eval()((low, high)).shape)
        (1, 19, 64, 128)
        >>> tuple(head((torch.rand(1, 40, 9, 13), torch.rand(1, 480, 5, 7))).shape)
        (1, 19, 9, 13)
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 128,
        in_index: Sequence[int] = (0, 1),
        pool_kernel: int | tuple[int, int] | None = None,
        pool_stride: int | tuple[int, int] | None = None,
        norm_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        transform = kwargs.pop('input_transform', 'multiple_select')
        if transform != 'multiple_select':
            raise ValueError(
                f"AdaptiveLRASPPHead: input_transform must be 'multiple_select' (it takes "
                f'the (low, high) features), got {transform!r}'
            )
        if not (isinstance(in_channels, (list, tuple)) and len(in_channels) == 2):
            raise ValueError(
                'AdaptiveLRASPPHead: in_channels must be the channels of the (low, high) '
                f'features, e.g. (40, 480), got {in_channels!r}'
            )
        if not (isinstance(in_index, (list, tuple)) and len(in_index) == 2):
            raise ValueError(
                'AdaptiveLRASPPHead: in_index must select the (low, high) features, '
                f'e.g. (0, 1), got {in_index!r}'
            )
        if norm_cfg is None:
            norm_cfg = dict(type='BN', requires_grad=True)
        super().__init__(
            in_channels=tuple(in_channels),
            channels=channels,
            in_index=tuple(in_index),
            input_transform='multiple_select',
            norm_cfg=norm_cfg,
            **kwargs,
        )
        self.pool_kernel = _pair(pool_kernel)
        self.pool_stride = _pair(pool_stride) if pool_stride is not None else self.pool_kernel
        low_channels, high_channels = self.in_channels
        # 1x1 conv branch: conv -> BN -> ReLU (paper Fig. 10), no bias before BN
        self.conv = ConvModule(
            high_channels,
            channels,
            1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg,
        )
        # pooled branch: pool -> 1x1 conv -> sigmoid; the pooling is applied in forward
        self.gate = nn.Conv2d(high_channels, channels, 1, bias=False)
        # the low-level skip: its own classifier, added to conv_seg's logits
        self.low_classifier = nn.Conv2d(low_channels, self.out_channels, 1)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_kernel is None:
            return x.mean((2, 3), keepdim=True)  # exports as ReduceMean: any input size
        h, w = x.shape[2:]
        kernel = (min(self.pool_kernel[0], h), min(self.pool_kernel[1], w))
        return F.avg_pool2d(x, kernel, self.pool_stride)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        low, high = self._transform_inputs(inputs)
        gate = torch.sigmoid(self.gate(self._pool(high)))
        if self.pool_kernel is not None and gate.shape[2:] != high.shape[2:]:
            gate = F.interpolate(
                gate, size=high.shape[2:], mode='bilinear', align_corners=self.align_corners
            )
        x = self.conv(high) * gate
        x = F.interpolate(x, size=low.shape[2:], mode='bilinear', align_corners=self.align_corners)
        return self.cls_seg(x) + self.low_classifier(low)


def _pair(v: int | Sequence[int] | None) -> tuple[int, int] | None:
    if v is None:
        return None
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2 or not all(isinstance(i, int) and i > 0 for i in v):
        raise ValueError(f'AdaptiveLRASPPHead: expected an int or a pair of ints, got {v!r}')
    return (int(v[0]), int(v[1]))

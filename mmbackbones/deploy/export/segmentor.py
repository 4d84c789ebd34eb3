"""mmseg ``EncoderDecoder`` segmentors (LR-ASPP and every other decode head) as one
exportable graph: normalisation, backbone, neck, decode head and the bilinear resize of
the logits to the input size, as ``EncoderDecoder.predict`` in ``whole`` test mode
(``BaseDecodeHead.predict_by_feat``).

Input ``input`` ``(1, 3, H, W)`` raw image (see :mod:`.common`); output ``seg_logits``
``(1, C, H, W)``. What stays outside, in :class:`mmbackbones.deploy.Runtime`, as
``BaseSegmentor.postprocess_result``: cropping the padding, the resize to the original
image size (which varies per image) and the argmax.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import Normalize


class SegmentorGraph(nn.Module):
    """An mmseg ``EncoderDecoder`` in ``whole`` inference mode as one graph.

    Args:
        model (nn.Module): The segmentor, in eval mode with its weights.
        shape (tuple[int, int]): The fixed input ``(H, W)``.

    Example:
        >>> import torch
        >>> from mmbackbones.apis import init_model
        >>> m = init_model('configs/mobilenetv3-small_lraspp_cityscapes.py')  # doctest: +SKIP
        >>> SegmentorGraph(m, (64, 128))(torch.zeros(1, 3, 64, 128)).shape  # doctest: +SKIP
        torch.Size([1, 19, 64, 128])
    """

    output_names = ('seg_logits',)

    def __init__(self, model: nn.Module, shape: tuple[int, int]) -> None:
        super().__init__()
        from mmseg.models.segmentors import EncoderDecoder

        if not isinstance(model, EncoderDecoder):
            raise ValueError(
                f'{type(model).__name__}: whole-model export covers mmseg EncoderDecoder '
                'segmentors'
            )
        mode = (model.test_cfg or {}).get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(
                f"test_cfg.mode={mode!r}: export covers mode='whole' (export the crop size "
                'and slide in the caller instead)'
            )
        self.normalize = Normalize(model.data_preprocessor)
        self.backbone = model.backbone
        self.neck = model.neck if model.with_neck else None
        self.decode_head = model.decode_head
        self.align_corners = bool(model.decode_head.align_corners)
        self.shape = tuple(shape)

    def forward(self, image: Tensor) -> Tensor:
        feats = self.backbone(self.normalize(image))
        if self.neck is not None:
            feats = self.neck(feats)
        logits = self.decode_head(feats)
        return F.interpolate(
            logits, size=self.shape, mode='bilinear', align_corners=self.align_corners
        )

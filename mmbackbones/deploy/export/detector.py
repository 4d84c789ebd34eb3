"""Whole mmdet detectors as exportable graphs: normalisation, backbone, neck, heads, box
decoding and NMS, for one image at a fixed input size.

Two graph forms cover the detector configs of this project:

* :class:`DenseDetectorGraph`: single-stage anchor heads (SSD / SSDLite, RetinaNet-style
  heads): mmdet's ``BaseDenseHead.predict_by_feat`` (per-level top-k over (prior, class)
  pairs above ``score_thr``, decoding, ``min_bbox_size``, class-aware NMS,
  ``max_per_img``).
* :class:`TwoStageGraph`: Faster / Mask R-CNN with ``StandardRoIHead``: the RPN's
  proposals (``RPNHead.predict_by_feat``: per-level top-k, decoding, per-level NMS), RoI
  features by the level mapping of ``SingleRoIExtractor`` (ONNX ``RoiAlign``), the box
  head with ``multiclass_nms`` and, for Mask R-CNN, the mask head on the detections with
  the predicted class's mask probability (``sigmoid``) selected.

Inputs: ``input`` ``(1, 3, H, W)`` raw image (see :mod:`.common`) and ``img_shape``
``(2,)`` float ``(h, w)`` of the image inside it (the rest is padding): boxes are clipped
to it, as mmdet clips to ``img_meta['img_shape']``. Outputs: ``dets`` ``(n, 5)`` boxes
``x1, y1, x2, y2`` in input pixels plus score, ``labels`` ``(n,)`` int64, by decreasing
score; Mask R-CNN adds ``masks`` ``(n, M, M)`` (mask probabilities in each box). What
stays outside the graph, in :class:`mmbackbones.deploy.Runtime`: dividing boxes by the
resize factor and pasting the ``M x M`` masks into the original image, whose size varies
per image (mmdet's ``FCNMaskHead.predict_by_feat``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from .common import Normalize
from .nms import (
    batched_nms,
    box_size_mask,
    decode_deltas,
    filter_scores_and_topk,
    multiclass_nms,
    supported_coder,
    topk_sorted,
)


def _cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if cfg is not None else default


def _nms_iou(cfg: Any, where: str) -> float:
    nms = _cfg_get(cfg, 'nms')
    if not nms or nms.get('type', 'nms') != 'nms':
        raise ValueError(
            f'{where}: whole-model export implements test_cfg nms=dict(type="nms", ...); '
            f'got {nms!r}'
        )
    if nms.get('class_agnostic', False):
        raise ValueError(f'{where}: class_agnostic NMS is not supported by the export')
    return float(nms['iou_threshold'])


def _level_scores(cls_score: Tensor, head: nn.Module) -> Tensor:
    """``(1, A * C', h, w)`` -> ``(h * w * A, C)`` class scores, as the dense heads'
    ``_predict_by_feat_single`` (sigmoid, or softmax without the background column)."""
    flat = cls_score[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
    if head.use_sigmoid_cls:
        return flat.sigmoid()
    return flat.softmax(-1)[:, :-1]


def _level_deltas(bbox_pred: Tensor) -> Tensor:
    return bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)


class _Trunk(nn.Module):
    """Normalisation, backbone and neck of a detector."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.normalize = Normalize(model.data_preprocessor)
        self.backbone = model.backbone
        self.neck = model.neck if getattr(model, 'with_neck', False) else None

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        feats = self.backbone(self.normalize(image))
        return tuple(self.neck(feats) if self.neck is not None else feats)


def _register_priors(graph: nn.Module, head: nn.Module, shape: tuple[int, int]) -> None:
    """Store ``head``'s anchors at the export size as buffers ``priors{i}`` of ``graph``
    (constants of the exported graph), and their level count as ``num_levels``."""
    with torch.no_grad():
        cls_scores = head(graph.trunk(torch.zeros(1, 3, *shape)))[0]
    sizes = [tuple(c.shape[-2:]) for c in cls_scores]
    priors = head.prior_generator.grid_priors(sizes, dtype=torch.float32, device='cpu')
    graph.num_levels = len(priors)
    for i, p in enumerate(priors):
        graph.register_buffer(f'priors{i}', p)


def _final_nms(
    boxes: Tensor, scores: Tensor, idxs: Tensor, min_size: float, iou: float, max_num: int
) -> Tensor:
    """mmdet's dense-head ``_bbox_post_process``: the ``min_bbox_size`` filter (when
    ``>= 0``), NMS within each ``idxs`` group, the first ``max_num`` (when ``> 0``).
    Returns indices into ``boxes``, by decreasing score."""
    if min_size >= 0:
        keep = box_size_mask(boxes, min_size).nonzero().reshape(-1)
        keep = keep[batched_nms(boxes[keep], scores[keep], idxs[keep], iou)]
    else:
        keep = batched_nms(boxes, scores, idxs, iou)
    return keep[:max_num] if max_num > 0 else keep


class DenseDetectorGraph(nn.Module):
    """A single-stage anchor detector (mmdet ``SingleStageDetector`` with an
    ``AnchorHead`` subclass, e.g. SSDLite's ``SSDHead``) as one exportable graph.

    Args:
        model (nn.Module): The detector, in eval mode with its weights.
        shape (tuple[int, int]): The fixed input ``(H, W)``.

    Example:
        >>> from mmbackbones.apis import init_model
        >>> m = init_model('configs/mobilenetv3-small_ssdlite.py')  # doctest: +SKIP
        >>> dets, labels = DenseDetectorGraph(m, (320, 320))(
        ...     torch.zeros(1, 3, 320, 320), torch.tensor([320., 320.]))  # doctest: +SKIP
    """

    output_names = ('dets', 'labels')

    def __init__(self, model: nn.Module, shape: tuple[int, int]) -> None:
        super().__init__()
        head = model.bbox_head
        where = type(head).__name__
        supported_coder(head.bbox_coder, where)
        if getattr(head, 'loss_cls', None) is not None and getattr(
            head.loss_cls, 'custom_cls_channels', False
        ):
            raise ValueError(f'{where}: custom class channels are not supported by the export')
        self.trunk = _Trunk(model)
        self.head = head
        cfg = head.test_cfg
        self.nms_pre = int(_cfg_get(cfg, 'nms_pre', -1))
        self.score_thr = float(_cfg_get(cfg, 'score_thr', 0.0))
        self.min_bbox_size = float(_cfg_get(cfg, 'min_bbox_size', -1))
        self.max_per_img = int(_cfg_get(cfg, 'max_per_img', -1))
        self.iou = _nms_iou(cfg, f'{where}.test_cfg')
        _register_priors(self, head, shape)

    def forward(self, image: Tensor, img_shape: Tensor) -> tuple[Tensor, Tensor]:
        cls_scores, bbox_preds = self.head(self.trunk(image))
        boxes, scores, labels = [], [], []
        for i in range(self.num_levels):
            s, lab, idx = filter_scores_and_topk(
                _level_scores(cls_scores[i], self.head), self.score_thr, self.nms_pre
            )
            deltas = _level_deltas(bbox_preds[i])[idx]
            priors = getattr(self, f'priors{i}')[idx]
            boxes.append(decode_deltas(priors, deltas, self.head.bbox_coder, img_shape))
            scores.append(s)
            labels.append(lab)
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        keep = _final_nms(boxes, scores, labels, self.min_bbox_size, self.iou, self.max_per_img)
        return torch.cat([boxes[keep], scores[keep, None]], dim=1), labels[keep]


def _check_roi_layer(layer: nn.Module, where: str) -> None:
    if getattr(layer, 'pool_mode', 'avg') != 'avg':
        raise ValueError(f'{where}: RoIAlign pool_mode {layer.pool_mode!r}; export needs "avg"')
    for attr in ('output_size', 'spatial_scale', 'sampling_ratio', 'aligned'):
        if not hasattr(layer, attr):
            raise ValueError(f'{where}: {type(layer).__name__} is not an mmcv RoIAlign')


def extract_roi_feats(extractor: nn.Module, feats: tuple[Tensor, ...], boxes: Tensor) -> Tensor:
    """mmdet's ``SingleRoIExtractor.forward`` for one image's boxes ``(n, 4)``.

    Each box is pooled from the level ``floor(log2(sqrt(area) / finest_scale + 1e-6))``
    (clamped to the levels), with ``torchvision.ops.roi_align`` in place of mmcv's
    ``RoIAlign`` (the same bilinear sampling, ``aligned`` = ONNX RoiAlign's
    ``half_pixel`` mode). The per-level results are concatenated and put back in box
    order by the inverse of the concatenated indices.
    """
    from torchvision.ops import roi_align

    layers = extractor.roi_layers
    feats = feats[: len(layers)]
    rois = torch.cat([torch.zeros_like(boxes[:, :1]), boxes], dim=1)

    def pool(i: int, r: Tensor) -> Tensor:
        layer = layers[i]
        return roi_align(
            feats[i],
            r,
            output_size=tuple(layer.output_size),
            spatial_scale=float(layer.spatial_scale),
            sampling_ratio=int(layer.sampling_ratio),
            aligned=bool(layer.aligned),
        )

    if len(feats) == 1:
        return pool(0, rois)
    scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    level = torch.floor(torch.log2(scale / extractor.finest_scale + 1e-6))
    level = level.clamp(min=0, max=len(feats) - 1).long()
    pooled, order = [], []
    for i in range(len(feats)):
        inds = (level == i).nonzero().reshape(-1)
        pooled.append(pool(i, rois[inds]))
        order.append(inds)
    return torch.cat(pooled)[torch.argsort(torch.cat(order))]


class TwoStageGraph(nn.Module):
    """Faster / Mask R-CNN (mmdet ``TwoStageDetector`` with ``RPNHead`` and
    ``StandardRoIHead``) as one exportable graph.

    Args:
        model (nn.Module): The detector, in eval mode with its weights.
        shape (tuple[int, int]): The fixed input ``(H, W)``.

    Example:
        >>> from mmbackbones.apis import init_model
        >>> m = init_model('configs/rexnet_maskrcnn_fpn.py')  # doctest: +SKIP
        >>> g = TwoStageGraph(m, (800, 1216))  # doctest: +SKIP
        >>> g.output_names  # doctest: +SKIP
        ('dets', 'labels', 'masks')
    """

    def __init__(self, model: nn.Module, shape: tuple[int, int]) -> None:
        super().__init__()
        rpn, roi = model.rpn_head, model.roi_head
        if type(roi).__name__ != 'StandardRoIHead' or getattr(roi, 'shared_head', None):
            raise ValueError(
                f'{type(roi).__name__}: whole-model export covers StandardRoIHead '
                '(Faster / Mask R-CNN) without a shared head'
            )
        supported_coder(rpn.bbox_coder, 'RPNHead')
        supported_coder(roi.bbox_head.bbox_coder, type(roi.bbox_head).__name__)
        if getattr(roi.bbox_head, 'custom_cls_channels', False):
            raise ValueError('custom class channels are not supported by the export')
        for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
            for layer in getattr(roi, name, None).roi_layers if hasattr(roi, name) else []:
                _check_roi_layer(layer, f'roi_head.{name}')
        self.trunk = _Trunk(model)
        self.rpn, self.roi = rpn, roi
        rpn_cfg, rcnn_cfg = rpn.test_cfg, roi.test_cfg
        self.rpn_nms_pre = int(_cfg_get(rpn_cfg, 'nms_pre', -1))
        self.rpn_min_size = float(_cfg_get(rpn_cfg, 'min_bbox_size', -1))
        self.rpn_max = int(_cfg_get(rpn_cfg, 'max_per_img', -1))
        self.rpn_iou = _nms_iou(rpn_cfg, 'test_cfg.rpn')
        self.score_thr = float(_cfg_get(rcnn_cfg, 'score_thr', 0.0))
        self.max_per_img = int(_cfg_get(rcnn_cfg, 'max_per_img', -1))
        self.iou = _nms_iou(rcnn_cfg, 'test_cfg.rcnn')
        self.with_mask = bool(getattr(roi, 'with_mask', False))
        self.output_names = ('dets', 'labels') + (('masks',) if self.with_mask else ())
        _register_priors(self, rpn, shape)

    def proposals(self, feats: tuple[Tensor, ...], img_shape: Tensor) -> Tensor:
        """``RPNHead.predict_by_feat`` for one image: ``(n, 4)`` boxes."""
        cls_scores, bbox_preds = self.rpn(feats)
        boxes, scores, levels = [], [], []
        for i in range(self.num_levels):
            s = _level_scores(cls_scores[i], self.rpn).reshape(-1)
            s, idx = topk_sorted(s, self.rpn_nms_pre)
            deltas = _level_deltas(bbox_preds[i])[idx]
            priors = getattr(self, f'priors{i}')[idx]
            boxes.append(decode_deltas(priors, deltas, self.rpn.bbox_coder, img_shape))
            scores.append(s)
            levels.append(torch.full_like(s, i, dtype=torch.long))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        return boxes[
            _final_nms(boxes, scores, levels, self.rpn_min_size, self.rpn_iou, self.rpn_max)
        ]

    def detect(
        self, feats: tuple[Tensor, ...], proposals: Tensor, img_shape: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``StandardRoIHead.predict_bbox`` (``bbox_head.predict_by_feat``) for one
        image: boxes ``(m, 4)``, scores, labels."""
        head = self.roi.bbox_head
        roi_feats = extract_roi_feats(self.roi.bbox_roi_extractor, feats, proposals)
        cls_score, bbox_pred = head(roi_feats)
        scores = cls_score.softmax(-1)
        num_classes = 1 if head.reg_class_agnostic else head.num_classes
        # each proposal once per regressed class, by broadcasting (n, k, 4)
        rois = proposals[:, None, :] + torch.zeros(1, num_classes, 1, dtype=proposals.dtype)
        boxes = decode_deltas(
            rois.reshape(-1, 4), bbox_pred.reshape(-1, 4), head.bbox_coder, img_shape
        )
        boxes = boxes.reshape(-1, num_classes, 4)
        if head.reg_class_agnostic:
            boxes = boxes + torch.zeros(1, head.num_classes, 1, dtype=boxes.dtype)
        return multiclass_nms(boxes, scores, self.score_thr, self.iou, self.max_per_img)

    def masks(self, feats: tuple[Tensor, ...], boxes: Tensor, labels: Tensor) -> Tensor:
        """The mask head on the detections: ``(m, M, M)`` probabilities of each
        detection's class (``FCNMaskHead``: sigmoid, then the label's channel)."""
        mask_feats = extract_roi_feats(self.roi.mask_roi_extractor, feats, boxes)
        logits = self.roi.mask_head(mask_feats)
        if logits.shape[1] > 1:  # one map per class: take the detection's class
            index = labels[:, None, None, None] + torch.zeros_like(logits[:, :1], dtype=torch.long)
            logits = logits.gather(1, index)
        return logits[:, 0].sigmoid()

    def forward(self, image: Tensor, img_shape: Tensor) -> tuple[Tensor, ...]:
        feats = self.trunk(image)
        boxes, scores, labels = self.detect(feats, self.proposals(feats, img_shape), img_shape)
        dets = torch.cat([boxes, scores[:, None]], dim=1)
        if not self.with_mask:
            return dets, labels
        return dets, labels, self.masks(feats, boxes, labels)


def build_detector_graph(model: nn.Module, shape: tuple[int, int]) -> nn.Module:
    """The exportable graph of an mmdet detector (see the module doc for what is covered).

    Raises:
        ValueError: A detector or head the export does not cover, named.
    """
    from mmdet.models.dense_heads import AnchorHead
    from mmdet.models.detectors import SingleStageDetector, TwoStageDetector

    if isinstance(model, TwoStageDetector) and type(model.rpn_head).__name__ == 'RPNHead':
        return TwoStageGraph(model, shape)
    if isinstance(model, SingleStageDetector) and isinstance(model.bbox_head, AnchorHead):
        return DenseDetectorGraph(model, shape)
    head = getattr(model, 'bbox_head', None) or getattr(model, 'rpn_head', None)
    raise ValueError(
        f'{type(model).__name__} with {type(head).__name__}: whole-model export covers '
        'single-stage anchor detectors (SSD / SSDLite) and two-stage RPN + StandardRoIHead '
        'detectors (Faster / Mask R-CNN)'
    )

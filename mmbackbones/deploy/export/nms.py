"""Traceable detection post-processing: box decoding, clipping, score top-k and NMS.

Each function restates the semantics of the mmdet / mmcv function named in its docstring
on plain tensors, in a form that ``torch.onnx.export`` (TorchScript tracer) records as
standard ONNX ops: no Python control flow on tensor values, image sizes as tensors (so
the clip follows the ``img_shape`` input of the exported graph), and non-maximum
suppression through ``torchvision.ops.nms``, whose ONNX symbolic (registered when
torchvision is imported, ``torchvision/ops/_register_onnx_ops.py``) is the standard
``NonMaxSuppression`` op. In eager mode the same code runs torchvision's NMS kernel,
which suppresses on ``IoU > threshold`` like mmcv's ``nms`` and ONNX's op.
"""

from __future__ import annotations

import math

import torch
import torchvision  # imported here, not inside a trace: it registers the ONNX symbolics
from torch import Tensor

#: ``DeltaXYWHBBoxCoder.decode``'s default ``wh_ratio_clip`` (no head passes another)
WH_RATIO_CLIP = 16 / 1000


def _nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """``torchvision.ops.nms``: indices of the kept boxes, by decreasing score."""
    return torchvision.ops.nms(boxes, scores, float(iou_threshold))


def supported_coder(coder: object, where: str) -> None:
    """Raise ``ValueError`` unless ``coder`` is mmdet's ``DeltaXYWHBBoxCoder`` (the box
    coder of every SSD / R-CNN config), the one :func:`decode_deltas` restates."""
    name = type(coder).__name__
    if name != 'DeltaXYWHBBoxCoder':
        raise ValueError(
            f'{where}: whole-model export decodes boxes of DeltaXYWHBBoxCoder; '
            f'this model uses {name}'
        )


def decode_deltas(priors: Tensor, deltas: Tensor, coder: object, img_hw: Tensor) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (``delta2bbox``) for one image.

    Args:
        priors (Tensor): ``(n, 4)`` anchors or RoIs, ``x1, y1, x2, y2``.
        deltas (Tensor): ``(n, 4)`` regression outputs.
        coder: The head's ``DeltaXYWHBBoxCoder`` (means, stds, clip_border,
            add_ctr_clamp, ctr_clamp).
        img_hw (Tensor): ``(2,)`` float, the image's ``(h, w)``: boxes are clipped to it
            when the coder clips.

    Returns:
        Tensor: ``(n, 4)`` boxes.

    Example:
        >>> from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        >>> boxes = decode_deltas(torch.tensor([[0., 0., 10., 10.]]), torch.zeros(1, 4),
        ...                       DeltaXYWHBBoxCoder(), torch.tensor([8., 8.]))
        >>> boxes.tolist()
        [[0.0, 0.0, 8.0, 8.0]]
    """
    means = deltas.new_tensor(coder.means)
    stds = deltas.new_tensor(coder.stds)
    d = deltas * stds + means
    pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
    pwh = priors[:, 2:] - priors[:, :2]
    dxy_wh = pwh * d[:, :2]
    max_ratio = abs(math.log(WH_RATIO_CLIP))
    if coder.add_ctr_clamp:
        dxy_wh = dxy_wh.clamp(min=-coder.ctr_clamp, max=coder.ctr_clamp)
        dwh = d[:, 2:].clamp(max=max_ratio)
    else:
        dwh = d[:, 2:].clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    return clip_boxes(boxes, img_hw) if coder.clip_border else boxes


def clip_boxes(boxes: Tensor, img_hw: Tensor) -> Tensor:
    """Clamp ``x`` to ``[0, w]`` and ``y`` to ``[0, h]`` (``img_hw`` a ``(2,)`` tensor)."""
    h, w = img_hw[0], img_hw[1]
    upper = torch.stack([w, h, w, h]).to(boxes.dtype)
    return torch.minimum(boxes.clamp(min=0), upper)


def box_size_mask(boxes: Tensor, min_size: float) -> Tensor:
    """mmdet's ``min_bbox_size`` filter: width and height both ``> min_size``."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def sort_desc(scores: Tensor) -> tuple[Tensor, Tensor]:
    """A 1-d ``scores`` by decreasing value, equal scores in index order: a stable sort in
    PyTorch, ONNX ``TopK`` when exporting (whose spec orders ties by index; ONNX Runtime
    does). mmdet / mmcv sort with PyTorch's unstable sort, whose order among exactly equal
    scores is arbitrary: no other implementation can follow it there."""
    if torch.onnx.is_in_onnx_export():
        return scores.sort(descending=True)  # TopK; the exporter has no stable sort
    return scores.sort(descending=True, stable=True)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """mmcv's ``batched_nms`` (class-aware, ``class_agnostic=False``): NMS within each
    value of ``idxs``, by offsetting each group's boxes by ``idx * (max coordinate + 1)``.

    The boxes are ordered by :func:`sort_desc` first and NMS gets their ranks as scores,
    so that equal scores are visited in one defined order in every runtime (each runtime's
    NMS orders ties its own way).

    Args:
        boxes (Tensor): ``(n, 4)``.
        scores (Tensor): ``(n,)``.
        idxs (Tensor): ``(n,)`` integer group (class or level) of each box.
        iou_threshold (float): Boxes overlapping a kept one by more are dropped.

    Returns:
        Tensor: Indices of the kept boxes, by decreasing score.

    Example:
        >>> b = torch.tensor([[0., 0., 10., 10.], [1., 0., 10., 10.], [1., 0., 10., 10.]])
        >>> batched_nms(b, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 1]), 0.5)
        tensor([0, 2])
    """
    order = sort_desc(scores)[1]
    boxes, idxs = boxes[order], idxs[order]
    # the maximum over boxes and a 0 (a graph must not reduce an empty tensor; boxes of
    # every detector here are clipped to the image, so >= 0 and the 0 changes nothing)
    top = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = idxs.to(boxes.dtype) * (top + 1)
    rank = -torch.ones_like(scores).cumsum(0)  # strictly decreasing along ``order``
    return order[_nms(boxes + offsets[:, None], rank, iou_threshold)]


def topk_sorted(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` largest of a 1-d ``scores`` (all of them when ``k <= 0`` or ``k >=`` their
    number, which is static at a fixed input size), by :func:`sort_desc` order."""
    values, index = sort_desc(scores)
    return (values[:k], index[:k]) if 0 < k < scores.shape[0] else (values, index)


def filter_scores_and_topk(
    scores: Tensor, score_thr: float, topk: int
) -> tuple[Tensor, Tensor, Tensor]:
    """mmdet's ``filter_scores_and_topk`` on ``(n, c)`` scores: the at most ``topk``
    highest (prior, class) pairs with a score ``> score_thr``, by decreasing score.

    The top-k is taken over all pairs first, then thresholded: the same set as mmdet's
    threshold-then-top-k (the pairs above the threshold are the highest ones), with a
    static ``k``.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``scores``, ``labels`` (class index) and the
        prior index of each kept pair.

    Example:
        >>> s = torch.tensor([[0.1, 0.7], [0.6, 0.01]])
        >>> [t.tolist() for t in filter_scores_and_topk(s, 0.05, 2)]
        [[0.699999988079071, 0.6000000238418579], [1, 0], [0, 1]]
    """
    num_classes = scores.shape[1]
    top, flat = topk_sorted(scores.reshape(-1), topk)
    keep = (top > score_thr).nonzero().reshape(-1)
    flat = flat[keep]
    labels = flat % num_classes
    return top[keep], labels, torch.div(flat, num_classes, rounding_mode='floor')


def multiclass_nms(
    boxes: Tensor, scores: Tensor, score_thr: float, iou_threshold: float, max_num: int
) -> tuple[Tensor, Tensor, Tensor]:
    """mmdet's ``multiclass_nms`` (R-CNN box head): per-class boxes ``(n, c, 4)`` and
    softmax scores ``(n, c + 1)`` (background last) -> at most ``max_num`` detections.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``boxes (m, 4)``, ``scores (m,)``, ``labels (m,)``,
        by decreasing score.
    """
    num_classes = scores.shape[1] - 1
    boxes = boxes.reshape(-1, 4)
    scores = scores[:, :num_classes]
    # class of each (box, class) pair by broadcasting, not from the (dynamic) box count
    labels = (torch.zeros_like(scores, dtype=torch.long) + torch.arange(num_classes)).reshape(-1)
    scores = scores.reshape(-1)
    keep = (scores > score_thr).nonzero().reshape(-1)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, iou_threshold)
    if max_num > 0:
        keep = keep[:max_num]
    return boxes[keep], scores[keep], labels[keep]

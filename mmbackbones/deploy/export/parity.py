"""Measuring a runtime's predictions against PyTorch's: detections matched one to one
(same label, boxes within a relative tolerance), and segmentation maps pixel by pixel.

Two float32 implementations of the same detector can legitimately differ where scores
(nearly) tie: NMS then keeps the other box of a pair, or the ``max_per_img`` cut falls
between two equal scores. So detections are matched, not compared by rank, and what did
not match is reported, with the score of the best unmatched one (near-tie losses have
scores close to other detections' or to the cut).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the issue's tolerances: boxes 1e-3 relative (to ``max(|coordinate|, 1 px)``)
BOX_RTOL = 1e-3
#: a matched pair's score difference allowed (float32 softmax / sigmoid of close logits)
SCORE_ATOL = 1e-4


def match_detections(
    ref_boxes: np.ndarray,
    ref_scores: np.ndarray,
    ref_labels: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    rtol: float = BOX_RTOL,
    score_atol: float = SCORE_ATOL,
) -> dict[str, Any]:
    """Match each reference detection to an unused one with the same label, a score
    within ``score_atol`` and every coordinate within ``rtol * max(|ref|, 1)``.

    Args:
        ref_boxes, ref_scores, ref_labels: The reference (PyTorch) detections.
        boxes, scores, labels: The runtime's.
        rtol (float): Relative box tolerance. Default: 1e-3.
        score_atol (float): Score tolerance. Default: 1e-4.

    Returns:
        dict: ``matched``, ``ref`` and ``got`` counts, ``max_box_rel`` and
        ``max_score_diff`` over matched pairs, ``label_mismatch`` (unmatched reference
        detections whose box matches one of another label) and
        ``unmatched_top_score`` (highest score of an unmatched detection, either side),
        ``pairs`` (reference index, runtime index) of the matches.

    Example:
        >>> b = np.array([[0., 0., 10., 10.]]); s = np.array([0.9]); lab = np.array([1])
        >>> match_detections(b, s, lab, b * 1.0005, s, lab)['matched']
        1
        >>> match_detections(b, s, lab, b * 1.01, s, lab)['matched']
        0
    """
    ref_boxes, boxes = np.asarray(ref_boxes, np.float64), np.asarray(boxes, np.float64)
    ref_scores, scores = np.asarray(ref_scores, np.float64), np.asarray(scores, np.float64)
    ref_labels, labels = np.asarray(ref_labels), np.asarray(labels)
    used = np.zeros(len(boxes), bool)
    box_rel, score_diff, label_mismatch = [0.0], [0.0], 0
    unmatched_scores, pairs = [], []
    for i in np.argsort(-ref_scores, kind='stable'):
        rel = (np.abs(boxes - ref_boxes[i]) / np.maximum(np.abs(ref_boxes[i]), 1.0)).max(1)
        close = (rel <= rtol) & ~used
        ok = close & (labels == ref_labels[i]) & (np.abs(scores - ref_scores[i]) <= score_atol)
        if ok.any():
            j = int(np.flatnonzero(ok)[np.argmin(rel[ok])])
            used[j] = True
            pairs.append((int(i), j))
            box_rel.append(float(rel[j]))
            score_diff.append(float(abs(scores[j] - ref_scores[i])))
        else:
            label_mismatch += int(close.any())
            unmatched_scores.append(float(ref_scores[i]))
    unmatched_scores += scores[~used].tolist()
    return {
        'matched': len(box_rel) - 1,
        'ref': len(ref_boxes),
        'got': len(boxes),
        'max_box_rel': max(box_rel),
        'max_score_diff': max(score_diff),
        'label_mismatch': label_mismatch,
        'unmatched_top_score': max(unmatched_scores, default=None),
        'pairs': pairs,
    }


def merge_matches(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over images of :func:`match_detections` results."""
    out: dict[str, Any] = {k: sum(s[k] for s in stats) for k in ('matched', 'ref', 'got')}
    out['label_mismatch'] = sum(s['label_mismatch'] for s in stats)
    for k in ('max_box_rel', 'max_score_diff'):
        out[k] = max((s[k] for s in stats), default=0.0)
    tops = [s['unmatched_top_score'] for s in stats if s['unmatched_top_score'] is not None]
    out['unmatched_top_score'] = max(tops, default=None)
    out['match_rate'] = out['matched'] / max(out['ref'], out['got'], 1)
    return out


def compare_samples(ref: list, got: list) -> dict[str, Any]:
    """Runtime data samples ``got`` against PyTorch's ``ref`` (same images, same order).

    Detection: :func:`merge_matches` of every image, plus ``mask_iou_min``, the lowest
    IoU of a matched pair's binary masks (Mask R-CNN). Segmentation: ``pixel_agreement`` of the
    predicted maps and ``max_logit_diff``.
    """
    if 'pred_sem_seg' in ref[0]:
        agree = [
            (r.pred_sem_seg.data == g.pred_sem_seg.data).float().mean().item()
            for r, g in zip(ref, got)
        ]
        diff = [
            (r.seg_logits.data - g.seg_logits.data).abs().max().item() for r, g in zip(ref, got)
        ]
        scale = max(r.seg_logits.data.abs().max().item() for r in ref)
        return {'pixel_agreement': min(agree), 'max_logit_diff': max(diff), 'logit_scale': scale}
    stats, mask_ious = [], []
    for r, g in zip(ref, got):
        r, g = r.pred_instances, g.pred_instances
        stats.append(
            match_detections(
                r.bboxes.numpy(),
                r.scores.numpy(),
                r.labels.numpy(),
                g.bboxes.numpy(),
                g.scores.numpy(),
                g.labels.numpy(),
            )  # fmt: skip
        )
        if 'masks' in r:
            for i, j in stats[-1]['pairs']:
                inter = (r.masks[i] & g.masks[j]).sum().item()
                union = (r.masks[i] | g.masks[j]).sum().item()
                mask_ious.append(inter / union if union else 1.0)
    out = merge_matches(stats)
    if mask_ious:
        out['mask_iou_min'] = min(mask_ious)
    return out

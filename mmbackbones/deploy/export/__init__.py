"""Whole-model ONNX export of mmdet detectors and mmseg segmentors: pre-processing,
backbone, neck, heads and post-processing (box decoding, NMS, RoIAlign, the resize of
segmentation logits) in one graph, for ONNX Runtime and OpenVINO.

:func:`export_model` is the entry point (``tools/export_onnx.py CONFIG --checkpoint CKPT
--shape H W -o FILE``); :class:`mmbackbones.deploy.Runtime` runs the file and returns
mmdet / mmseg data samples. The graph forms are in :mod:`.detector` and
:mod:`.segmentor`, the traceable post-processing in :mod:`.nms`, the shared
normalisation and file metadata in :mod:`.common`.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``),
which works offline; NMS is ONNX ``NonMaxSuppression`` and RoIAlign ``RoiAlign`` (opset
16+, ``half_pixel`` for mmcv's ``aligned=True``), both through torchvision's ONNX
symbolics. Batch 1 at a fixed input size.
"""

from __future__ import annotations

import os
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .common import META_KEY, dummy_image, read_metadata, write_metadata
from .detector import DenseDetectorGraph, TwoStageGraph, build_detector_graph
from .segmentor import SegmentorGraph

#: RoiAlign's ``coordinate_transformation_mode`` (mmcv ``aligned=True``) needs opset 16
MIN_WHOLE_OPSET = 16

__all__ = [
    'META_KEY',
    'MIN_WHOLE_OPSET',
    'DenseDetectorGraph',
    'ExportResult',
    'SegmentorGraph',
    'TwoStageGraph',
    'build_graph',
    'dummy_image',
    'export_model',
    'graph_inputs',
    'read_metadata',
]


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and measured.

    Attributes:
        path (str): The ONNX file.
        meta (dict): Its metadata (task, input shape, inputs, outputs, padding value...).
        check (dict): onnxruntime against the PyTorch graph on a synthetic image:
            detections matched (:func:`.parity.match_detections`: ``matched``, ``ref``,
            ``got``, ``max_box_rel``, ...), or segmentation ``max_abs_diff``,
            ``logit_scale`` and ``pixel_agreement``.
        graph (nn.Module): The PyTorch graph that was exported (eval mode), e.g. to time
            it against the runtimes; its inputs: :func:`graph_inputs`.
    """

    path: str
    meta: dict[str, Any]
    check: dict[str, Any] = field(default_factory=dict)
    graph: nn.Module | None = field(default=None, repr=False)


def build_graph(model: nn.Module, shape: tuple[int, int]) -> nn.Module:
    """The exportable whole-model graph of an mmdet detector or mmseg segmentor.

    Args:
        model (nn.Module): In eval mode, with its weights.
        shape (tuple[int, int]): Input ``(H, W)``.

    Raises:
        ValueError: A model the export does not cover (the message names it).

    Example:
        >>> from mmbackbones.apis import init_model
        >>> g = build_graph(init_model('configs/rexnet_ssdlite.py'), (320, 320))
        >>> type(g).__name__, g.output_names
        ('DenseDetectorGraph', ('dets', 'labels'))
    """
    if hasattr(model, 'decode_head'):
        return SegmentorGraph(model, shape).eval()
    return build_detector_graph(model, shape).eval()


def graph_inputs(graph: nn.Module, image: torch.Tensor, img_hw: tuple[int, int]) -> tuple:
    """The positional inputs of ``graph``: ``(image,)`` for a segmentor, ``(image,
    img_shape)`` for a detector (``img_hw``: the image's size inside the padded input)."""
    if isinstance(graph, SegmentorGraph):
        return (image,)
    return (image, torch.tensor(img_hw, dtype=torch.float32))


def _check_shape(model: nn.Module, shape: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f'shape must be positive (H, W), got {shape}')
    pre = model.data_preprocessor
    div = int(getattr(pre, 'pad_size_divisor', None) or getattr(pre, 'size_divisor', None) or 1)
    if h % div or w % div:
        up = (-(-h // div) * div, -(-w // div) * div)
        raise ValueError(
            f'shape {h}x{w} is not a multiple of the data preprocessor pad size divisor '
            f'{div} (PyTorch pads every input to it); use {up[0]} {up[1]}'
        )
    return h, w


def _metadata(model: nn.Module, graph: nn.Module, shape: tuple[int, int], cfg: Any) -> dict:
    seg = isinstance(graph, SegmentorGraph)
    normalize = graph.normalize if seg else graph.trunk.normalize
    meta: dict[str, Any] = {
        'task': 'segmentation' if seg else 'detection',
        'graph': type(graph).__name__,
        'model': type(model).__name__,
        'config': osp.basename(getattr(cfg, 'filename', None) or '') or None,
        'shape': list(shape),
        'inputs': ['input'] if seg else ['input', 'img_shape'],
        'outputs': list(graph.output_names),
        'raw_pad_value': normalize.raw_pad_value(),
    }
    if seg:
        head = model.decode_head
        meta.update(
            num_classes=int(head.num_classes),
            align_corners=graph.align_corners,
            threshold=float(getattr(head, 'threshold', 0.3) or 0.3),
            outside='crop of the padding, resize to the original image, argmax',
        )
    else:
        head = model.roi_head.bbox_head if hasattr(model, 'roi_head') else model.bbox_head
        meta.update(
            num_classes=int(head.num_classes),
            outside='boxes divided by the resize factor'
            + (', masks pasted into the original image' if 'masks' in graph.output_names else ''),
        )
        if 'masks' in graph.output_names:
            meta['mask_thr_binary'] = float(model.roi_head.test_cfg.get('mask_thr_binary', 0.5))
    return meta


def _export(graph: nn.Module, inputs: tuple, path: str, meta: dict, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the exporter's deprecation notice, tracer warnings
        torch.onnx.export(
            graph,
            inputs,
            path,
            input_names=meta['inputs'],
            output_names=meta['outputs'],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _compare(graph: nn.Module, inputs: tuple, path: str, meta: dict) -> dict[str, Any]:
    """onnxruntime vs the PyTorch graph on ``inputs``: detections matched one to one
    (:func:`.parity.match_detections`), segmentation logits and their argmax."""
    import onnxruntime as ort

    from .parity import match_detections

    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    feed = {n.name: inputs[meta['inputs'].index(n.name)].numpy() for n in sess.get_inputs()}
    outs = dict(zip(meta['outputs'], sess.run(meta['outputs'], feed)))
    with torch.no_grad():
        ref = graph(*inputs)
    ref = dict(
        zip(meta['outputs'], [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))])
    )
    if meta['task'] == 'segmentation':
        r, o = ref['seg_logits'], outs['seg_logits']
        return {
            'max_abs_diff': float(np.abs(o - r).max()),
            'logit_scale': float(np.abs(r).max()),
            'pixel_agreement': float((o.argmax(1) == r.argmax(1)).mean()),
        }
    rd, od = ref['dets'], outs['dets']
    check = match_detections(
        rd[:, :4], rd[:, 4], ref['labels'], od[:, :4], od[:, 4], outs['labels']
    )
    pairs = check.pop('pairs')
    if 'masks' in ref and pairs:
        i, j = np.array(pairs).T
        check['max_mask_diff'] = float(np.abs(ref['masks'][i] - outs['masks'][j]).max())
    return check


def export_model(
    cfg: Any,
    checkpoint: str | None,
    shape: tuple[int, int],
    out: str,
    *,
    opset: int = 17,
    cfg_options: dict | None = None,
    fuse: bool = False,
    check: bool = True,
) -> ExportResult:
    """Export the whole model of an mmdet / mmseg config to ONNX, batch 1 at ``shape``.

    Args:
        cfg (str | Config): Config file or loaded config (e.g. with ``--builtin-data``
            applied); its model is built with :func:`mmbackbones.apis.init_model`.
        checkpoint (str | None): Trained weights; ``None`` keeps the initialisation
            (random: for smoke tests only).
        shape (tuple[int, int]): Input ``(H, W)``: a multiple of the config's pad size
            divisor; at least the size of every image after the test pipeline (smaller
            ones are padded by :class:`~mmbackbones.deploy.Runtime`).
        out (str): The ``.onnx`` file to write.
        opset (int): ONNX opset, at least 16. Default: 17.
        cfg_options (dict | None): Config overrides.
        fuse (bool): Fold BatchNorms first (:func:`mmbackbones.deploy.fuse`); the
            runtimes fold them anyway. Default: False.
        check (bool): Run the file with onnxruntime on a synthetic image and compare
            with the PyTorch graph (``ExportResult.check``). Default: True.

    Returns:
        ExportResult: The path, the metadata stored in the file, and the check.

    Raises:
        ValueError: A model, test setting or shape the export does not cover.

    Example:
        >>> res = export_model('configs/mobilenetv3-small_ssdlite.py', None, (320, 320),
        ...                    'ssdlite.onnx')  # doctest: +SKIP
        >>> res.meta['outputs'], res.check['matched'], res.check['ref']  # doctest: +SKIP
        (['dets', 'labels'], 200, 200)
    """
    from mmbackbones.apis import init_model

    if opset < MIN_WHOLE_OPSET:
        raise ValueError(f'opset must be >= {MIN_WHOLE_OPSET} (RoiAlign half_pixel), got {opset}')
    model = init_model(cfg, checkpoint, cfg_options=cfg_options)
    shape = _check_shape(model, shape)
    if fuse:
        from mmbackbones.deploy.fuse import fuse as fuse_model

        model = fuse_model(model, inplace=True)
    graph = build_graph(model, shape)
    meta = _metadata(model, graph, shape, model.cfg)
    meta['weights'] = osp.basename(checkpoint) if checkpoint else None
    inputs = graph_inputs(graph, dummy_image(shape), shape)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    _export(graph, inputs, out, meta, opset)
    write_metadata(out, meta)
    result = ExportResult(path=out, meta=read_metadata(out), graph=graph)
    if check:
        result.check = _compare(graph, inputs, out, meta)
    return result

"""INT8 post-training quantization of exported models, for ONNX Runtime and OpenVINO.

Two methods, both the runtimes' own public tools, calibrated on a few images:

* ``'onnxruntime'``: ONNX Runtime's static quantization
  (``onnxruntime.quantization.quantize_static``) in the QDQ format, per-channel INT8
  weights and UINT8 activations (the combination ORT's x86 kernels run with VNNI),
  min-max calibration, after ``quant_pre_process`` (shape inference, graph
  optimisation). The result is an ONNX file that ONNX Runtime (and OpenVINO) run in
  INT8.
* ``'nncf'``: NNCF (``nncf.quantize``), its CPU performance preset (symmetric weights and
  activations, fast bias correction), on the OpenVINO model saved as an OpenVINO IR
  (``.xml`` + ``.bin``), or on the ONNX graph saved as QDQ ONNX (``.onnx``) that OpenVINO
  runs in INT8.

Which operators are quantized (``op_types``) defaults per method to what measured fastest
on our CPU (:data:`METHOD_OP_TYPES`): ONNX Runtime quantizes every type it can (with only
the convolutions quantized, MobileNetV3 and EfficientNet kept a float <-> int8 round trip
around each activation and gained little), NNCF only the convolutions and matrix
products (its full choice made EfficientNet-B0 slower than that). ``nodes`` restricts the
quantization to named nodes, e.g. a whole model's trunk without its post-processing.
The ONNX metadata of the source (:mod:`mmbackbones.deploy.export`'s task description) is
copied into an ONNX result.

Calibration inputs come from built-in data: :func:`calibration_images` for a backbone or
classifier (ImageNet-normalised images of the built-in detection set's *train* split), or
any list of inputs the caller prepares (for a whole model, images of the config's own
dataset). Accuracy is measured on the *val* split, never on calibration images.

Example:
    >>> import os, tempfile
    >>> import torch.nn as nn
    >>> from mmbackbones.deploy.engines import Engine, export_onnx
    >>> d = tempfile.mkdtemp()
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    >>> src = export_onnx(net, (torch.rand(1, 3, 32, 32),), os.path.join(d, 'm.onnx'))
    >>> q = quantize(src, os.path.join(d, 'm-int8.onnx'), calibration_images(4, (32, 32)))
    >>> 'QuantizeLinear' in quantized_op_types(q)
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: the quantization methods of :func:`quantize`
METHODS = ('onnxruntime', 'nncf')
#: the operator types that carry the multiply-adds
MAC_OP_TYPES = ('Conv', 'MatMul', 'Gemm')
#: ``op_types`` per method when not given; ``'all'``: every type the tool quantizes
METHOD_OP_TYPES: dict[str, Sequence[str] | str] = {'onnxruntime': 'all', 'nncf': MAC_OP_TYPES}
#: ImageNet mean / std (RGB, 0-255), the normalisation of every ImageNet classifier here
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

Feed = Sequence[np.ndarray]  # one calibration sample: the model's inputs, in order


def calibration_images(
    n: int, shape: tuple[int, int], start: int = 0, normalize: bool = True
) -> list[tuple[np.ndarray]]:
    """``n`` images of the built-in detection set's train split (rendered, not read from
    disk: :func:`mmbackbones.datasets.shapes.render_image`), resized to ``shape``,
    ImageNet-normalised, as single-input feeds ``(array[1, 3, H, W],)``.

    Args:
        n (int): Number of images (at least 1).
        shape (tuple[int, int]): ``(H, W)`` of the model input.
        start (int): First train image. Default: 0.
        normalize (bool): Subtract the ImageNet mean, divide by its std (the input of
            an exported backbone); False keeps 0-255 RGB. Default: True.

    Example:
        >>> feeds = calibration_images(2, (64, 48))
        >>> len(feeds), feeds[0][0].shape, feeds[0][0].dtype
        (2, (1, 3, 64, 48), dtype('float32'))
    """
    from mmbackbones.datasets.shapes import SPLITS, render_image

    if n < 1:
        raise ValueError(f'calibration needs at least 1 image, got {n}')
    seed0 = SPLITS['train'][1]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = []
    for i in range(start, start + n):
        arr, _ = render_image(seed0 + i)
        x = torch.from_numpy(arr).permute(2, 0, 1)[None].float()
        x = F.interpolate(x, size=tuple(shape), mode='bilinear', align_corners=False)
        if normalize:
            x = (x - mean) / std
        out.append((x.numpy().astype(np.float32),))
    return out


def _check_feeds(feeds: Sequence[Feed]) -> None:
    if len(feeds) < 1:
        raise ValueError('quantize: calibration needs at least one input sample')


def _input_names(path: str) -> list[str]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in init]


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a list of feeds."""

    def __init__(self, names: list[str], feeds: Sequence[Feed]) -> None:
        self._it: Iterator[Feed] = iter(feeds)
        self._names = names

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._it, None)
        return None if feed is None else dict(zip(self._names, feed))


def _reader(names: list[str], feeds: Sequence[Feed]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    return Reader(names, feeds)


def _copy_metadata(src: str, dst: str) -> None:
    """The ``metadata_props`` of the ONNX file ``src`` into ``dst`` (kept if present)."""
    import onnx

    source = onnx.load(src, load_external_data=False)
    if not source.metadata_props:
        return
    target = onnx.load(dst)
    have = {p.key for p in target.metadata_props}
    for p in source.metadata_props:
        if p.key not in have:
            target.metadata_props.add(key=p.key, value=p.value)
    onnx.save(target, dst)


def _op_types(method: str, op_types: Sequence[str] | str | None) -> list[str] | None:
    """The operator types to quantize, ``None`` for every type the tool quantizes."""
    chosen = METHOD_OP_TYPES[method] if op_types is None else op_types
    if chosen == 'all':
        return None
    if isinstance(chosen, str) or not chosen:
        raise ValueError(f"op_types: a list of ONNX operator types or 'all', got {chosen!r}")
    return list(chosen)


def nodes_under(path: str, prefixes: Sequence[str] | None = None) -> list[str]:
    """Names of the ONNX nodes of ``path`` that PyTorch's exporter put under one of the
    module paths ``prefixes`` (node names are ``/module/path/OpType``), e.g.
    ``['/backbone/', '/neck/']``; ``None``: under any submodule. The nodes to quantize in
    a whole model: its layers, not the post-processing that the top module's own forward
    (or a function it calls) adds (box decoding, NMS, the final resize), whose nodes the
    exporter names ``/OpType`` or ``OpType_N``.

    Example:
        >>> import os, tempfile
        >>> import torch.nn as nn
        >>> from mmbackbones.deploy.engines import export_onnx
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)).eval()
        >>> path = os.path.join(tempfile.mkdtemp(), 'm.onnx')
        >>> p = export_onnx(net, (torch.rand(1, 3, 4, 4),), path)
        >>> nodes_under(p, ['/1/'])
        ['/1/Conv']
    """
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    if prefixes is None:  # '/module/...', not '/OpType' (the top module) nor 'OpType_3'
        return [n.name for n in graph.node if n.name.startswith('/') and '/' in n.name[1:]]
    return [n.name for n in graph.node if any(n.name.startswith(p) for p in prefixes)]


def config_images(cfg: Any, n: int, split: str = 'train') -> list[str]:
    """The first ``n`` image files of a config's ``split`` dataset (wrappers such as
    ``RepeatDataset`` unwrapped to their first leaf): calibration images from the config's
    own data, the *train* split by default (accuracy is measured on val).

    Raises:
        ValueError: The split has fewer than ``n`` images, or none can be found.
    """
    from mmengine.registry import DATASETS, init_default_scope

    from mmbackbones.apis import host_of

    if n < 1:
        raise ValueError(f'calibration needs at least 1 image, got {n}')
    init_default_scope(host_of(cfg))
    ds = dict(cfg[f'{split}_dataloader']['dataset'])
    while 'pipeline' not in ds and ('dataset' in ds or 'datasets' in ds):
        ds = dict(ds['dataset'] if 'dataset' in ds else ds['datasets'][0])
    ds.update(pipeline=[], lazy_init=False, test_mode=split != 'train')
    dataset = DATASETS.build(ds)
    if len(dataset) < n:
        raise ValueError(f'the {split} split has {len(dataset)} images; asked for {n}')
    return [dataset.get_data_info(i)['img_path'] for i in range(n)]


def runtime_feeds(runtime: Any, images: Sequence[str]) -> list[tuple[np.ndarray, ...]]:
    """Calibration samples for an exported whole model: each image through the config's
    test pipeline and padded by :meth:`mmbackbones.deploy.Runtime.feeds`, as a tuple in
    the graph's input order."""
    names = runtime.meta['inputs']
    return [tuple(feed[k] for k in names) for feed in runtime.feeds(list(images))]


def quantize_onnxruntime(
    src: str,
    dst: str,
    feeds: Sequence[Feed],
    op_types: Sequence[str] | str | None = None,
    nodes: Sequence[str] | None = None,
    per_channel: bool = True,
) -> str:
    """ONNX Runtime static QDQ quantization of the ONNX file ``src`` into ``dst``.

    Args:
        src (str): FP32 ONNX file.
        dst (str): INT8 (QDQ) ONNX file to write.
        feeds (Sequence[Feed]): Calibration samples, each the model's inputs in order.
        op_types (Sequence[str] | str | None): Operator types to quantize, ``'all'`` for
            every type ORT quantizes; ``None``: :data:`METHOD_OP_TYPES`.
        nodes (Sequence[str] | None): Only these nodes (e.g. :func:`nodes_under`);
            ``None``: all.
        per_channel (bool): Per-output-channel weight scales. Default: True.

    Returns:
        str: ``dst``.
    """
    import contextlib
    import tempfile

    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    _check_feeds(feeds)
    types = _op_types('onnxruntime', op_types)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, 'pre.onnx')
        # chdir: when ONNX Runtime's symbolic shape inference fails (as on a detector's NMS
        # loops), it dumps 'sym_shape_infer_temp.onnx' and uuid-named external-data files
        # into the working directory before raising.
        try:
            with contextlib.chdir(tmp):
                quant_pre_process(os.path.abspath(src), pre)
        except Exception:  # then without it
            quant_pre_process(src, pre, skip_symbolic_shape=True)
        quantize_static(
            pre,
            dst,
            _reader(_input_names(pre), feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=types,
            nodes_to_quantize=None if nodes is None else list(nodes),
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    _copy_metadata(src, dst)
    return dst


def quantize_nncf(
    src: str,
    dst: str,
    feeds: Sequence[Feed],
    op_types: Sequence[str] | str | None = None,
    nodes: Sequence[str] | None = None,
) -> str:
    """NNCF post-training quantization of ``src`` (ONNX) for OpenVINO.

    With ``dst`` an ``.xml``, NNCF quantizes the OpenVINO model (``ov.convert_model``,
    constant-folded) and saves an OpenVINO IR; with ``dst`` an ``.onnx``, it quantizes the
    ONNX graph itself (QDQ nodes placed by NNCF's OpenVINO-oriented rules; OpenVINO runs
    it in INT8, and it keeps the source's ONNX metadata, which
    :class:`mmbackbones.deploy.Runtime` reads).

    Args:
        src (str): FP32 ONNX file.
        dst (str): The ``.xml`` (+ ``.bin``) or ``.onnx`` file to write.
        feeds (Sequence[Feed]): Calibration samples, each the model's inputs in order.
        op_types (Sequence[str] | str | None): ONNX operator types to quantize, ``'all'``
            for NNCF's own choice; ``None``: :data:`METHOD_OP_TYPES`.
        nodes (Sequence[str] | None): Only nodes (operations, for an IR) whose name
            starts with one of these ONNX node names (e.g. :func:`nodes_under`);
            ``None``: all.

    Returns:
        str: ``dst``.

    Raises:
        EngineUnavailableError: OpenVINO / NNCF are not installed.
    """
    from .engines import EngineUnavailableError, _openvino

    ov = _openvino()
    try:
        import nncf
    except ImportError as e:
        raise EngineUnavailableError(
            'NNCF is not installed: `pip install mmbackbones[openvino]` (openvino and nncf)'
        ) from e
    _check_feeds(feeds)
    if not dst.endswith(('.xml', '.onnx')):
        raise ValueError(f"method 'nncf' writes an OpenVINO IR '.xml' or an '.onnx', got {dst}")
    types = _op_types('nncf', op_types)
    wanted = None if nodes is None else tuple(nodes)
    if dst.endswith('.xml'):
        model = ov.convert_model(src)  # constant-folded: NNCF sees the real graph

        def ops():
            return ((op.get_type_name(), op.get_friendly_name()) for op in model.get_ops())

        keep = None if types is None else {t for o in types for t in _OV_TYPES.get(o, (o,))}
        data = [list(f) if len(f) > 1 else f[0] for f in feeds]
    else:
        import onnx

        model = onnx.load(src)

        def ops():
            return ((n.op_type, n.name) for n in model.graph.node)

        keep = None if types is None else set(types)
        names = _input_names(src)
        data = [dict(zip(names, f)) for f in feeds]
    ignored_types = [] if keep is None else sorted({t for t, _ in ops()} - keep - _NEVER_IGNORED)
    ignored_names = (
        []
        if wanted is None
        else [n for t, n in ops() if t not in _NEVER_IGNORED and not n.startswith(wanted)]
    )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(data),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(data),
        ignored_scope=nncf.IgnoredScope(names=ignored_names, types=ignored_types, validate=False),
    )
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    if dst.endswith('.xml'):
        ov.save_model(quantized, dst)
    else:
        import onnx

        onnx.save(quantized, dst)
        _copy_metadata(src, dst)
    return dst


#: ONNX op type -> the OpenVINO op types it becomes
_OV_TYPES = {
    'Conv': ('Convolution', 'GroupConvolution'),
    'MatMul': ('MatMul',),
    'Gemm': ('MatMul',),
}
#: graph plumbing NNCF must be free to see through (ignoring it would cut the graph)
_NEVER_IGNORED = {'Parameter', 'Result', 'Constant', 'Convert'}


def quantize(
    src: str,
    dst: str,
    feeds: Sequence[Feed],
    method: str = 'onnxruntime',
    op_types: Sequence[str] | str | None = None,
    nodes: Sequence[str] | None = None,
) -> str:
    """INT8 post-training quantization of the ONNX file ``src`` by ``method``.

    Args:
        src (str): FP32 ONNX file.
        dst (str): Output: ``.onnx`` (both methods) or, with ``'nncf'``, ``.xml`` (an
            OpenVINO IR).
        feeds (Sequence[Feed]): Calibration samples (e.g. :func:`calibration_images`).
        method (str): One of :data:`METHODS`. Default: 'onnxruntime'.
        op_types (Sequence[str] | str | None): ONNX operator types to quantize, or
            ``'all'``; ``None``: the method's default (:data:`METHOD_OP_TYPES`).
        nodes (Sequence[str] | None): Only these nodes (:func:`nodes_under`).

    Returns:
        str: ``dst``.

    Raises:
        ValueError: An unknown method, a missing source, or an output suffix the method
            does not write.
    """
    if method not in METHODS:
        raise ValueError(f'unknown quantization method {method!r}; valid are {list(METHODS)}')
    if not os.path.isfile(src):
        raise ValueError(f'quantize: {src!r} does not exist')
    if method == 'nncf':
        return quantize_nncf(src, dst, feeds, op_types, nodes)
    if not dst.endswith('.onnx'):
        raise ValueError(f"method 'onnxruntime' writes ONNX: dst must end in '.onnx', got {dst}")
    return quantize_onnxruntime(src, dst, feeds, op_types, nodes)


def quantized_op_types(path: str) -> dict[str, int]:
    """Operator types and counts of an ONNX file, or of an OpenVINO IR (``.xml``).

    Example:
        >>> import os, tempfile
        >>> import torch.nn as nn
        >>> from mmbackbones.deploy.engines import export_onnx
        >>> p = export_onnx(nn.Conv2d(3, 4, 1).eval(), (torch.rand(1, 3, 4, 4),),
        ...                 os.path.join(tempfile.mkdtemp(), 'c.onnx'))
        >>> quantized_op_types(p)
        {'Conv': 1}
    """
    counts: dict[str, int] = {}
    if path.endswith('.xml'):
        from .engines import _openvino

        types = [op.get_type_name() for op in _openvino().Core().read_model(path).get_ops()]
    else:
        import onnx

        types = [n.op_type for n in onnx.load(path, load_external_data=False).graph.node]
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    return counts

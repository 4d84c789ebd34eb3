"""The runtimes (mmbackbones.deploy.engines) and INT8 quantization (mmbackbones.deploy.quantize)
against PyTorch: FP32 parity, INT8 outputs close to the FP32 model's and really computed in
INT8 (the runtimes' own per-operator profiles say which kernels ran), clear errors.

Speed is not asserted here (machine-dependent); docs/speed.md has the measurements.
"""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

pytest.importorskip('onnxruntime')

from mmbackbones.deploy import engines as eng  # noqa: E402
from mmbackbones.deploy import randomize_bn  # noqa: E402
from mmbackbones.deploy.engines import Engine, EngineUnavailableError, export_onnx  # noqa: E402
from mmbackbones.deploy.quantize import (  # noqa: E402
    calibration_images,
    nodes_under,
    quantize,
    quantized_op_types,
)
from mmbackbones.models.backbones import MobileNetV3, ResNeXt  # noqa: E402

SHAPE = (64, 64)
TINY_RESNEXT = dict(depths=(1, 1, 1, 1), cardinality=4, base_width=4, widths=(32, 64, 96, 128))


def _has_openvino() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


openvino_only = pytest.mark.skipif(not _has_openvino(), reason='openvino/nncf not installed')


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> dict:
    """MobileNetV3-Small (h-swish, h-sigmoid SE, depthwise) with random BN statistics,
    exported with three taps, and its PyTorch outputs on built-in *val*-like images
    (train images from 200 on, never among the calibration images 0-7)."""
    d = tmp_path_factory.mktemp('engines')
    torch.manual_seed(0)
    model = randomize_bn(MobileNetV3('small', out_indices=(1, 2, 3))).eval()
    path = export_onnx(
        model, (torch.zeros(1, 3, *SHAPE),), str(d / 'm.onnx'), output_names=['a', 'b', 'c']
    )
    images = calibration_images(3, SHAPE, start=200)
    with torch.no_grad():
        ref = [[t.numpy() for t in model(torch.from_numpy(x))] for (x,) in images]
    return dict(dir=d, path=path, images=images, ref=ref, feeds=calibration_images(8, SHAPE))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _run(engine: Engine, images) -> list[list[np.ndarray]]:
    return [engine(x) for (x,) in images]


def _assert_close(outs, ref, atol: float) -> None:
    for o, r in zip(outs, ref):
        assert [a.shape for a in o] == [b.shape for b in r]
        for a, b in zip(o, r):
            assert float(np.abs(a - b).max()) <= atol


# ----------------------------------------------------------------------------- FP32
@pytest.mark.parametrize('runtime', ['onnxruntime', pytest.param('openvino', marks=openvino_only)])
def test_fp32_engine_equals_pytorch(exported, runtime: str) -> None:
    """FP32 in either runtime is PyTorch's result to float rounding (OpenVINO with the
    f32 hint: its bf16 default on this CPU would differ by ~1e-2)."""
    engine = Engine(exported['path'], runtime, threads=1)
    assert engine.input_names == ['input'] and len(engine.output_names) == 3
    scale = min(float(np.abs(r).max()) for rs in exported['ref'] for r in rs)
    assert scale > 0.1  # unit-scale features: 1e-4 is a real bound
    _assert_close(_run(engine, exported['images']), exported['ref'], atol=1e-4)


@openvino_only
def test_openvino_bf16_is_a_different_precision(exported) -> None:
    """``precision='bf16'`` really changes the arithmetic (bf16 keeps 8 bits of mantissa):
    outputs move by more than float rounding but stay near the FP32 ones."""
    try:
        engine = Engine(exported['path'], 'openvino', precision='bf16')
    except EngineUnavailableError as e:
        pytest.skip(f'no bf16 on this CPU: {e}')
    outs = _run(engine, exported['images'])
    diff = max(
        float(np.abs(a - b).max()) for o, r in zip(outs, exported['ref']) for a, b in zip(o, r)
    )
    assert 1e-4 < diff
    assert min(_cosine(a, b) for o, r in zip(outs, exported['ref']) for a, b in zip(o, r)) > 0.99


# ----------------------------------------------------------------------------- INT8
@pytest.mark.parametrize(
    'method, suffix, runtime',
    [
        ('onnxruntime', '.onnx', 'onnxruntime'),
        pytest.param('onnxruntime', '.onnx', 'openvino', marks=openvino_only),
        # the IR path converts and folds the model in OpenVINO first: ~10 s
        pytest.param('nncf', '.xml', 'openvino', marks=[openvino_only, pytest.mark.slow]),
        pytest.param('nncf', '.onnx', 'openvino', marks=openvino_only),
    ],
)
def test_int8_is_close_to_pytorch_and_runs_int8_kernels(exported, method, suffix, runtime):
    """The INT8 model's features agree with PyTorch's FP32 ones (cosine > 0.99, within
    10% of each output's range) on images not used for calibration, and differ from
    them (so it is not the FP32 model); the runtime's profile shows INT8 kernels."""
    q = quantize(
        exported['path'], str(exported['dir'] / f'q-{method}{suffix}'), exported['feeds'], method
    )
    ops = quantized_op_types(q)
    assert ops.get('FakeQuantize' if suffix == '.xml' else 'QuantizeLinear', 0) >= 10
    engine = Engine(q, runtime, threads=1, profile=True)
    outs = _run(engine, exported['images'])
    for o, r in zip(outs, exported['ref']):
        for a, b in zip(o, r):
            assert _cosine(a, b) > 0.99
            assert float(np.abs(a - b).max()) <= 0.1 * float(np.abs(b).max())
    assert max(float(np.abs(a - b).max()) for a, b in zip(outs[0], exported['ref'][0])) > 1e-4
    profile = engine.op_profile()
    assert profile and all(v >= 0 for v in profile.values())
    if runtime == 'onnxruntime':  # ORT fuses DequantizeLinear -> Conv -> QuantizeLinear
        assert 'QLinearConv' in profile, sorted(profile)
    else:  # OpenVINO's kernel names carry the precision they ran in
        assert any('Convolution' in k and 'I8' in k.upper() for k in profile), sorted(profile)


def test_quantize_restricted_to_nodes(tmp_path) -> None:
    """``nodes=nodes_under(...)`` quantizes that part of the graph only: here the first
    block of a tiny ResNeXt; the other convolutions stay plain FP32 ``Conv`` nodes."""
    torch.manual_seed(0)
    model = randomize_bn(ResNeXt(TINY_RESNEXT, out_indices=(3,))).eval()
    src = export_onnx(model, (torch.zeros(1, 3, *SHAPE),), str(tmp_path / 'r.onnx'))
    convs = quantized_op_types(src)['Conv']
    first = [n for n in nodes_under(src, ['/s1_b1/']) if n.endswith('Conv')]
    assert 0 < len(first) < convs
    q = quantize(src, str(tmp_path / 'rq.onnx'), calibration_images(2, SHAPE), nodes=first)
    import onnx

    graph = onnx.load(q).graph
    dq_outputs = {n.output[0] for n in graph.node if n.op_type == 'DequantizeLinear'}
    fed = [n for n in graph.node if n.op_type == 'Conv' and n.input[0] in dq_outputs]
    assert len(fed) == len(first)


def test_quantize_keeps_the_onnx_metadata(tmp_path) -> None:
    """A whole model's task description (ONNX metadata_props) survives quantization."""
    import onnx

    src = export_onnx(
        nn.Conv2d(3, 4, 3).eval(), (torch.rand(1, 3, 16, 16),), str(tmp_path / 'a.onnx')
    )
    model = onnx.load(src)
    model.metadata_props.add(key='mmbackbones', value='{"task": "detection"}')
    onnx.save(model, src)
    q = quantize(src, str(tmp_path / 'q.onnx'), calibration_images(2, (16, 16)))
    assert {p.key: p.value for p in onnx.load(q).metadata_props}['mmbackbones'] == (
        '{"task": "detection"}'
    )


def test_calibration_images_are_the_builtin_train_images() -> None:
    """Rendered train-split images (the detection set's generator, seeds from its train
    offset), resized and ImageNet-normalised."""
    from mmbackbones.datasets.shapes import SPLITS, render_image

    (x,) = calibration_images(1, (192, 192), start=3, normalize=False)[0]
    arr, _ = render_image(SPLITS['train'][1] + 3)
    assert np.abs(x[0].transpose(1, 2, 0) - arr).max() <= 1e-3  # same size: no resampling
    (z,) = calibration_images(1, (192, 192), start=3)[0]
    mean = np.array([123.675, 116.28, 103.53], np.float32)[:, None, None]
    std = np.array([58.395, 57.12, 57.375], np.float32)[:, None, None]
    assert np.abs(z[0] - (x[0] - mean) / std).max() <= 1e-4


# ----------------------------------------------------------------------------- errors
def test_engine_rejects_bad_input(exported, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown runtime 'tensorrt'; valid runtimes are"):
        Engine(exported['path'], 'tensorrt')
    with pytest.raises(ValueError, match="precision 'bf16' is an OpenVINO inference hint"):
        Engine(exported['path'], 'onnxruntime', precision='bf16')
    with pytest.raises(ValueError, match='does not exist'):
        Engine(str(tmp_path / 'missing.onnx'))
    xml = tmp_path / 'm.xml'
    xml.write_text('<net/>')
    with pytest.raises(ValueError, match='OpenVINO IR file: run it with runtime openvino'):
        Engine(str(xml), 'onnxruntime')
    engine = Engine(exported['path'])
    with pytest.raises(ValueError, match=r"takes 1 inputs \['input'\], got 2"):
        engine(*exported['images'][0], *exported['images'][0])
    with pytest.raises(ValueError, match='profile=True'):
        engine.op_profile()


def test_quantize_rejects_bad_input(exported, tmp_path) -> None:
    feeds = exported['feeds']
    with pytest.raises(ValueError, match=r"unknown quantization method 'tflite'; valid are"):
        quantize(exported['path'], str(tmp_path / 'q.onnx'), feeds, 'tflite')
    with pytest.raises(ValueError, match="writes ONNX: dst must end in '.onnx'"):
        quantize(exported['path'], str(tmp_path / 'q.xml'), feeds)
    with pytest.raises(ValueError, match='at least one input sample'):
        quantize(exported['path'], str(tmp_path / 'q.onnx'), [])
    with pytest.raises(ValueError, match='does not exist'):
        quantize(str(tmp_path / 'none.onnx'), str(tmp_path / 'q.onnx'), feeds)
    with pytest.raises(ValueError, match='at least 1 image'):
        calibration_images(0, SHAPE)


def test_missing_openvino_is_one_clear_error(exported, monkeypatch) -> None:
    """OpenVINO is an optional extra: without it, an error naming the extra."""
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == 'openvino' or name.startswith('openvino.'):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_openvino)
    with pytest.raises(EngineUnavailableError, match=r'pip install mmbackbones\[openvino\]'):
        Engine(exported['path'], 'openvino')
    with pytest.raises(EngineUnavailableError, match=r'mmbackbones\[openvino\]'):
        quantize(exported['path'], os.path.join(exported['dir'], 'x.xml'), [()], 'nncf')
    assert eng.RUNTIMES == ('onnxruntime', 'openvino')


# ----------------------------------------------------------------- whole models, tool
@pytest.mark.slow  # exports and quantizes a whole SSDLite: ~1 min on 2 cores
def test_tools_quantize_a_whole_detector(tmp_path, builtin_root: str) -> None:
    """tools/quantize.py on an exported SSDLite (random weights, built-in data config):
    the layers are quantized, the post-processing (NonMaxSuppression and what feeds it)
    is not, the metadata survives, and the Runtime runs the INT8 file like the FP32 one
    (the same number of detections, boxes inside the image)."""
    import onnx
    from conftest import REPO, run_tool

    from mmbackbones.deploy.runtime import Runtime

    config = os.path.join(REPO, 'configs', 'mobilenetv3-small_ssdlite.py')
    fp32, int8 = str(tmp_path / 'ssd.onnx'), str(tmp_path / 'ssd-int8.onnx')
    env = {'MMBACKBONES_DATA_ROOT': builtin_root}
    res = run_tool(
        [os.path.join(REPO, 'tools', 'export_onnx.py'), config, '--builtin-data',
         '--shape', '192', '192', '-o', fp32], cwd=str(tmp_path), timeout=900, env=env,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr  # 1: its random-weight parity line only
    res = run_tool(
        [os.path.join(REPO, 'tools', 'quantize.py'), config, fp32, '-o', int8,
         '--builtin-data', '--calibration', '4'], cwd=str(tmp_path), timeout=900, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert 'calibrated on 4 train images' in res.stdout
    # nothing else in the working directory (ONNX Runtime's failed symbolic shape
    # inference on the NMS loop dumps files into the cwd)
    assert sorted(os.listdir(tmp_path)) == ['ssd-int8.onnx', 'ssd.onnx']
    graph = onnx.load(int8).graph
    quantized = {n.output[0] for n in graph.node if n.op_type == 'DequantizeLinear'}
    producers = {o: n for n in graph.node for o in n.output}
    assert any(n.op_type == 'Conv' and n.input[0] in quantized for n in graph.node)
    for n in graph.node:
        if n.op_type == 'NonMaxSuppression':
            assert not n.name.startswith('/trunk/')
            assert all(producers.get(i) is None or producers[i].op_type != 'DequantizeLinear'
                       for i in n.input)  # fmt: skip
    meta = {p.key: p.value for p in onnx.load(int8).metadata_props}
    assert all(meta.get(p.key) == p.value for p in onnx.load(fp32).metadata_props)
    image = (np.random.default_rng(0).random((192, 192, 3)) * 255).astype(np.uint8)
    from mmengine.config import Config as MMConfig

    from mmbackbones.datasets.builtin import apply_builtin_data as builtin

    cfg = builtin(MMConfig.fromfile(config), builtin_root)
    a = Runtime(fp32, cfg).predict(image)[0].pred_instances
    b = Runtime(int8, cfg).predict(image)[0].pred_instances
    assert len(a.bboxes) == len(b.bboxes) > 0
    assert float(b.bboxes.min()) >= 0 and float(b.bboxes.max()) <= 192


def test_failed_shape_inference_leaves_the_working_directory_clean(
    exported, tmp_path, monkeypatch
) -> None:
    """ONNX Runtime's symbolic shape inference fails on Faster / Mask R-CNN exports (their
    NMS loops) and then dumps 'sym_shape_infer_temp.onnx' and a uuid-named '.data' file
    into the working directory before raising (measured); quantization falls back without
    it and leaves the user's directory as it was. The failure is reproduced by a
    ``quant_pre_process`` that does exactly that on its symbolic pass."""
    import onnxruntime.quantization as ortq

    from mmbackbones.deploy.quantize import quantize_onnxruntime

    real = ortq.quant_pre_process
    calls = []

    def failing(src, dst, *args, skip_symbolic_shape: bool = False, **kw):
        calls.append(skip_symbolic_shape)
        if not skip_symbolic_shape:
            with open('sym_shape_infer_temp.onnx', 'wb') as f:
                f.write(b'dump')
            raise Exception('Incomplete symbolic shape inference')
        return real(src, dst, *args, skip_symbolic_shape=True, **kw)

    monkeypatch.setattr(ortq, 'quant_pre_process', failing)
    monkeypatch.chdir(tmp_path)
    quantize_onnxruntime(exported['path'], 'int8.onnx', exported['feeds'][:2])
    assert calls == [False, True]
    assert sorted(os.listdir(tmp_path)) == ['int8.onnx']


def test_export_forms_that_the_runtimes_quantize(tmp_path) -> None:
    """ReXNet's partial residual exports as Pad + Add (not the in-place slice add's
    ScatterND, which NNCF cannot quantize around) and every SE pools with
    GlobalAveragePool (which ONNX Runtime quantizes; ReduceMean it leaves in float), while
    ONNX Runtime still computes PyTorch's features, for the model as built and fused."""
    from mmbackbones.deploy import fuse
    from mmbackbones.models.backbones import EfficientNet, ReXNet

    torch.manual_seed(0)
    for name, model in (('rexnet', ReXNet('1.0')), ('effnet', EfficientNet('b0'))):
        model = randomize_bn(model).eval()
        x = torch.randn(1, 3, 64, 64)
        for form, m in (('built', model), ('fused', fuse(model))):
            path = export_onnx(m, (x,), str(tmp_path / f'{name}-{form}.onnx'))
            ops = quantized_op_types(path)
            assert 'ScatterND' not in ops and 'ReduceMean' not in ops, (name, form, ops)
            assert ops['GlobalAveragePool'] >= 10, (name, form, ops)
            with torch.no_grad():
                ref = [t.numpy() for t in model(x)]
            _assert_close([Engine(path)(x.numpy())], [ref], atol=1e-4)
    assert ops.get('Pad', 0) == 0  # EfficientNet has no partial residual
    assert quantized_op_types(str(tmp_path / 'rexnet-built.onnx'))['Pad'] >= 10

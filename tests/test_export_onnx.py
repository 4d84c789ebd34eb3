"""ONNX export (tools/export_onnx.py) and onnxruntime parity, fused and unfused."""

from __future__ import annotations

import importlib.util
import os.path as osp
import re

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool

from mmbackbones.deploy import build_backbone_or_config, fuse, randomize_bn

ort = pytest.importorskip('onnxruntime')
TOOL = osp.join(REPO, 'tools', 'export_onnx.py')
TINY_RESNEXT = dict(depths=(1, 1, 1, 1), cardinality=8, base_width=4, widths=(64, 128, 256, 512))


def _tool():
    spec = importlib.util.spec_from_file_location('export_onnx', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _export_and_compare(model: torch.nn.Module, path: str, shape=(64, 64)) -> float:
    """Export with the tool's exporter, run onnxruntime, return the max abs difference."""
    model = randomize_bn(model).eval()
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x)
    names = [f'feat{i}' for i in range(len(ref))]
    _tool().export(model, x, path, names, opset=17)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = sess.run(names, {'input': x.numpy()})
    assert [o.shape for o in outs] == [tuple(r.shape) for r in ref]
    assert min(float(r.abs().max()) for r in ref) > 0.1  # unit-scale: 1e-4 is meaningful
    return max(float(np.abs(o - r.numpy()).max()) for o, r in zip(outs, ref))


@pytest.mark.parametrize(
    'backbone,arch,fused',
    [
        ('ReXNet', '1.0', True),
        ('ReXNet', 'lite-1.0', True),
        ('MobileNetV3', 'small', True),
        ('MobileNetV3', 'small', False),
        ('MobileNetV3', 'large', True),
        ('EfficientNet', 'b0', True),
        ('RegNet', 'regnety_400mf', True),
        ('ResNeXt', TINY_RESNEXT, True),
        ('AnyNet', 'nds_r56', True),
    ],
)
def test_onnx_parity(tmp_path, backbone: str, arch, fused: bool) -> None:
    model = build_backbone_or_config(backbone=backbone, arch=arch)
    if fused:
        model = fuse(randomize_bn(model))
    assert _export_and_compare(model, str(tmp_path / 'm.onnx')) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize(
    'backbone,arch',
    [('RegNet', 'regnetx_3.2gf'), ('ResNeXt', '50_32x4d'), ('MobileNetV3', 'large')],
)
def test_onnx_parity_full_presets(tmp_path, backbone: str, arch: str) -> None:
    model = build_backbone_or_config(backbone=backbone, arch=arch)
    assert _export_and_compare(model, str(tmp_path / 'm.onnx'), (224, 224)) <= 1e-4
    assert _export_and_compare(fuse(model), str(tmp_path / 'f.onnx'), (224, 224)) <= 1e-4


def test_onnx_fused_exports_plain_convs(tmp_path) -> None:
    """Deploy-only conv forms (GEMM 1x1, sub-grid dilated convs) export as Conv nodes."""
    import onnx

    from mmbackbones.models import MobileNetV3

    model = fuse(randomize_bn(MobileNetV3('small', output_stride=8, out_indices=(1, 4))))
    path = str(tmp_path / 'os8.onnx')
    assert _export_and_compare(model, path, (72, 72)) <= 1e-4
    ops = [n.op_type for n in onnx.load(path).graph.node]
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert ops.count('Conv') == n_convs
    assert 'MatMul' not in ops and 'Gemm' not in ops


def _run_main(args: list[str], capsys) -> tuple[int, str]:
    rc = _tool().main(args)
    return rc, capsys.readouterr().out


@pytest.mark.parametrize(
    'config,num_outputs',
    [
        ('configs/rexnet_fasterrcnn_fpn.py', 5),  # backbone + FPN: P2-P6
        # no neck: the backbone's two taps (mmseg's import makes it slow)
        pytest.param('configs/mobilenetv3-small_lraspp_cityscapes.py', 2, marks=pytest.mark.slow),
    ],
)
def test_export_config(tmp_path, capsys, config: str, num_outputs: int) -> None:
    out = str(tmp_path / 'c.onnx')
    rc, text = _run_main(
        [osp.join(REPO, config), '--part', 'neck', '--shape', '64', '64', '-o', out, '--fuse']
        + ['--runs', '1'],
        capsys,
    )
    assert rc == 0, text
    prefix = 'neck' if num_outputs == 5 else 'feat'
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [o.name for o in sess.get_outputs()] == [f'{prefix}{i}' for i in range(num_outputs)]


def test_tool_end_to_end(tmp_path) -> None:
    out = tmp_path / 'mbv3.onnx'
    res = run_tool(
        [
            TOOL,
            '--backbone',
            'MobileNetV3',
            '--arch',
            'small',
            '--shape',
            '64',
            '64',
            '-o',
            str(out),
            '--fuse',
            '--runs',
            '2',
        ],
        cwd=str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    diff = float(re.search(r'max abs diff onnxruntime vs PyTorch: (\S+)', res.stdout).group(1))
    assert diff <= 1e-4
    assert 'onnxruntime' in res.stdout and 'PyTorch' in res.stdout and out.is_file()


def test_tool_bad_backbone(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _tool().main(
            ['--backbone', 'ReXNext', '--shape', '64', '64', '-o', str(tmp_path / 'x.onnx')]
        )
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "unknown backbone family 'ReXNext'" in err and "'ReXNet'" in err
    assert not (tmp_path / 'x.onnx').exists()


def test_tool_bad_arguments(capsys) -> None:
    tool = _tool()
    with pytest.raises(SystemExit):
        tool.parse_args(
            ['--backbone', 'ReXNet', '--shape', '64', '64', '-o', 'x.onnx', '--opset', '11']
        )
    assert '--opset must be >= 14' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['--shape', '64', '64', '-o', 'x.onnx'])
    assert 'give either a CONFIG or --backbone' in capsys.readouterr().err


def test_tool_fails_when_diff_exceeds_atol(tmp_path, capsys) -> None:
    """The check can fail: an impossible tolerance gives exit status 1."""
    rc, text = _run_main(
        [
            '--backbone',
            'MobileNetV3',
            '--arch',
            'small',
            '--shape',
            '64',
            '64',
            '-o',
            str(tmp_path / 'm.onnx'),
            '--atol',
            '0',
            '--runs',
            '1',
        ],
        capsys,
    )
    diff = float(re.search(r'vs PyTorch: (\S+)', text).group(1))
    assert (rc, 'FAILED' in text) == ((1, True) if diff > 0 else (0, False))

"""The CPU runtimes users deploy with, ONNX Runtime and OpenVINO, behind one small interface.

:class:`Engine` runs one model file (ONNX, or an OpenVINO IR ``.xml``) in one runtime at a
stated thread count and precision, returns numpy arrays, and can report where the time
went per operator type (ONNX Runtime's profiler, OpenVINO's performance counters). The
benchmark (:mod:`mmbackbones.benchmark.runtimes`) and INT8 quantization
(:mod:`mmbackbones.deploy.quantize`) use it; :func:`export_onnx` is the one call of
PyTorch's exporter for a module that maps tensors to tensors.

Precision is explicit, never a runtime default. On CPUs with AVX512-BF16 or AMX (Zen 4,
Sapphire Rapids) OpenVINO's default ``INFERENCE_PRECISION_HINT`` is bf16, so an "FP32"
OpenVINO figure taken with the defaults is really a bf16 one. Here ``precision='fp32'``
sets the f32 hint; ``'bf16'`` asks for bf16 (OpenVINO only). An INT8 model is a quantized
file (:mod:`~mmbackbones.deploy.quantize`) run with ``precision='fp32'`` for the layers
left in floating point.

OpenVINO is an optional extra (``pip install mmbackbones[openvino]``); without it an
OpenVINO engine raises :class:`EngineUnavailableError` saying so.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

#: the runtimes an :class:`Engine` runs
RUNTIMES = ('onnxruntime', 'openvino')
#: floating-point precision of the computation (INT8 is a property of the file)
PRECISIONS = ('fp32', 'bf16')


class EngineUnavailableError(RuntimeError):
    """The runtime (or the precision asked of it) is not available here."""


def export_onnx(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    path: str,
    input_names: Sequence[str] = ('input',),
    output_names: Sequence[str] | None = None,
    opset: int = 17,
) -> str:
    """Export ``module`` with PyTorch's TorchScript-based exporter (``dynamo=False``, which
    works offline; the dynamo exporter needs ``onnxscript``), constants folded, at the
    fixed input shapes of ``inputs``.

    Args:
        module (nn.Module): In eval mode; returns a tensor or a tuple of tensors.
        inputs (tuple[Tensor, ...]): Example inputs.
        path (str): The ``.onnx`` file to write (its folder is created).
        input_names (Sequence[str]): One name per input. Default: ``('input',)``.
        output_names (Sequence[str] | None): One name per output; ``None``: the exporter's.
        opset (int): ONNX opset. Default: 17.

    Returns:
        str: ``path``.

    Example:
        >>> import tempfile, os
        >>> p = export_onnx(nn.Conv2d(3, 4, 3).eval(), (torch.rand(1, 3, 8, 8),),
        ...                 os.path.join(tempfile.mkdtemp(), 'conv.onnx'))
        >>> Engine(p)(np.ones((1, 3, 8, 8), np.float32))[0].shape
        (1, 4, 6, 6)
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # the exporter's deprecation notice, tracer warnings
        torch.onnx.export(
            module,
            inputs,
            path,
            input_names=list(input_names),
            output_names=None if output_names is None else list(output_names),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def _check(runtime: str, precision: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f'unknown runtime {runtime!r}; valid runtimes are {list(RUNTIMES)}')
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; valid are {list(PRECISIONS)}')
    if precision == 'bf16' and runtime != 'openvino':
        raise ValueError(
            f"precision 'bf16' is an OpenVINO inference hint; {runtime} runs fp32 "
            '(quantize the file for INT8)'
        )


def _openvino():
    try:
        import openvino
    except ImportError as e:
        raise EngineUnavailableError(
            'OpenVINO is not installed: it is an optional extra, '
            '`pip install mmbackbones[openvino]` (openvino and nncf)'
        ) from e
    return openvino


class Engine:
    """One model file in one runtime: ``engine(*arrays)`` -> list of numpy outputs.

    Args:
        model (str): An ``.onnx`` file (both runtimes) or an OpenVINO IR ``.xml``
            (OpenVINO only).
        runtime (str): ``'onnxruntime'`` or ``'openvino'``. Default: 'onnxruntime'.
        threads (int): Threads of one inference (ONNX Runtime's ``intra_op_num_threads``,
            one inter-op thread; OpenVINO's ``INFERENCE_NUM_THREADS`` with one stream and
            the latency hint). Default: 1.
        precision (str): ``'fp32'`` or ``'bf16'`` (OpenVINO's inference precision hint;
            see the module docstring). Default: 'fp32'.
        profile (bool): Record per-operator times for :meth:`op_profile` (slower; do not
            time a profiling engine). Default: False.

    Raises:
        EngineUnavailableError: OpenVINO is not installed, or refuses the precision.
        ValueError: An unknown runtime or precision, or a file the runtime cannot read.

    Example:
        >>> import tempfile, os
        >>> p = export_onnx(nn.Conv2d(3, 4, 1).eval(), (torch.rand(1, 3, 4, 4),),
        ...                 os.path.join(tempfile.mkdtemp(), 'pw.onnx'))
        >>> e = Engine(p, 'onnxruntime', threads=1)
        >>> e.input_names, [o.shape for o in e(np.zeros((1, 3, 4, 4), np.float32))]
        (['input'], [(1, 4, 4, 4)])
    """

    def __init__(
        self,
        model: str,
        runtime: str = 'onnxruntime',
        threads: int = 1,
        precision: str = 'fp32',
        profile: bool = False,
    ) -> None:
        _check(runtime, precision)
        if threads < 1:
            raise ValueError(f'threads must be >= 1, got {threads}')
        if not os.path.isfile(model):
            raise ValueError(f'model file {model!r} does not exist')
        if model.endswith('.xml') and runtime != 'openvino':
            raise ValueError(f'{model} is an OpenVINO IR file: run it with runtime openvino')
        self.model, self.runtime, self.threads = model, runtime, threads
        self.precision, self.profile = precision, profile
        self._profile_dir = tempfile.mkdtemp(prefix='mmbackbones-ort-') if profile else None
        if runtime == 'onnxruntime':
            self._init_onnxruntime()
        else:
            self._init_openvino()

    # ------------------------------------------------------------------ onnxruntime
    def _init_onnxruntime(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(self._profile_dir, 'profile')
        self._session = ort.InferenceSession(self.model, opts, providers=['CPUExecutionProvider'])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    # ------------------------------------------------------------------ openvino
    def _init_openvino(self) -> None:
        ov = _openvino()
        core = ov.Core()
        hint = {'fp32': 'f32', 'bf16': 'bf16'}[self.precision]
        if hint == 'bf16' and 'BF16' not in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'):
            raise EngineUnavailableError('this CPU has no bf16 support for OpenVINO')
        config = {
            'INFERENCE_NUM_THREADS': self.threads,
            'NUM_STREAMS': 1,
            'PERFORMANCE_HINT': 'LATENCY',
            'INFERENCE_PRECISION_HINT': hint,
            'PERF_COUNT': self.profile,
        }
        compiled = core.compile_model(core.read_model(self.model), 'CPU', config)
        self._request = compiled.create_infer_request()
        self.input_names = [p.get_any_name() for p in compiled.inputs]
        self.output_names = [p.get_any_name() for p in compiled.outputs]
        self._n_out = len(compiled.outputs)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run one inference on ``inputs`` (in :attr:`input_names` order)."""
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f'{self.model} takes {len(self.input_names)} inputs {self.input_names}, '
                f'got {len(inputs)}'
            )
        if self.runtime == 'onnxruntime':
            return self._session.run(None, dict(zip(self.input_names, inputs)))
        self._request.infer(list(inputs), share_inputs=True)
        return [self._request.get_output_tensor(i).data.copy() for i in range(self._n_out)]

    def op_profile(self) -> dict[str, float]:
        """Milliseconds per operator type over every call so far (``profile=True``).

        ONNX Runtime: kernel times of its profiler, keyed by op type (``QLinearConv``,
        ``Conv``, ``DequantizeLinear``...). OpenVINO: the performance counters' real time,
        keyed ``'layer type [kernel]'`` (the kernel says the precision it ran in, e.g.
        ``brgconv_avx512_I8``); OpenVINO keeps the last call's counters only.
        """
        if not self.profile:
            raise ValueError('op_profile needs an Engine built with profile=True')
        out: dict[str, float] = {}
        if self.runtime == 'openvino':
            for info in self._request.get_profiling_info():
                if info.status.name != 'EXECUTED':
                    continue
                key = f'{info.node_type} [{info.exec_type}]'
                out[key] = out.get(key, 0.0) + info.real_time.total_seconds() * 1e3
            return out
        path = self._session.end_profiling()
        with open(path) as f:
            events = json.load(f)
        for ev in events:
            if ev.get('cat') == 'Node' and ev.get('name', '').endswith('_kernel_time'):
                op = ev.get('args', {}).get('op_name', '?')
                out[op] = out.get(op, 0.0) + ev['dur'] / 1e3
        return out


def describe(engine: Engine) -> str:
    """A short label: ``'onnxruntime fp32'``, ``'openvino bf16'``."""
    return f'{engine.runtime} {engine.precision}'


def outputs_agree(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> dict[str, Any]:
    """How closely two runs' outputs agree: the largest absolute difference and the
    largest difference relative to each output's range (``max |a - b| / max |b|``).

    Example:
        >>> outputs_agree([np.array([1.0, 2.0])], [np.array([1.0, 4.0])])
        {'max_abs_diff': 2.0, 'max_rel_diff': 0.5}
    """
    abs_d = [float(np.abs(x.astype(np.float64) - y).max(initial=0)) for x, y in zip(a, b)]
    scale = [float(np.abs(y).max(initial=0)) for y in b]
    rel = [d / s if s > 0 else (0.0 if d == 0 else float('inf')) for d, s in zip(abs_d, scale)]
    return {'max_abs_diff': max(abs_d, default=0.0), 'max_rel_diff': max(rel, default=0.0)}

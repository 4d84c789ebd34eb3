"""Runtime candidates: a model exported to ONNX and run in ONNX Runtime or OpenVINO, FP32
(or OpenVINO's bf16) or INT8, timed next to the PyTorch candidates.

A runtime candidate is a :class:`~.peers.Candidate` with ``engine`` set, e.g.
``'onnxruntime int8'``. Ours and each peer (timm, torchvision, mmdet, mmseg) are exported
the same way (:func:`mmbackbones.deploy.engines.export_onnx`, PyTorch's TorchScript
exporter, random weights with their BatchNorms as built; the runtimes fold them), once
per model, and INT8 files are made from that export with the runtime's own tool
(:mod:`mmbackbones.deploy.quantize`: ONNX Runtime's static QDQ quantization for ONNX
Runtime, NNCF for OpenVINO), calibrated on images of the built-in data. Every candidate
of an architecture, PyTorch or runtime, is then timed interleaved in the same session
(:func:`.session.run_session`), so their ratios are measured side by side.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn

from .errors import BenchmarkError
from .peers import Candidate

#: runtimes and precisions a candidate can run in (``bf16``: OpenVINO's inference hint)
ENGINE_RUNTIMES = ('onnxruntime', 'openvino')
ENGINE_PRECISIONS = ('fp32', 'bf16', 'int8')
#: the INT8 tool of each runtime (:func:`mmbackbones.deploy.quantize.quantize`)
INT8_METHOD = {'onnxruntime': 'onnxruntime', 'openvino': 'nncf'}
#: calibration images per INT8 model by default
DEFAULT_CALIBRATION = 32


@dataclass(frozen=True)
class EngineSpec:
    """Where a runtime candidate runs: ``runtime`` and ``precision``."""

    runtime: str
    precision: str

    @property
    def label(self) -> str:
        return f'{self.runtime} {self.precision}'

    @classmethod
    def parse(cls, label: str) -> EngineSpec:
        """``'onnxruntime int8'`` -> ``EngineSpec('onnxruntime', 'int8')``."""
        runtime, _, precision = label.partition(' ')
        return cls(runtime, precision)


def engine_specs(runtimes: Sequence[str], precisions: Sequence[str]) -> list[EngineSpec]:
    """Every runtime x precision pair that exists (bf16 is OpenVINO's only).

    Raises:
        BenchmarkError: An unknown runtime or precision (the message lists the valid ones).

    Example:
        >>> [s.label for s in engine_specs(['onnxruntime', 'openvino'], ['fp32', 'bf16'])]
        ['onnxruntime fp32', 'openvino fp32', 'openvino bf16']
    """
    for r in runtimes:
        if r not in ENGINE_RUNTIMES:
            raise BenchmarkError(f'unknown runtime {r!r}; valid are {list(ENGINE_RUNTIMES)}')
    for p in precisions:
        if p not in ENGINE_PRECISIONS:
            raise BenchmarkError(f'unknown precision {p!r}; valid are {list(ENGINE_PRECISIONS)}')
    return [
        EngineSpec(r, p)
        for r in runtimes
        for p in precisions
        if not (p == 'bf16' and r != 'openvino')
    ]


def with_engines(candidates: Sequence[Candidate], specs: Sequence[EngineSpec]) -> list[Candidate]:
    """``candidates`` followed by each tensor candidate (a backbone or classifier, ours or
    a peer) once per engine of ``specs``.

    Example:
        >>> from mmbackbones.benchmark import candidates_for
        >>> cands = candidates_for('MobileNetV3', 'small', peers=['torchvision'])
        >>> specs = engine_specs(['onnxruntime'], ['fp32', 'int8'])
        >>> [(c.impl.split()[0], c.engine) for c in with_engines(cands, specs)]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('mmbackbones', ''), ('torchvision', ''),
         ('mmbackbones', 'onnxruntime fp32'), ('torchvision', 'onnxruntime fp32'),
         ('mmbackbones', 'onnxruntime int8'), ('torchvision', 'onnxruntime int8')]
    """
    out = list(candidates)
    for spec in specs:
        for c in candidates:
            if c.kind != 'tensor' or c.engine:
                continue
            out.append(replace(c, engine=spec.label))
    return out


class EngineFactory:
    """Exports each model once and quantizes it once per INT8 method, in a temporary
    folder kept while the factory lives; builds the :class:`~mmbackbones.deploy.engines.
    Engine` of a runtime candidate.

    Args:
        shape (tuple[int, int]): Input ``(H, W)``.
        batch (int): Batch size of the exported graph (fixed).
        threads (int): Threads of each engine.
        calibration (int): Calibration images per INT8 model.
        workdir (str | None): Where the files go; ``None``: a temporary folder.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        batch: int,
        threads: int,
        calibration: int = DEFAULT_CALIBRATION,
        workdir: str | None = None,
    ) -> None:
        if calibration < 1:
            raise BenchmarkError(f'INT8 calibration needs at least 1 image, got {calibration}')
        self.shape, self.batch, self.threads = tuple(shape), batch, threads
        self.calibration = calibration
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix='mmbackbones-bench-')
        self.workdir = workdir or self._tmp.name
        self._files: dict[tuple[str, str], str] = {}

    def _name(self, c: Candidate) -> str:
        safe = ''.join(ch if ch.isalnum() else '_' for ch in f'{c.arch}_{c.impl}_{c.form}')
        return os.path.join(self.workdir, safe)

    def _fp32(self, c: Candidate, model: nn.Module) -> str:
        key = (f'{c.arch}|{c.impl}|{c.form}', 'fp32')
        if key not in self._files:
            from mmbackbones.deploy.engines import export_onnx

            x = torch.zeros(self.batch, 3, *self.shape)
            self._files[key] = export_onnx(model.eval(), (x,), self._name(c) + '.onnx')
        return self._files[key]

    def _int8(self, c: Candidate, model: nn.Module, runtime: str) -> str:
        method = INT8_METHOD[runtime]
        key = (f'{c.arch}|{c.impl}|{c.form}', method)
        if key not in self._files:
            from mmbackbones.deploy.quantize import calibration_images, quantize

            src = self._fp32(c, model)
            feeds = calibration_images(self.calibration, self.shape)
            if self.batch > 1:
                feeds = [(np.repeat(f[0], self.batch, axis=0),) for f in feeds]
            suffix = '.xml' if method == 'nncf' else '.onnx'
            self._files[key] = quantize(
                src, f'{self._name(c)}-int8-{method}{suffix}', feeds, method
            )
        return self._files[key]

    def model_file(self, c: Candidate, model: nn.Module) -> str:
        """The file the candidate's engine runs (exported / quantized on first use)."""
        spec = EngineSpec.parse(c.engine)
        if spec.precision == 'int8':
            return self._int8(c, model, spec.runtime)
        return self._fp32(c, model)

    def step(self, c: Candidate, model: nn.Module) -> Callable[[], None]:
        """One inference of the candidate's engine on a fixed random input (seed 0, as
        :func:`.session.make_step` draws it for the PyTorch candidates).

        Raises:
            BenchmarkError: The runtime is not installed or cannot run the model.
        """
        from mmbackbones.deploy.engines import Engine, EngineUnavailableError

        spec = EngineSpec.parse(c.engine)
        precision = 'fp32' if spec.precision == 'int8' else spec.precision
        try:
            engine = Engine(self.model_file(c, model), spec.runtime, self.threads, precision)
        except EngineUnavailableError as e:
            raise BenchmarkError(f'{c.engine}: {e}') from e
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(self.batch, 3, *self.shape, generator=gen).numpy()

        def step() -> None:
            engine(x)

        return step

    def close(self) -> None:
        """Delete the temporary folder (a ``workdir`` given by the caller is kept)."""
        if self._tmp is not None:
            self._tmp.cleanup()

"""Whole models end to end: our detector / segmentor of a config against torchvision's model
of the same architecture, in PyTorch and exported to ONNX Runtime / OpenVINO (FP32, INT8).

One step is one image, from the decoded ``uint8`` array to the final predictions,
pre- and post-processing included:

* ours in PyTorch: mmdet's ``inference_detector`` / mmseg's ``inference_model`` (the
  config's test pipeline, the data preprocessor, ``predict`` with NMS / resize);
* ours in a runtime: the whole model exported by :func:`mmbackbones.deploy.export.
  export_model` (normalisation, network, box decoding and NMS or the logits' resize in
  the graph) run by :class:`mmbackbones.deploy.Runtime` (test pipeline, padding, and
  what the graph leaves out: boxes to original pixels, crop / resize / argmax);
* torchvision's model in PyTorch: ``model([image])`` (its transform normalises and
  resizes; ``postprocess`` decodes, runs NMS and rescales), for LR-ASPP the ImageNet
  normalisation, the model (which resizes its logits to the input) and the argmax;
* torchvision's model in a runtime: the same computation exported to ONNX.

Weights are random on both sides (nothing is downloaded). With random weights a
detector keeps about as many boxes after its score threshold as the cap allows, so NMS
does more work than with trained weights, alike for both. INT8 candidates are
quantized in the layers (every node inside a submodule,
:func:`mmbackbones.deploy.quantize.nodes_under`), post-processing in floating point,
calibrated on built-in train images.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .errors import BenchmarkError
from .runtimes import INT8_METHOD, EngineSpec
from .session import Row, attach_ratios
from .timing import time_round_robin


@dataclass(frozen=True)
class WholeModelPair:
    """Our config and torchvision's builder of the same architecture.

    Attributes:
        label: Table name.
        config: Our config file (its model with random weights).
        shape: Input ``(H, W)``: the image given to every candidate, and the export size.
        peer: ``torchvision.models`` builder (detection / segmentation).
        peer_kwargs: Its arguments (no weights are downloaded).
        form: ``'detector'`` or ``'segmentor'``.
        note: What differs between the two, if anything.
    """

    label: str
    config: str
    shape: tuple[int, int]
    peer: str
    peer_kwargs: dict = field(default_factory=dict)
    form: str = 'detector'
    note: str = ''


#: torchvision builds SSDLite's MobileNetV3 with the reduced tail when it has no ImageNet
#: backbone (weights_backbone=None), hence our -rt config; its LR-ASPP is at output
#: stride 16, as our config. The shape is the size of the configs' test pipelines.
WHOLE_MODELS: dict[str, WholeModelPair] = {
    'ssdlite': WholeModelPair(
        'SSDLite320 MobileNetV3-L (reduced tail)',
        'configs/mobilenetv3-large-rt_ssdlite.py',
        (320, 320),
        'ssdlite320_mobilenet_v3_large',
        dict(weights_backbone=None, num_classes=81),  # 80 COCO classes + background
        'detector',
    ),
    'lraspp': WholeModelPair(
        'LR-ASPP MobileNetV3-L',
        'configs/mobilenetv3-large_lraspp_cityscapes.py',
        (1024, 2048),  # the config's test size (Cityscapes): its pipeline resizes to it
        'lraspp_mobilenet_v3_large',
        dict(weights_backbone=None, num_classes=19),
        'segmentor',
        'torchvision: 128 head channels from C5 and a 40-channel stride-8 skip, as ours',
    ),
}

_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
_STD = np.array([58.395, 57.12, 57.375], np.float32)


class _TorchvisionDetector(nn.Module):
    """torchvision detection model on one ``(3, H, W)`` image in [0, 1]:
    ``(boxes, scores, labels)`` (its transform and post-processing included)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model([image])[0]
        return out['boxes'], out['scores'], out['labels']


class _TorchvisionSegmentor(nn.Module):
    """torchvision segmentation model on a ``(1, 3, H, W)`` RGB image in 0-255: ImageNet
    normalisation, the model (logits resized to the input), argmax over classes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.from_numpy(_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.from_numpy(_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model((image - self.mean) / self.std)['out'].argmax(1)


def build_peer_model(pair: WholeModelPair) -> nn.Module:
    """torchvision's model of ``pair``, wrapped to take one image (random weights)."""
    import torchvision.models.detection as det
    import torchvision.models.segmentation as seg

    module = det if pair.form == 'detector' else seg
    builder = getattr(module, pair.peer, None)
    if builder is None:
        raise BenchmarkError(f'torchvision has no {pair.form} builder {pair.peer!r}')
    model = builder(weights=None, **pair.peer_kwargs).eval()
    wrap = _TorchvisionDetector if pair.form == 'detector' else _TorchvisionSegmentor
    return wrap(model).eval()


def _image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A random ``uint8`` RGB image, ``(H, W, 3)``."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _peer_input(rgb: np.ndarray, form: str) -> np.ndarray:
    """torchvision's input: ``(3, H, W)`` in [0, 1] (detection) or ``(1, 3, H, W)`` in
    0-255 (segmentation), float32."""
    x = rgb.transpose(2, 0, 1).astype(np.float32)
    return x / 255.0 if form == 'detector' else x[None]


def _calibration_rgb(n: int, shape: tuple[int, int]) -> list[np.ndarray]:
    """Built-in train images (rendered), resized to ``shape``, ``uint8`` RGB."""
    from mmbackbones.deploy.quantize import calibration_images

    feeds = calibration_images(n, shape, normalize=False)
    return [np.clip(f[0][0].transpose(1, 2, 0), 0, 255).round().astype(np.uint8) for f in feeds]


class _Builder:
    """Exports, quantizes and builds the steps of one pair's candidates (files in a
    temporary folder)."""

    def __init__(self, pair: WholeModelPair, threads: int, calibration: int, tmp: str) -> None:
        self.pair, self.threads, self.calibration, self.tmp = pair, threads, calibration, tmp
        self.rgb = _image(pair.shape)
        self.bgr = np.ascontiguousarray(self.rgb[..., ::-1])
        self._files: dict[tuple[str, str], str] = {}
        self._ours = self._peer = None

    # ------------------------------------------------------------------ models
    def ours_model(self) -> nn.Module:
        if self._ours is None:
            from mmbackbones.apis import init_model

            self._ours = init_model(self.pair.config)
        return self._ours

    def peer_model(self) -> nn.Module:
        if self._peer is None:
            self._peer = build_peer_model(self.pair)
        return self._peer

    # ------------------------------------------------------------------ files
    def _fp32(self, ours: bool) -> str:
        key = ('ours' if ours else 'peer', 'fp32')
        if key not in self._files:
            path = os.path.join(self.tmp, f'{key[0]}.onnx')
            if ours:
                from mmbackbones.deploy.export import export_model

                export_model(self.pair.config, None, self.pair.shape, path, check=False)
            else:
                from mmbackbones.deploy.engines import export_onnx

                x = torch.from_numpy(_peer_input(self.rgb, self.pair.form))
                export_onnx(self.peer_model(), (x,), path)
            self._files[key] = path
        return self._files[key]

    def _int8(self, ours: bool, runtime: str) -> str:
        method = INT8_METHOD[runtime]
        key = ('ours' if ours else 'peer', method)
        if key not in self._files:
            from mmbackbones.deploy.quantize import nodes_under, quantize

            src = self._fp32(ours)
            images = _calibration_rgb(self.calibration, self.pair.shape)
            if ours:
                from mmbackbones.deploy.quantize import runtime_feeds
                from mmbackbones.deploy.runtime import Runtime

                bgr = [np.ascontiguousarray(i[..., ::-1]) for i in images]
                feeds = runtime_feeds(Runtime(src, self.pair.config), bgr)
            else:
                feeds = [(_peer_input(i, self.pair.form),) for i in images]
            # NNCF writes ONNX here: the Runtime reads the export's metadata from it
            dst = os.path.join(self.tmp, f'{key[0]}-int8-{method}.onnx')
            self._files[key] = quantize(src, dst, feeds, method, nodes=nodes_under(src))
        return self._files[key]

    # ------------------------------------------------------------------ steps
    def step(self, ours: bool, engine: str) -> Callable[[], object]:
        if not engine:
            return self._torch_step(ours)
        spec = EngineSpec.parse(engine)
        path = self._int8(ours, spec.runtime) if spec.precision == 'int8' else self._fp32(ours)
        precision = 'bf16' if spec.precision == 'bf16' else 'fp32'
        if ours:
            from mmbackbones.deploy.runtime import Runtime

            options = None
            if spec.runtime == 'openvino':
                hint = 'bf16' if precision == 'bf16' else 'f32'
                options = {'INFERENCE_PRECISION_HINT': hint, 'NUM_STREAMS': 1,
                           'PERFORMANCE_HINT': 'LATENCY'}  # fmt: skip
            rt = Runtime(path, self.pair.config, spec.runtime, self.threads, options)
            return lambda: rt.predict(self.bgr)
        from mmbackbones.deploy.engines import Engine

        engine_ = Engine(path, spec.runtime, self.threads, precision)
        x = _peer_input(self.rgb, self.pair.form)
        return lambda: engine_(x)

    def _torch_step(self, ours: bool) -> Callable[[], object]:
        if ours:
            model = self.ours_model()
            if self.pair.form == 'detector':
                from mmdet.apis import inference_detector as infer
            else:
                from mmseg.apis import inference_model as infer

            def step() -> object:
                with torch.no_grad():
                    return infer(model, self.bgr)

            return step
        model = self.peer_model()
        x = torch.from_numpy(_peer_input(self.rgb, self.pair.form))

        def peer_step() -> object:
            with torch.no_grad():
                return model(x)

        return peer_step


def run_whole_session(
    pairs: Sequence[WholeModelPair],
    engines: Sequence[EngineSpec],
    threads: int,
    repeats: int,
    warmup: int,
    calibration: int = 32,
    torch_rows: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[Row]:
    """Time each pair's candidates (ours and torchvision's, in PyTorch unless
    ``torch_rows=False``, and in every engine of ``engines``) interleaved, one pair at a
    time; rows with ratios ours / torchvision per path attached.

    Raises:
        BenchmarkError: A runtime that is not installed, or a model it cannot run.
    """
    from mmbackbones.deploy.engines import EngineUnavailableError

    log = log or (lambda _msg: None)
    torch.set_num_threads(threads)
    rows: list[Row] = []
    for pair in pairs:
        with tempfile.TemporaryDirectory(prefix='mmbackbones-whole-') as tmp:
            builder = _Builder(pair, threads, calibration, tmp)
            paths = ([''] if torch_rows else []) + [s.label for s in engines]
            steps: dict[tuple[str, str], Callable[[], object]] = {}
            for engine in paths:
                for ours in (True, False):
                    impl = 'mmbackbones' if ours else f'torchvision {pair.peer}'
                    log(f'build {pair.label} | {impl} | {engine or "PyTorch"}')
                    try:
                        steps[impl, engine] = builder.step(ours, engine)
                    except EngineUnavailableError as e:
                        raise BenchmarkError(f'{engine}: {e}') from e
            named = {f'{impl}|{engine}': fn for (impl, engine), fn in steps.items()}
            log(f'time {pair.label}: {len(named)} candidates, {warmup} + {repeats} rounds')
            times = time_round_robin(named, repeats, warmup)
            h, w = pair.shape
            for impl, engine in steps:
                rows.append(
                    Row(
                        pair.label,
                        impl,
                        f'{pair.form} (end to end)',
                        'infer',
                        1,
                        threads,
                        h,
                        w,
                        times[f'{impl}|{engine}'],
                        engine=engine,
                    )  # fmt: skip
                )
    attach_ratios(rows)
    return rows

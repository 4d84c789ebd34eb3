"""Run an exported whole model (:func:`mmbackbones.deploy.export_model`) in ONNX Runtime
or OpenVINO and get mmdet / mmseg data samples back, so that the hosts' metrics and
visualizers work unchanged.

:class:`Runtime` feeds the graph (each image padded to the exported size with the raw
value that normalises to the preprocessor's padding) and finishes what the graph leaves
out, as mmdet's / mmseg's ``predict`` does: boxes divided by the resize factor, Mask
R-CNN's masks pasted into the original image (``FCNMaskHead.predict_by_feat``), the
segmentation logits cropped, resized to the original image and arg-maxed
(``BaseSegmentor.postprocess_result``).

:class:`RuntimeModel` wraps a :class:`Runtime` as an mmengine model
(``mmbackbones.RuntimeModel``): ``tools/test.py CONFIG MODEL.onnx --backend
onnxruntime|openvino`` puts it in place of the config's model, and the runner's test loop
and the config's evaluator (COCO bbox / segm, mIoU) run unchanged.

OpenVINO is optional (``pip install mmbackbones[openvino]``). It runs in float32 here
(``INFERENCE_PRECISION_HINT=f32``): its CPU plugin otherwise picks bfloat16 on CPUs with
native bf16 (AVX512-BF16, AMX), which changes the numbers.
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from mmengine.model import BaseModel

from mmbackbones.registry import MODELS

from .export.common import read_metadata

#: backend name -> what to install
BACKENDS = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


class _OnnxRuntime:
    """An ``onnxruntime.InferenceSession`` on the CPU."""

    def __init__(self, path: str, threads: int | None, options: dict | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        for key, value in (options or {}).items():
            setattr(opts, key, value)
        self.session = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, feed: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        return self.session.run(outputs, {k: v for k, v in feed.items() if k in self.inputs})


class _OpenVINO:
    """An OpenVINO model compiled for the CPU, float32 unless ``options`` says otherwise.

    Its ONNX reader makes ``TopK`` unstable, while ONNX orders equal values by index (as
    ONNX Runtime does, and the exported graphs rely on it to visit tied scores in one
    order): every TopK is set ``stable`` here.
    """

    def __init__(self, path: str, threads: int | None, options: dict | None) -> None:
        import openvino as ov

        config = {'INFERENCE_PRECISION_HINT': 'f32'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        config.update(options or {})
        core = ov.Core()
        model = core.read_model(path)
        for op in model.get_ops():  # equal scores in index order, as ONNX specifies TopK
            if op.get_type_name() == 'TopK' and 'stable' in op.get_attributes():
                op.set_attribute('stable', True)
        self.compiled = core.compile_model(model, 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.inputs = [n for i in self.compiled.inputs for n in i.get_names()]

    def __call__(self, feed: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        res = self.request.infer({k: v for k, v in feed.items() if k in self.inputs})
        return [np.asarray(res[self.compiled.output(name)]) for name in outputs]


def open_backend(path: str, backend: str, threads: int | None = None, options: dict | None = None):
    """A callable ``(feed, output_names) -> arrays`` running ``path`` in ``backend``.

    Raises:
        ValueError: Unknown backend, or the backend's package is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {sorted(BACKENDS)}, got {backend!r}')
    try:
        __import__(BACKENDS[backend])
    except ImportError:
        extra = 'openvino' if backend == 'openvino' else 'onnx'
        raise ValueError(
            f'backend {backend!r} needs the {BACKENDS[backend]!r} package: '
            f'pip install "mmbackbones[{extra}]"'
        ) from None
    return (_OnnxRuntime if backend == 'onnxruntime' else _OpenVINO)(path, threads, options)


def config_num_classes(cfg: Any) -> int | None:
    """The class count of a config's model head (``None`` when not stated)."""
    model = cfg.get('model', {})
    for head in (
        model.get('decode_head'),
        (model.get('roi_head') or {}).get('bbox_head'),
        model.get('bbox_head'),
    ):
        if isinstance(head, dict) and 'num_classes' in head:
            return int(head['num_classes'])
    return None


class Runtime:
    """An exported whole model running in ONNX Runtime or OpenVINO.

    Args:
        onnx_path (str): A file written by :func:`mmbackbones.deploy.export_model`.
        cfg (str | Config | None): The config it was exported from (as used, e.g. with
            ``--builtin-data`` applied): its test pipeline prepares raw images, and its
            head's class count is checked against the file. ``None``: only data batches
            (already through the pipeline) can be predicted.
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Default: 'onnxruntime'.
        threads (int | None): Intra-op threads; ``None``: the runtime's default.
        options (dict | None): ``onnxruntime.SessionOptions`` attributes, or OpenVINO
            compile properties (e.g. ``{'INFERENCE_PRECISION_HINT': 'bf16'}``).

    Raises:
        ValueError: A file without our metadata, a config of another task or class
            count, an unknown or missing backend.

    Example:
        >>> rt = Runtime('ssdlite.onnx', 'configs/mobilenetv3-large_ssdlite.py')  # doctest: +SKIP
        >>> sample = rt.predict('demo.jpg')[0]  # doctest: +SKIP
        >>> sample.pred_instances.bboxes.shape  # doctest: +SKIP
        torch.Size([200, 4])
    """

    def __init__(
        self,
        onnx_path: str,
        cfg: Any = None,
        backend: str = 'onnxruntime',
        threads: int | None = None,
        options: dict | None = None,
    ) -> None:
        if not osp.isfile(onnx_path):
            raise ValueError(f'ONNX file {onnx_path!r} does not exist')
        self.path = onnx_path
        self.meta = read_metadata(onnx_path)
        self.cfg = None
        if cfg is not None:
            from mmbackbones.apis import host_of, load_config

            self.cfg = load_config(cfg)
            task = 'detection' if host_of(self.cfg) == 'mmdet' else 'segmentation'
            if task != self.meta['task']:
                raise ValueError(
                    f'{onnx_path} is a {self.meta["task"]} model; the config is for {task}'
                )
            check_num_classes(self.meta, config_num_classes(self.cfg), onnx_path)
        self.backend = backend
        self._run = open_backend(onnx_path, backend, threads, options)
        self._pipeline = None
        self._paste_head = None

    @property
    def shape(self) -> tuple[int, int]:
        """The exported input ``(H, W)``."""
        return tuple(self.meta['shape'])

    # ------------------------------------------------------------------- inputs
    def _test_pipeline(self, ndarray: bool):
        from mmcv.transforms import Compose
        from mmengine.registry import init_default_scope

        if self.cfg is None:
            raise ValueError('predicting images needs the config (Runtime(onnx_path, cfg))')
        cfg = self.cfg
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        dataset = cfg.test_dataloader.dataset
        while 'pipeline' not in dataset and ('dataset' in dataset or 'datasets' in dataset):
            dataset = dataset['dataset'] if 'dataset' in dataset else dataset['datasets'][0]
        steps = [dict(t) for t in dataset['pipeline'] if 'LoadAnnotations' not in t['type']]
        if ndarray:
            steps[0]['type'] = 'LoadImageFromNDArray'
        return Compose(steps)

    def collate(self, images: Any) -> dict[str, list]:
        """A data batch (``inputs``, ``data_samples``) from images: file paths or HWC
        BGR ``uint8`` arrays (one, or a sequence), through the config's test pipeline."""
        if isinstance(images, (str, np.ndarray)):
            images = [images]
        batch: dict[str, list] = {'inputs': [], 'data_samples': []}
        for i, img in enumerate(images):
            is_array = isinstance(img, np.ndarray)
            data = dict(img=img, img_id=i) if is_array else dict(img_path=img, img_id=i)
            out = self._test_pipeline(is_array)(data)
            batch['inputs'].append(out['inputs'])
            batch['data_samples'].append(out['data_samples'])
        return batch

    def feeds(self, data: Any) -> list[dict[str, np.ndarray]]:
        """The graph inputs for each image of ``data`` (a data batch, or images as in
        :meth:`collate`): ``input`` padded to the exported size, and for detectors
        ``img_shape``. Used by :meth:`predict`; also what calibration and timing feed.

        Raises:
            ValueError: An image larger than the exported input.
        """
        if not (isinstance(data, dict) and 'inputs' in data):
            data = self.collate(data)
        h_max, w_max = self.shape
        pad = np.asarray(self.meta['raw_pad_value'], dtype=np.float32).reshape(1, 3, 1, 1)
        feeds = []
        for img in data['inputs']:
            img = np.asarray(img.cpu().numpy() if torch.is_tensor(img) else img)
            _, h, w = img.shape
            if h > h_max or w > w_max:
                raise ValueError(
                    f'image of {h}x{w} after the test pipeline does not fit the exported '
                    f'input {h_max}x{w_max}; export with --shape of at least that size'
                )
            x = np.broadcast_to(pad, (1, 3, h_max, w_max)).copy()
            x[0, :, :h, :w] = img
            feed = {'input': x}
            if 'img_shape' in self.meta['inputs']:
                feed['img_shape'] = np.asarray([h, w], dtype=np.float32)
            feeds.append(feed)
        return feeds

    def run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's raw outputs (``dets``, ``labels``, ``masks`` / ``seg_logits``) for
        one feed of :meth:`feeds`."""
        names = self.meta['outputs']
        return dict(zip(names, self._run(feed, names)))

    # ------------------------------------------------------------------ outputs
    def predict(self, data: Any) -> list:
        """Predict a data batch (as a dataloader yields it) or images (paths / BGR
        arrays): mmdet ``DetDataSample`` (``pred_instances`` with ``bboxes``, ``scores``,
        ``labels`` and, for Mask R-CNN, ``masks``, in original image pixels) or mmseg
        ``SegDataSample`` (``seg_logits``, ``pred_sem_seg``), as the hosts' ``predict``.
        """
        if not (isinstance(data, dict) and 'inputs' in data):
            data = self.collate(data)
        samples = data.get('data_samples') or [None] * len(data['inputs'])
        results = []
        for img, feed, sample in zip(data['inputs'], self.feeds(data), samples):
            outputs = self.run(feed)
            if sample is None:  # no metadata: the image is the original one
                hw = tuple(img.shape[-2:])
                meta = {'ori_shape': hw, 'img_shape': hw, 'scale_factor': (1.0, 1.0)}
            else:
                meta = sample.metainfo
            if self.meta['task'] == 'detection':
                results.append(self._detection(outputs, sample, meta))
            else:
                results.append(self._segmentation(outputs, sample, meta))
        return results

    def _detection(self, outputs: dict, sample: Any, meta: dict) -> Any:
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        dets = torch.from_numpy(np.asarray(outputs['dets'], dtype=np.float32))
        res = InstanceData()
        res.bboxes = dets[:, :4].clone()
        res.scores = dets[:, 4].clone()
        res.labels = torch.from_numpy(np.asarray(outputs['labels'])).long()
        scale = meta.get('scale_factor', (1.0, 1.0))
        if 'masks' in outputs:
            res = self._paste_masks(res, torch.from_numpy(outputs['masks']), meta)
        else:  # boxes in original image pixels, as mmdet's predict with rescale=True
            res.bboxes /= res.bboxes.new_tensor(scale).repeat(2)
        sample = sample if sample is not None else DetDataSample(metainfo=meta)
        sample.pred_instances = res
        return sample

    def _paste_masks(self, res: Any, probs: torch.Tensor, meta: dict) -> Any:
        """mmdet's ``FCNMaskHead.predict_by_feat`` on the graph's mask probabilities
        (boxes rescaled, masks pasted into the original image and thresholded)."""
        from mmdet.models.roi_heads.mask_heads import FCNMaskHead
        from mmengine.config import ConfigDict

        if self._paste_head is None:  # the method's state is ``class_agnostic`` only
            self._paste_head = FCNMaskHead(
                num_convs=0, in_channels=1, conv_out_channels=1, num_classes=1,
                class_agnostic=True,
            )  # fmt: skip
        meta = {**meta, 'scale_factor': meta.get('scale_factor', (1.0, 1.0))}
        test_cfg = ConfigDict(mask_thr_binary=self.meta['mask_thr_binary'])
        return self._paste_head.predict_by_feat(
            (probs[:, None],), [res], [meta], test_cfg, rescale=True, activate_map=True
        )[0]

    def _segmentation(self, outputs: dict, sample: Any, meta: dict) -> Any:
        import torch.nn.functional as F
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        logits = torch.from_numpy(np.asarray(outputs['seg_logits']))
        if 'img_shape' in meta:
            h, w = meta['img_shape'][:2]
            logits = logits[:, :, :h, :w]
        logits = F.interpolate(
            logits,
            size=tuple(meta['ori_shape'][:2]),
            mode='bilinear',
            align_corners=self.meta['align_corners'],
        )[0]
        if logits.shape[0] > 1:
            pred = logits.argmax(dim=0, keepdim=True)
        else:
            logits = logits.sigmoid()
            pred = (logits > self.meta['threshold']).to(logits)
        sample = sample if sample is not None else SegDataSample(metainfo=meta)
        sample.set_data(
            {'seg_logits': PixelData(data=logits), 'pred_sem_seg': PixelData(data=pred)}
        )
        return sample


def check_num_classes(meta: dict, expected: int | None, where: str) -> None:
    """``ValueError`` when the exported model's class count differs from the config's."""
    if expected is not None and expected != meta['num_classes']:
        raise ValueError(
            f'{where} predicts {meta["num_classes"]} classes, the config {expected} '
            '(exported from another config? --builtin-data on one side only?)'
        )


@MODELS.register_module()
class RuntimeModel(BaseModel):
    """A :class:`Runtime` as an mmengine model, for the runner's val / test loops.

    ``test_step`` / ``val_step`` return the runtime's data samples, so the config's
    evaluator runs unchanged. Registered as ``mmbackbones.RuntimeModel``.

    Args:
        onnx_file (str): The exported whole model.
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        num_classes (int | None): The config's class count, checked against the file.
        threads (int | None): Intra-op threads of the runtime.
        data_preprocessor (dict | None): Ignored (the runner passes the config's; the
            graph normalises, :class:`Runtime` pads).

    Example:
        >>> cfg.model = dict(type='mmbackbones.RuntimeModel', onnx_file='m.onnx',
        ...                  backend='openvino')  # doctest: +SKIP
    """

    def __init__(
        self,
        onnx_file: str,
        backend: str = 'onnxruntime',
        num_classes: int | None = None,
        threads: int | None = None,
        data_preprocessor: dict | None = None,
    ) -> None:
        super().__init__()
        self.runtime = Runtime(onnx_file, None, backend, threads)
        check_num_classes(self.runtime.meta, num_classes, onnx_file)

    def forward(self, inputs: Any, data_samples: Sequence | None = None, mode: str = 'predict'):
        if mode != 'predict':
            raise ValueError(f'RuntimeModel runs inference only (mode="predict"), got {mode!r}')
        return self.runtime.predict({'inputs': inputs, 'data_samples': data_samples})

    def test_step(self, data: dict) -> list:
        return self.runtime.predict(data)

    def val_step(self, data: dict) -> list:
        return self.runtime.predict(data)


def use_runtime(cfg: Any, onnx_file: str, backend: str, threads: int | None = None) -> Any:
    """Put a :class:`RuntimeModel` running ``onnx_file`` in place of ``cfg.model`` (in
    place; ``load_from`` cleared), after checking the file against the config, so that
    ``Runner.from_cfg(cfg).test()`` evaluates the runtime with the config's own dataset
    and metric (``tools/test.py CONFIG MODEL.onnx --backend ...``).

    Raises:
        ValueError: A missing file, a file without our metadata, another task or class
            count than the config's, an unknown or missing backend.

    Example:
        >>> use_runtime(cfg, 'work_dirs/ssdlite.onnx', 'openvino')  # doctest: +SKIP
        >>> Runner.from_cfg(cfg).test()  # doctest: +SKIP
    """
    from mmbackbones.apis import host_of

    if not osp.isfile(onnx_file):
        raise ValueError(f'ONNX file {onnx_file!r} does not exist')
    meta = read_metadata(onnx_file)
    task = 'detection' if host_of(cfg) == 'mmdet' else 'segmentation'
    if task != meta['task']:
        raise ValueError(f'{onnx_file} is a {meta["task"]} model; the config is for {task}')
    num_classes = config_num_classes(cfg)
    check_num_classes(meta, num_classes, onnx_file)
    open_backend(onnx_file, backend, threads)  # a missing package: one clear error now
    cfg.model = dict(
        type='mmbackbones.RuntimeModel',
        onnx_file=onnx_file,
        backend=backend,
        num_classes=num_classes,
        threads=threads,
    )
    cfg.load_from = None
    cfg.pop('model_wrapper_cfg', None)
    return cfg

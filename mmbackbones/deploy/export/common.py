"""What every exported graph shares: the data preprocessor's normalisation as graph ops,
and the ONNX metadata that tells :class:`mmbackbones.deploy.Runtime` how to feed the graph
and finish its outputs.

The graph input ``input`` is a ``(1, 3, H, W)`` float32 image in the channel order and
0-255 range that the config's test pipeline produces (``LoadImageFromFile``: BGR). The
graph does what mmdet's ``DetDataPreprocessor`` / mmseg's ``SegDataPreProcessor`` do at
test time: the channel swap (``bgr_to_rgb``), then ``(x - mean) / std``. Those
preprocessors pad *after* normalising, with ``pad_value`` (0); a caller padding a smaller
image up to the exported shape pads the raw image with :func:`raw_pad_value` instead,
which normalises to exactly that value.
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

#: key of the JSON metadata in the ONNX file's ``metadata_props``
META_KEY = 'mmbackbones.deploy'
#: version of that metadata's layout; Runtime refuses files written with another
META_FORMAT = 1


class Normalize(nn.Module):
    """The data preprocessor's test-time image transform as graph ops.

    Args:
        preprocessor (nn.Module): The model's ``data_preprocessor`` (mmdet
            ``DetDataPreprocessor``, mmseg ``SegDataPreProcessor`` or mmengine's
            ``ImgDataPreprocessor``).

    Example:
        >>> from mmdet.models.data_preprocessors import DetDataPreprocessor
        >>> pre = DetDataPreprocessor(mean=[1., 2., 3.], std=[2., 2., 2.], bgr_to_rgb=True)
        >>> Normalize(pre)(torch.tensor([3., 2., 1.]).view(1, 3, 1, 1)).flatten().tolist()
        [0.0, 0.0, 0.0]
    """

    def __init__(self, preprocessor: nn.Module) -> None:
        super().__init__()
        swap = getattr(preprocessor, '_channel_conversion', None)
        if swap is None:  # mmseg's name
            swap = getattr(preprocessor, 'channel_conversion', False)
        self.swap = bool(swap)
        if getattr(preprocessor, '_enable_normalize', False):
            mean = preprocessor.mean.detach().float().reshape(1, -1, 1, 1)
            std = preprocessor.std.detach().float().reshape(1, -1, 1, 1)
        else:
            mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
        self.register_buffer('mean', mean)
        self.register_buffer('std', std)
        pad = getattr(preprocessor, 'pad_value', None)
        self.pad_value = float(getattr(preprocessor, 'pad_val', 0) if pad is None else pad)

    def forward(self, x: Tensor) -> Tensor:
        if self.swap:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def raw_pad_value(self) -> list[float]:
        """Per input channel, the raw value that normalises to the preprocessor's
        ``pad_value`` (mean + pad_value * std, in the input's channel order)."""
        raw = (self.mean + self.pad_value * self.std).flatten().tolist()
        return raw[::-1] if self.swap else raw


def dummy_image(shape: tuple[int, int], seed: int = 0) -> Tensor:
    """A reproducible ``(1, 3, H, W)`` 0-255 test image: smooth gradients plus noise, so a
    trained detector sees edges and the features have realistic magnitudes."""
    h, w = shape
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xx = torch.linspace(0, 1, w).view(1, 1, 1, w)
    base = (
        torch.rand(1, 3, 1, 1, generator=g) * 255 * yy
        + torch.rand(1, 3, 1, 1, generator=g) * 255 * xx
    )
    img = base * 0.5 + torch.rand(1, 3, h, w, generator=g) * 64
    return img.clamp(0, 255).round()


def write_metadata(path: str, meta: dict[str, Any]) -> None:
    """Store ``meta`` (JSON) in the ONNX file's ``metadata_props`` under :data:`META_KEY`."""
    import onnx

    model = onnx.load(path)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({'format': META_FORMAT, **meta})
    onnx.save(model, path)


def read_metadata(path: str) -> dict[str, Any]:
    """The metadata :func:`write_metadata` stored; ``ValueError`` when the file was not
    exported by :func:`mmbackbones.deploy.export_model` (or by an incompatible version).

    Reads only the ONNX header fields, so it works on large files too.
    """
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 (onnx raises DecodeError, OSError, ...)
        raise ValueError(f'{path}: not a readable ONNX file ({e})') from None
    props = {p.key: p.value for p in model.metadata_props}
    if META_KEY not in props:
        raise ValueError(
            f'{path}: no {META_KEY!r} metadata; export the whole model with '
            'tools/export_onnx.py CONFIG --checkpoint CKPT --shape H W -o FILE'
        )
    meta = json.loads(props[META_KEY])
    if meta.get('format') != META_FORMAT:
        raise ValueError(
            f'{path}: metadata format {meta.get("format")}, this version reads '
            f'{META_FORMAT}; export the model again'
        )
    return meta

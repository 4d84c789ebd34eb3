"""Convolution padding modes: PyTorch's symmetric padding and TensorFlow's ``'SAME'``.

TensorFlow pads a convolution so that the output has ``ceil(n / stride)`` pixels, and
puts the odd pixel of padding at the *end* (bottom / right). PyTorch pads symmetrically.
Both give the same output size, and for a stride-1 convolution with an odd (dilated)
kernel the same padding too; for a strided one they differ (a 3x3/2 conv on an even input:
TF pads 0 before and 1 after, PyTorch 1 and 1), so weights trained in TensorFlow (timm's
``tf_*`` ports, the ``efficientnet_pytorch`` files) compute shifted, wrong features with
symmetric padding. ``padding='tf_same'`` reproduces TF: static symmetric padding where the
two agree, a :class:`TFSamePad` in front of the (unpadded) convolution where they do not;
its amounts depend on the input size, so it works for any input size.

Example:
    >>> import torch
    >>> tf_same_padding(224, 3, 2), tf_same_padding(225, 3, 2), tf_same_padding(224, 5, 2)
    ((0, 1), (1, 1), (1, 2))
    >>> TFSamePad(3, 2)(torch.zeros(1, 1, 4, 5)).shape
    torch.Size([1, 1, 5, 7])
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

#: The padding modes of ``padding=`` (backbones, :class:`~.conv.ConvNormAct`).
PADDINGS = ('symmetric', 'tf_same')


def check_padding(padding: str, owner: str = 'padding', valid: tuple[str, ...] = PADDINGS) -> str:
    """``padding`` if it is one of ``valid``, else ``ValueError`` naming the valid modes.

    Example:
        >>> check_padding('tf_same')
        'tf_same'
    """
    if padding not in valid:
        raise ValueError(
            f"{owner}: padding must be one of {valid} ('tf_same': TensorFlow's 'SAME' "
            f'padding, for weights trained in TensorFlow), got {padding!r}'
        )
    return padding


def tf_same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1):
    """``(before, after)`` zero padding of TensorFlow's ``'SAME'`` along one axis of
    ``size`` pixels: ``ceil(size / stride)`` outputs, the odd pixel after.

    Example:
        >>> tf_same_padding(112, 5, 1), tf_same_padding(7, 3, 2)
        ((2, 2), (1, 1))
    """
    out = (size + stride - 1) // stride  # ceil, also for symbolic sizes
    total = (out - 1) * stride + (kernel_size - 1) * dilation + 1 - size
    if isinstance(total, int):
        total = max(total, 0)
    elif isinstance(total, torch.Tensor):  # a size traced by TorchScript (ONNX export)
        total = total.clamp(min=0)
    else:  # a symbolic size (torch.export / dynamo)
        total = torch.sym_max(total, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size: int, stride: int = 1, dilation: int = 1) -> bool:
    """Whether TF's ``'SAME'`` padding is the symmetric ``dilation * (k - 1) // 2`` for
    every input size (stride 1 and an even total padding)."""
    return stride == 1 and (dilation * (kernel_size - 1)) % 2 == 0


class TFSamePad(nn.Module):
    """Zero padding as TensorFlow's ``'SAME'`` does it for a ``kernel_size`` / ``stride``
    / ``dilation`` convolution that follows without padding of its own (computed from the
    input size at every call).

    Args:
        kernel_size (int): The convolution's kernel size (square).
        stride (int): Its stride. Default: 1.
        dilation (int): Its dilation. Default: 1.
    """

    def __init__(self, kernel_size: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, bottom = tf_same_padding(h, self.kernel_size, self.stride, self.dilation)
        left, right = tf_same_padding(w, self.kernel_size, self.stride, self.dilation)
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}'


def conv_padding(
    kernel_size: int, stride: int = 1, dilation: int = 1, padding: str = 'symmetric'
) -> tuple[int, TFSamePad | None]:
    """``(the conv's own padding, a pad layer to put in front or None)`` for a padding
    mode.

    Example:
        >>> conv_padding(3, 2)
        (1, None)
        >>> conv_padding(3, 1, padding='tf_same'), conv_padding(3, 2, padding='tf_same')[0]
        ((1, None), 0)
    """
    check_padding(padding)
    if padding == 'symmetric' or is_static_same(kernel_size, stride, dilation):
        return dilation * (kernel_size - 1) // 2, None
    return 0, TFSamePad(kernel_size, stride, dilation)

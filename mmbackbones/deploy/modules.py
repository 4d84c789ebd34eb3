"""Inference-only forms of our blocks, built by :func:`mmbackbones.deploy.fuse`.

The SE gets one (its BatchNorm folded into ``fc1``, the product in place), and so do two
kinds of convolution: pointwise ones as GEMMs (:class:`PointwiseConv2d`), long-span
dilated ones on sub-grids (:class:`SpaceToBatchConv2d`). Which convolution gets which
form is :func:`mmbackbones.deploy.policy.conv_kernel`'s decision. Every form uses public
PyTorch operations only. The residual blocks keep their own modules, whose forward
already adds the shortcut in place on a fresh output when autograd does not record.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmbackbones.models.layers.se import squeeze

from . import policy
from .fold import conv_config


class SqueezeExciteDeploy(nn.Module):
    """``x * gate(fc2(act(fc1(mean(x)))))`` with the SE's BatchNorm folded into ``fc1``.

    Args:
        fc1 (nn.Conv2d): Squeeze conv (BN folded in).
        act (nn.Module): Activation after the squeeze.
        fc2 (nn.Conv2d): Excite conv.
        gate (nn.Module): Gate (sigmoid / hard-sigmoid).
        inplace (bool): Multiply ``x`` in place; only when the caller owns ``x`` (it is
            the fresh output of the preceding conv). Default: False.

    Example:
        >>> se = SqueezeExciteDeploy(nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 8, 1),
        ...                          nn.Sigmoid())
        >>> se(torch.rand(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        fc1: nn.Conv2d,
        act: nn.Module,
        fc2: nn.Conv2d,
        gate: nn.Module,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.gate = fc1, act, fc2, gate
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(squeeze(x)))))
        return x.mul_(s) if self.inplace else x * s


class _ConvForm(nn.Conv2d):
    """A deploy form of ``nn.Conv2d``: same parameters, a faster forward for some inputs.

    Subclasses say which convolutions they replace (:meth:`applies_to`, described by
    ``replaces``) and fall back to ``nn.Conv2d.forward`` for other inputs.
    """

    #: what :meth:`applies_to` accepts, for the error message
    replaces = ''

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        raise TypeError(f'{cls.__name__} does not define applies_to')  # pragma: no cover

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> _ConvForm:
        """The same convolution in this form, built by its constructor (on the meta device,
        so nothing is allocated) around ``conv``'s own ``weight`` and ``bias`` Parameter
        objects: the state-dict keys, ties and references to them are kept. ``kwargs`` go
        to the constructor. Module hooks are not carried over; convolutions that have
        some are not replaced (:func:`~mmbackbones.deploy.policy.is_plain_conv`)."""
        if not cls.applies_to(conv):
            raise ValueError(f'{cls.__name__} replaces {cls.replaces}, got {conv}')
        new = cls(**conv_config(conv, device='meta'), **kwargs)
        new.weight, new.bias = conv.weight, conv.bias
        return new.train(conv.training)


class PointwiseConv2d(_ConvForm):
    """A 1x1, stride-1, ungrouped convolution run as one matrix product (GEMM).

    A pointwise convolution is a matrix product over channels. On a channels-last tensor
    the permuted view ``x[n, h, w, :]`` is contiguous, so ``F.linear`` runs one GEMM with
    no copy and the result, permuted back, is again channels-last. On a contiguous NCHW
    tensor it is ``W @ x.view(n, c, h * w)``. On our CPU (2 threads, batch 1, each layer
    timed on its own) these GEMMs beat oneDNN's 1x1 convolution on almost every pointwise
    layer of every family (NHWC: 37/40 to 62/64 of the layers, 5-30% of their time; NCHW
    at output stride 8: 30% of the pointwise time, though only ~3% of the whole network
    in place). Other inputs, and ONNX export (where a ``Conv`` node is the
    portable form), take ``nn.Conv2d``'s own path. Parameters and state-dict keys are the
    convolution's.

    Example:
        >>> conv = nn.Conv2d(8, 4, 1)
        >>> pw = PointwiseConv2d.from_conv(conv)
        >>> x = torch.rand(2, 8, 5, 5)
        >>> (pw(x) - conv(x)).abs().max().item() < 1e-6
        True
        >>> x = x.to(memory_format=torch.channels_last)
        >>> (pw(x) - conv(x)).abs().max().item() < 1e-6
        True
        >>> pw(x).is_contiguous(memory_format=torch.channels_last)
        True
    """

    replaces = 'a 1x1, stride-1, ungrouped, unpadded Conv2d'

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        """Whether ``conv`` is a plain pointwise convolution this class can replace."""
        return policy.is_plain_conv(conv) and policy.is_pointwise(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or torch.onnx.is_in_onnx_export():
            return super().forward(x)
        y = _pointwise_gemm(x, self.weight, self.bias)
        return super().forward(x) if y is None else y


def _pointwise_gemm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor | None:
    """A 1x1 stride-1 convolution of a 4-D ``x`` as one GEMM; ``None`` for strided ``x``
    that is neither channels-last nor contiguous."""
    w = weight.flatten(1)
    if x.is_contiguous(memory_format=torch.channels_last):
        return F.linear(x.permute(0, 2, 3, 1), w, bias).permute(0, 3, 1, 2)
    if not x.is_contiguous():
        return None
    n, c, h, wd = x.shape
    if n == 1 and bias is not None:
        y = torch.addmm(bias[:, None], w, x.view(c, h * wd))
    else:
        y = torch.matmul(w, x.view(n, c, h * wd))
        if bias is not None:
            y.add_(bias[:, None])
    return y.view(n, -1, h, wd)


class SpaceToBatchConv2d(_ConvForm):
    """A dilated, stride-1, "same"-padded grouped convolution run on ``d x d`` sub-grids.

    With dilation ``d``, output pixel ``(i*d + a, j*d + b)`` only reads input pixels of the
    same residue ``(a, b)`` modulo ``d``, so the dilated convolution equals an undilated
    one applied to each of the ``d*d`` interleaved sub-images, stacked along the batch
    ("space to batch", as in TensorFlow's ``atrous_conv2d``). The input is zero-padded to
    a multiple of ``d``, which adds only zeros the convolution's own padding would read.

    Why: oneDNN's NHWC depthwise kernel takes a slow path once the dilated kernel spans
    more than 9 pixels (``(k - 1) * d > 8``): measured at 28x28 on our CPU, a 5x5 kernel
    at dilation 4 took 7-13 ms against 0.6-1.0 ms on sub-grids, copies included, while
    spans up to 9 are as fast as undilated (:data:`~mmbackbones.deploy.policy.FAST_SPAN`).
    :func:`~mmbackbones.deploy.fuse` therefore swaps only convolutions past that span.
    Inputs that are not channels-last, and ONNX export, take ``nn.Conv2d``'s own path.

    Example:
        >>> conv = nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8)
        >>> s2b = SpaceToBatchConv2d.from_conv(conv)
        >>> x = torch.rand(2, 8, 30, 27).to(memory_format=torch.channels_last)
        >>> (s2b(x) - conv(x)).abs().max().item() < 1e-5
        True
    """

    replaces = (
        'a grouped, stride-1, same-padded, odd-kernel Conv2d with dilation spanning more '
        f'than {policy.FAST_SPAN} pixels'
    )

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        """A grouped, stride-1, "same"-padded dilated conv past oneDNN's fast span
        (:data:`~mmbackbones.deploy.policy.FAST_SPAN`)."""
        return policy.is_plain_conv(conv) and policy.needs_space_to_batch(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() != 4
            or torch.onnx.is_in_onnx_export()
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return super().forward(x)
        d = self.dilation[0]
        n, c, h, w = x.shape
        hp, wp = -(-h // d) * d, -(-w // d) * d
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h))
        # (n, hp, wp, c) -> (d, d, n, hp/d, wp/d, c): one copy, each sub-grid a batch item
        sub = x.permute(0, 2, 3, 1).reshape(n, hp // d, d, wp // d, d, c)
        sub = sub.permute(2, 4, 0, 1, 3, 5).reshape(d * d * n, hp // d, wp // d, c)
        kh, kw = self.kernel_size
        y = F.conv2d(
            sub.permute(0, 3, 1, 2), self.weight, self.bias, 1, (kh // 2, kw // 2), 1, self.groups
        )
        o = y.shape[1]
        y = y.permute(0, 2, 3, 1).reshape(d, d, n, hp // d, wp // d, o)
        y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, hp, wp, o)[:, :h, :w]
        return y.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

"""Inference-only forms of our blocks, built by :func:`mmbackbones.deploy.fuse`.

The SE gets one (its BatchNorm folded into ``fc1``, the product in place), and so do the
convolutions: pointwise ones as GEMMs (:class:`PointwiseConv2d`), long-span dilated ones on
sub-grids (:class:`SpaceToBatchConv2d`), our conv layers as prepacked oneDNN calls
(:class:`OneDNNConv2d`, and :class:`ResidualDeploy` for the AnyNet residual blocks). Which
convolution gets which form is :func:`mmbackbones.deploy.policy.conv_kernel`'s decision;
the private PyTorch ops of the oneDNN forms live in :mod:`mmbackbones.deploy.onednn`.
The other residual blocks keep their own modules, whose forward already adds the
shortcut in place on a fresh output when autograd does not record.
"""

from __future__ import annotations

from itertools import islice

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import onednn, policy
from .fold import conv_config
from .onednn import ONEDNN_ACTS, onednn_post_op


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
        s = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
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


def onednn_available() -> bool:
    """Whether PyTorch's private oneDNN ops are here and pass their self-test
    (:func:`mmbackbones.deploy.onednn.probe`, run once per process).

    Example:
        >>> isinstance(onednn_available(), bool)
        True
    """
    return onednn.probe().ok


class OneDNNConv2d(_ConvForm):
    """A convolution and its activation as one oneDNN call on prepacked weights.

    PyTorch's eager ``Conv2d`` reorders the weight into oneDNN's blocked layout on every
    call, and runs the activation (and a residual addition) as separate passes over the
    output. This form reorders the weight once per input shape (``torch.compile``'s
    frozen CPU graphs do the same) and applies the activation, or a residual addition
    followed by the activation (:meth:`forward_add`), as oneDNN post-ops in the
    convolution's own pass. The call costs ~40 us more fixed overhead than a small
    ``Conv2d``, so :func:`~mmbackbones.deploy.fuse` uses it where the convolution's
    own work dominates (docs/speed.md), and a pointwise one runs as a GEMM on inputs
    under :data:`~mmbackbones.deploy.policy.POINTWISE_MIN_MACS` multiply-adds. The
    private ops it calls are wrapped, and checked, by :mod:`mmbackbones.deploy.onednn`.

    Outputs are channels-last. Inputs that need autograd, are not float32 on the CPU,
    or are being exported to ONNX, traced or compiled take ``act(Conv2d.forward(x))``.
    The packed weights are a cache, not state: they are not saved, copied or pickled,
    and are rebuilt when the weight changes (``load_state_dict``, ``.to()``).

    Args:
        *args, **kwargs: ``nn.Conv2d``'s (zero padding given as numbers).
        act (nn.Module | None): The activation after it, one of oneDNN's post-ops
            (:func:`onednn_post_op`); other activations stay outside. Default: None.

    :meth:`from_conv` builds it around an existing convolution's parameters (BatchNorm
    already folded).

    Example:
        >>> conv, act = nn.Conv2d(8, 16, 3, padding=1), nn.Hardswish()
        >>> fused = OneDNNConv2d.from_conv(conv, act)
        >>> x = torch.rand(2, 8, 9, 9).to(memory_format=torch.channels_last)
        >>> with torch.no_grad():
        ...     (fused(x) - act(conv(x))).abs().max().item() < 1e-5
        True
    """

    replaces = "a zero-padded Conv2d (numeric padding, not 'same')"
    #: packed weights kept per module (one per input shape, oldest dropped first)
    MAX_PACKS = 4

    def __init__(self, *args, act: nn.Module | None = None, **kwargs) -> None:
        """``nn.Conv2d``'s arguments, and the activation ``act`` applied in the call.

        Raises:
            ValueError: ``act`` is not one of oneDNN's post-ops (:func:`onednn_post_op`),
                or the padding is not zeros given as numbers.
        """
        super().__init__(*args, **kwargs)
        post = onednn_post_op(act)
        if post is None:
            raise ValueError(
                f'{type(self).__name__} fuses only {", ".join(ONEDNN_ACTS)} or no '
                f'activation, got {act}; keep it after the convolution instead'
            )
        if not policy.onednn_eligible(self):
            raise ValueError(f'{type(self).__name__} needs {self.replaces}, got {self}')
        self.act = act  # parameter-free; run after Conv2d.forward when not packing
        self.post_op = post
        self._packs: dict[torch.Size, torch.Tensor] = {}
        self._pack_weight: tuple[int, int] | None = None
        # c_in * c_out of a pointwise conv (0 otherwise): its multiply-adds per pixel
        pointwise = policy.is_pointwise(self)
        self._pointwise = self.in_channels * self.out_channels if pointwise else 0
        self._args = onednn.conv_geometry(self)

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        """A plain ``nn.Conv2d`` with zero padding given as numbers."""
        return policy.is_plain_conv(conv) and policy.onednn_eligible(conv)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, act: nn.Module | None = None) -> OneDNNConv2d:
        """``act(conv(x))`` in this form (``conv``'s weight and bias Parameters).

        Raises:
            RuntimeError: PyTorch's private oneDNN ops failed their self-test (the reason
                is in the message); :func:`~mmbackbones.deploy.fuse` then does not ask.
            ValueError: ``conv`` is not plain and zero-padded, or ``act`` is not one of
                oneDNN's post-ops (:func:`onednn_post_op`).
        """
        probe = onednn.probe()
        if not probe.ok:
            raise RuntimeError(
                f"{cls.__name__} needs PyTorch's private oneDNN ops, which failed their "
                f'self-test: {probe.reason}'
            )
        return super().from_conv(conv, act=act)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, '_packs': {}, '_pack_weight': None}

    def _can_pack(self, x: torch.Tensor) -> bool:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return False
        # an inference tensor (a weight made under torch.inference_mode) has no version
        # counter, so in-place writes to it could not be noticed: the plain path
        return (
            x.dtype is torch.float32
            and not self.weight.is_inference()
            and x.is_cpu
            and x.dim() == 4
            and self.weight.dtype is torch.float32
            and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing()
            and not torch.onnx.is_in_onnx_export()
        )

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        stamp = onednn.weight_stamp(w)
        if self._pack_weight != stamp:  # new weights: every packed copy is stale
            self._packs.clear()
            self._pack_weight = stamp
        packed = self._packs.get(x.shape)
        if packed is None:
            if len(self._packs) >= self.MAX_PACKS:
                del self._packs[next(iter(self._packs))]
            packed = onednn.prepack_weight(w, self._args, x.shape)
            self._packs[x.shape] = packed
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = None
        if self._pointwise and x.dim() == 4 and not torch.onnx.is_in_onnx_export():
            macs = x.shape[0] * x.shape[2] * x.shape[3] * self._pointwise
            if macs < policy.POINTWISE_MIN_MACS:
                y = _pointwise_gemm(x, self.weight, self.bias)
        if y is None:
            if self._can_pack(x):  # the activation is applied in the call
                return onednn.conv_pointwise(
                    x, self._packed(x), self.bias, self._args, self.post_op
                )
            y = super().forward(x)
        return y if self.act is None else self.act(y)

    def forward_add(
        self, x: torch.Tensor, other: torch.Tensor, act: nn.Module, inplace: bool = False
    ) -> torch.Tensor:
        """``act(conv(x) + other)`` in one oneDNN call (this conv has no activation).

        Args:
            x (Tensor): The convolution's input.
            other (Tensor): The tensor to add (the residual shortcut), shaped as the output.
            act (nn.Module): The activation after the sum (``nn.Identity`` for none).
            inplace (bool): Write the result into ``other`` (only when the caller owns it).
        """
        if self.act is not None:
            raise ValueError('forward_add needs a convolution without its own activation')
        post = onednn_post_op(act)
        if post is None or not self._can_pack(x):
            y = super().forward(x)
            y += other
            return act(y)
        inplace = inplace and other.is_contiguous(memory_format=torch.channels_last)
        return onednn.conv_pointwise_add(
            x, other, self._packed(x), self.bias, self._args, post, inplace=inplace
        )


class ResidualDeploy(nn.Module):
    """``act(shortcut(x) + f(x))`` with the addition and ``act`` fused into f's last conv.

    The deploy form of our AnyNet residual blocks (ResNeXt, RegNet, ResNet-style
    basic blocks): the shortcut is added, and the activation applied, inside the last
    convolution's oneDNN call (:meth:`OneDNNConv2d.forward_add`), in place on a
    projection shortcut (a fresh tensor) and into a new tensor when the shortcut is the
    block's input (which a caller may still hold, e.g. as a returned feature map).

    Args:
        proj (nn.Module | None): The projection shortcut, ``None`` for identity.
        f (nn.Sequential): The residual branch; its last child's ``conv`` is a
            :class:`OneDNNConv2d` without activation.
        act (nn.Module): The activation after the sum.

    Example:
        >>> from mmbackbones.models.layers import ResBottleneckBlock
        >>> from mmbackbones.deploy import fuse
        >>> block = fuse(ResBottleneckBlock(16, 32, stride=2, group_w=8))
        >>> type(block).__name__ == 'ResidualDeploy' or not onednn_available()
        True
    """

    def __init__(self, proj: nn.Module | None, f: nn.Sequential, act: nn.Module) -> None:
        super().__init__()
        if not self.accepts(f):
            raise ValueError(f'the last layer of f must be a lone OneDNNConv2d, got {f[-1]}')
        self.proj, self.f, self.act = proj, f, act
        # a plain attribute, not a second registration (the state dict keeps f's keys)
        object.__setattr__(self, '_last', f[-1].conv)
        self._n_body = len(f) - 1

    @staticmethod
    def accepts(f: nn.Sequential) -> bool:
        """Whether ``f``'s last layer is a lone :class:`OneDNNConv2d` (no activation)."""
        last = f[-1] if isinstance(f, nn.Sequential) and len(f) else None
        conv = getattr(last, 'conv', None)
        return (
            isinstance(conv, OneDNNConv2d)
            and conv.act is None
            and isinstance(last, nn.Sequential)
            and len(last) == 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        y = x
        for layer in islice(self.f, self._n_body):
            y = layer(y)
        return self._last.forward_add(y, shortcut, self.act, inplace=self.proj is not None)

"""Inference-only forms of our blocks, built by :func:`mmbackbones.deploy.fuse`.

The SE gets one (its BatchNorm folded into ``fc1``, the product in place), and so do
pointwise convolutions on channels-last inputs (:class:`PointwiseConv2d`). The residual
blocks keep their own modules, whose forward already adds the shortcut in place on a
fresh output when autograd does not record.
"""

from __future__ import annotations

import functools
from itertools import islice
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    def from_conv(cls, conv: nn.Conv2d) -> _ConvForm:
        """The same convolution (shared parameters, buffers and hooks) in this form."""
        if not cls.applies_to(conv):
            raise ValueError(f'{cls.__name__} replaces {cls.replaces}, got {conv}')
        new = cls.__new__(cls)
        new.__dict__.update(conv.__dict__)
        return new


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
        return (
            type(conv) is nn.Conv2d
            and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1)
            and conv.padding == (0, 0)
            and conv.groups == 1
            and conv.padding_mode == 'zeros'
        )

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
    spans up to 9 are as fast as undilated. :func:`~mmbackbones.deploy.fuse` therefore
    swaps only convolutions past that span. Inputs that are not channels-last, and ONNX
    export, take ``nn.Conv2d``'s own path.

    Example:
        >>> conv = nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8)
        >>> s2b = SpaceToBatchConv2d.from_conv(conv)
        >>> x = torch.rand(2, 8, 30, 27).to(memory_format=torch.channels_last)
        >>> (s2b(x) - conv(x)).abs().max().item() < 1e-5
        True
    """

    #: oneDNN's fast NHWC depthwise path covers dilated kernels spanning up to this many
    #: pixels ((k - 1) * d + 1); measured with torch 2.14's oneDNN on x86 (README, Speed)
    FAST_SPAN = 9
    replaces = (
        'a grouped, stride-1, same-padded, odd-kernel Conv2d with dilation spanning more '
        f'than {FAST_SPAN} pixels'
    )

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        """A grouped, stride-1, "same"-padded dilated conv past oneDNN's fast span."""
        if type(conv) is not nn.Conv2d or conv.groups == 1 or conv.stride != (1, 1):
            return False
        (kh, kw), (dh, dw) = conv.kernel_size, conv.dilation
        return (
            dh == dw > 1
            and kh % 2 == 1
            and kw % 2 == 1
            and conv.padding == (dh * (kh // 2), dw * (kw // 2))
            and conv.padding_mode == 'zeros'
            and max(kh - 1, kw - 1) * dh + 1 > cls.FAST_SPAN
        )

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
    """Whether this PyTorch build has oneDNN's fused convolution ops (x86/ARM CPU builds).

    Example:
        >>> isinstance(onednn_available(), bool)
        True
    """
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, '_convolution_pointwise')
        and hasattr(torch._C._nn, 'mkldnn_reorder_conv2d_weight')
    )


@functools.cache
def _onednn_ops() -> SimpleNamespace:
    """The oneDNN op overloads, looked up once (``torch.ops`` lookups cost per call)."""
    conv = torch.ops.mkldnn._convolution_pointwise
    return SimpleNamespace(
        conv=conv.default,
        conv_add=conv.binary,
        conv_add_=torch.ops.mkldnn._convolution_pointwise_.binary,
    )


def onednn_post_op(act: nn.Module | None) -> tuple[str, list[float]] | None:
    """oneDNN's name and scalars for ``act`` as a fused post-op; ``None`` if it has none.

    Example:
        >>> onednn_post_op(nn.ReLU6())
        ('hardtanh', [0.0, 6.0])
        >>> onednn_post_op(nn.GELU()) is None
        True
    """
    if act is None or isinstance(act, nn.Identity):
        return 'none', []
    if isinstance(act, nn.Hardtanh):  # nn.ReLU6 included
        return 'hardtanh', [float(act.min_val), float(act.max_val)]
    for cls, name in _POST_OPS:
        if isinstance(act, cls):
            return name, []
    return None


#: activations oneDNN applies to the convolution's output in the same pass
_POST_OPS = (
    (nn.ReLU, 'relu'),
    (nn.Hardswish, 'hardswish'),
    (nn.SiLU, 'swish'),
    (nn.Sigmoid, 'sigmoid'),
    (nn.Hardsigmoid, 'hardsigmoid'),
)
#: their names, for error messages
ONEDNN_ACTS = ('Hardtanh/ReLU6', *(cls.__name__ for cls, _ in _POST_OPS))


class OneDNNConv2d(_ConvForm):
    """A convolution and its activation as one oneDNN call on prepacked weights.

    PyTorch's eager ``Conv2d`` reorders the weight into oneDNN's blocked layout on every
    call, and runs the activation (and a residual addition) as separate passes over the
    output. This form reorders the weight once per input shape (``torch.compile``'s
    frozen CPU graphs do the same) and applies the activation, or a residual addition
    followed by the activation (:meth:`forward_add`), as oneDNN post-ops in the
    convolution's own pass. The call costs ~40 us more fixed overhead than a small
    ``Conv2d``, so :func:`~mmbackbones.deploy.fuse` uses it where the convolution's
    own work dominates (README, Speed).

    Outputs are channels-last. Inputs that need autograd, are not float32 on the CPU,
    or are being exported to ONNX, traced or compiled take ``act(Conv2d.forward(x))``.
    The packed weights are a cache, not state: they are not saved, copied or pickled,
    and are rebuilt when the weight changes (``load_state_dict``, ``.to()``).

    Args (of :meth:`from_conv`):
        conv (nn.Conv2d): The convolution (zero padding; BatchNorm already folded).
        act (nn.Module | None): The activation after it, one of oneDNN's post-ops
            (:func:`onednn_post_op`); other activations stay outside. Default: None.

    Example:
        >>> conv, act = nn.Conv2d(8, 16, 3, padding=1), nn.Hardswish()
        >>> fused = OneDNNConv2d.from_conv(conv, act)
        >>> x = torch.rand(2, 8, 9, 9).to(memory_format=torch.channels_last)
        >>> with torch.no_grad():
        ...     (fused(x) - act(conv(x))).abs().max().item() < 1e-5
        True
    """

    replaces = 'a zero-padded Conv2d (oneDNN built in)'
    #: packed weights kept per module (one per input shape, oldest dropped first)
    MAX_PACKS = 4
    #: a 1x1 stride-1 conv with fewer multiply-adds per image runs as a GEMM
    #: (:class:`PointwiseConv2d`'s path) instead: oneDNN's ~40 us call overhead then
    #: outweighs prepacking. Measured in whole models on our CPU (README, Speed):
    #: packing every pointwise conv made MobileNetV3-S 20% slower, this bound keeps
    #: the mobile nets within 2% and the ResNeXt/RegNet gains (ResNeXt's smallest
    #: pointwise convs do ~25M multiply-adds at 224x224).
    POINTWISE_MIN_MACS = 20_000_000

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        """A plain, zero-padded ``nn.Conv2d`` in a PyTorch build with oneDNN."""
        return (
            type(conv) is nn.Conv2d
            and conv.padding_mode == 'zeros'
            and not isinstance(conv.padding, str)
            and onednn_available()
        )

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, act: nn.Module | None = None) -> OneDNNConv2d:
        """``act(conv(x))`` in this form (parameters shared with ``conv``).

        Raises:
            ValueError: ``act`` is not one of oneDNN's post-ops (:func:`onednn_post_op`).
        """
        post = onednn_post_op(act)
        if post is None:
            raise ValueError(
                f'{cls.__name__} fuses only {", ".join(ONEDNN_ACTS)} or no activation, '
                f'got {act}; keep it after the convolution instead'
            )
        new = super().from_conv(conv)
        new._modules = dict(conv._modules)  # the act must not show up in ``conv``
        new.act = act  # parameter-free; run after Conv2d.forward when not packing
        new.post_op = post
        new._packs = {}
        new._pack_weight = None
        # c_in * c_out of a pointwise conv (0 otherwise): its multiply-adds per pixel
        pointwise = PointwiseConv2d.applies_to(conv)
        new._pointwise = conv.in_channels * conv.out_channels if pointwise else 0
        new._args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        return new

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, '_packs': {}, '_pack_weight': None}

    def _can_pack(self, x: torch.Tensor) -> bool:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return False
        return (
            x.dtype is torch.float32
            and x.is_cpu
            and x.dim() == 4
            and self.weight.dtype is torch.float32
            and not torch.compiler.is_compiling()
            and not torch.jit.is_tracing()
            and not torch.onnx.is_in_onnx_export()
        )

    def _packed(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        stamp = (w.data_ptr(), w._version)
        if self._pack_weight != stamp:  # new weights: every packed copy is stale
            self._packs.clear()
            self._pack_weight = stamp
        packed = self._packs.get(x.shape)
        if packed is None:
            if len(self._packs) >= self.MAX_PACKS:
                del self._packs[next(iter(self._packs))]
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                w.detach().to_mkldnn(),
                self.padding,
                self.stride,
                self.dilation,
                self.groups,
                x.shape,
            )
            self._packs[x.shape] = packed
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = None
        if self._pointwise and x.dim() == 4 and not torch.onnx.is_in_onnx_export():
            if x.shape[0] * x.shape[2] * x.shape[3] * self._pointwise < self.POINTWISE_MIN_MACS:
                y = _pointwise_gemm(x, self.weight, self.bias)
        if y is None:
            if self._can_pack(x):  # the activation is applied in the call
                return _onednn_ops().conv(
                    x, self._packed(x), self.bias, *self._args, *self.post_op, ''
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
        args = (self._packed(x), self.bias, *self._args, 'add', None, *post, '')
        ops = _onednn_ops()
        if inplace and other.is_contiguous(memory_format=torch.channels_last):
            return ops.conv_add_(other, x, *args)
        return ops.conv_add(x, other, *args)


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
        >>> from mmbackbones.models.backbones.anynet import ResBottleneckBlock
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
        last = f[-1]
        conv = getattr(last, 'conv', None)
        return len(last) == 1 and isinstance(conv, OneDNNConv2d) and conv.act is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        y = x
        for layer in islice(self.f, self._n_body):
            y = layer(y)
        return self._last.forward_add(y, shortcut, self.act, inplace=self.proj is not None)

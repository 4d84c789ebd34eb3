"""PyTorch's private oneDNN surface, in one place, behind a numerical self-test.

Deploy mode's prepacked convolutions (:class:`~mmbackbones.deploy.modules.OneDNNConv2d`,
:class:`~mmbackbones.deploy.modules.ResidualDeploy`) call what PyTorch neither documents
nor promises to keep:

* ``torch.ops.mkldnn._convolution_pointwise`` (the op ``torch.compile``'s frozen CPU
  graphs use): ``.default`` is a convolution with a unary post-op, ``.binary`` a
  convolution, an addition and a post-op, and ``_convolution_pointwise_.binary`` the same
  written into the addend;
* ``torch._C._nn.mkldnn_reorder_conv2d_weight``: a weight reordered once into oneDNN's
  blocked layout for one input shape;
* a tensor's ``_version`` counter, to notice in-place writes to a packed weight;
* the post-op names oneDNN's fused convolution accepts (:func:`onednn_post_op`).

This is the only module of the package that names them. :func:`probe` runs them once per
process on a small random input against ``F.conv2d`` and says whether they can be trusted,
and why not; :func:`~mmbackbones.deploy.fuse` builds the portable forms (plain and GEMM
convolutions, the same outputs) when they cannot. A PyTorch upgrade that renames, removes
or changes them then costs speed, never correctness.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

#: name -> dotted path of the private callables, resolved by :func:`_find_ops`
PRIVATE_OPS = {
    'conv': 'torch.ops.mkldnn._convolution_pointwise.default',
    'conv_add': 'torch.ops.mkldnn._convolution_pointwise.binary',
    'conv_add_': 'torch.ops.mkldnn._convolution_pointwise_.binary',
    'reorder': 'torch._C._nn.mkldnn_reorder_conv2d_weight',
}
#: ``(padding, stride, dilation, groups)`` as the private ops take them (:func:`conv_geometry`)
Geometry = tuple[list[int], list[int], list[int], int]
#: the largest difference from ``F.conv2d`` the self-test accepts (float32, unit-scale data)
PROBE_ATOL = 1e-4

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


@dataclass(frozen=True)
class ProbeResult:
    """Whether the private ops can be used (``ok``) and, if not, why (``reason``)."""

    ok: bool
    reason: str


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


def _find_ops() -> SimpleNamespace:
    """The private callables of :data:`PRIVATE_OPS`.

    Raises:
        LookupError: One is missing; the message names it.
    """
    found = {}
    for key, path in PRIVATE_OPS.items():
        obj = torch
        try:
            for part in path.split('.')[1:]:
                obj = getattr(obj, part)  # torch.ops raises AttributeError or RuntimeError
        except (AttributeError, RuntimeError) as e:
            raise LookupError(f'{path} is missing in torch {torch.__version__}') from e
        found[key] = obj
    return SimpleNamespace(**found)


@functools.cache
def _ops() -> SimpleNamespace:
    """:func:`_find_ops`, looked up once (``torch.ops`` lookups cost per call)."""
    return _find_ops()


def conv_geometry(conv: nn.Conv2d) -> Geometry:
    """``(padding, stride, dilation, groups)`` of ``conv`` as the private ops take them.

    Example:
        >>> conv_geometry(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4))
        ([1, 1], [2, 2], [1, 1], 4)
    """
    return list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups


def prepack_weight(
    weight: torch.Tensor, geometry: Geometry, input_size: torch.Size
) -> torch.Tensor:
    """``weight`` reordered into oneDNN's blocked layout for inputs of ``input_size``."""
    return _ops().reorder(weight.detach().to_mkldnn(), *geometry, input_size)


def conv_pointwise(
    x: torch.Tensor,
    packed: torch.Tensor,
    bias: torch.Tensor | None,
    geometry: Geometry,
    post_op: tuple[str, list[float]],
) -> torch.Tensor:
    """``post_op(conv(x))`` in one call; ``post_op`` from :func:`onednn_post_op`."""
    return _ops().conv(x, packed, bias, *geometry, *post_op, '')


def conv_pointwise_add(
    x: torch.Tensor,
    other: torch.Tensor,
    packed: torch.Tensor,
    bias: torch.Tensor | None,
    geometry: Geometry,
    post_op: tuple[str, list[float]],
    inplace: bool = False,
) -> torch.Tensor:
    """``post_op(conv(x) + other)`` in one call; with ``inplace``, written into ``other``
    (which must then be channels-last and the caller's to overwrite)."""
    args = (packed, bias, *geometry, 'add', None, *post_op, '')
    if inplace:
        return _ops().conv_add_(other, x, *args)
    return _ops().conv_add(x, other, *args)


def weight_stamp(t: torch.Tensor) -> tuple[int, int]:
    """A stamp of ``t`` that changes when its storage is replaced or written in place.

    ``t`` must not be an inference tensor (made under ``torch.inference_mode``): those
    have no version counter (:meth:`OneDNNConv2d._can_pack
    <mmbackbones.deploy.modules.OneDNNConv2d._can_pack>` does not pack them).

    Example:
        >>> t = torch.zeros(2)
        >>> before = weight_stamp(t)
        >>> _ = t.add_(1)
        >>> weight_stamp(t) != before
        True
    """
    return t.data_ptr(), t._version


@functools.cache
def probe() -> ProbeResult:
    """:func:`self_test`, run once per process (the answer is cached).

    Example:
        >>> r = probe()
        >>> r.ok or bool(r.reason)
        True
    """
    return self_test()


def self_test() -> ProbeResult:
    """Run the private ops on a small random input and compare with ``F.conv2d``.

    A 3x3 convolution with every post-op :func:`onednn_post_op` names, and a convolution
    plus addition plus ReLU out of place and in place, all on a prepacked weight; and
    :func:`weight_stamp` noticing an in-place write. Never raises: a missing op, an
    exception or a difference over :data:`PROBE_ATOL` gives ``ok=False`` with the reason.
    The global random state is left alone. Inside ``torch.inference_mode`` the test's
    tensors are still ordinary ones (inference tensors have no version counter, so
    :func:`weight_stamp` would fail on them, and the cached answer would then be wrong
    for the rest of the process).
    """
    if not torch.backends.mkldnn.is_available():
        return ProbeResult(False, 'this PyTorch build has no oneDNN (torch.backends.mkldnn)')
    try:
        _find_ops()
        with torch.inference_mode(False):
            err = _self_test_error()
    except LookupError as e:
        return ProbeResult(False, str(e))
    except Exception as e:  # any failure of a private op means: do not use it
        msg = str(e).strip().splitlines()
        return ProbeResult(False, f'{type(e).__name__}: {msg[0] if msg else "(no message)"}')
    if isinstance(err, str):
        return ProbeResult(False, err)
    if not err <= PROBE_ATOL:  # NaN fails too
        return ProbeResult(
            False, f'results differ from F.conv2d by {err:.3g} (more than {PROBE_ATOL:g})'
        )
    return ProbeResult(True, 'self-test passed')


@torch.no_grad()
def _self_test_error() -> float | str:
    """The largest difference of the private ops from ``F.conv2d``, or what went wrong."""
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last
    x = torch.randn(1, 4, 7, 6, generator=g).to(memory_format=cl)
    w = torch.randn(8, 4, 3, 3, generator=g).to(memory_format=cl)
    b = torch.randn(8, generator=g)
    other = torch.randn(1, 8, 7, 6, generator=g).to(memory_format=cl)
    geom = ([1, 1], [1, 1], [1, 1], 1)
    ref = F.conv2d(x, w, b, 1, 1)

    stamp = weight_stamp(w)
    packed = prepack_weight(w, geom, x.shape)
    w.mul_(1.0)
    if weight_stamp(w) == stamp:
        return 'tensor._version does not change on in-place writes'
    acts = [nn.Identity(), nn.ReLU6(), *(cls() for cls, _ in _POST_OPS)]
    errs = [
        (conv_pointwise(x, packed, b, geom, onednn_post_op(act)) - act(ref)).abs().max()
        for act in acts
    ]
    want = torch.relu(ref + other)
    added = conv_pointwise_add(x, other, packed, b, geom, ('relu', []))
    into = other.clone()
    written = conv_pointwise_add(x, into, packed, b, geom, ('relu', []), inplace=True)
    if written.data_ptr() != into.data_ptr():
        return 'the in-place conv + add did not write into its addend'
    errs += [(added - want).abs().max(), (into - want).abs().max()]
    return float(torch.stack(errs).max())

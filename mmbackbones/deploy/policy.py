"""Which kernel each convolution of a fused model runs: one policy and its measured bounds.

:func:`conv_kernel` decides, once per convolution when :func:`~mmbackbones.deploy.fuse`
swaps the layers, between

* ``'pointwise'``: a 1x1 stride-1 convolution as one matrix product over channels
  (:class:`~mmbackbones.deploy.modules.PointwiseConv2d`);
* ``'space_to_batch'``: a long-span dilated grouped convolution on ``d x d`` sub-grids
  (:class:`~mmbackbones.deploy.modules.SpaceToBatchConv2d`);
* ``'plain'``: ``nn.Conv2d`` as it is.

The predicates below look at a convolution's geometry only; the forms' ``applies_to``
use them too, so the policy and the forms cannot disagree.
"""

from __future__ import annotations

import torch.nn as nn

#: the kernels :func:`conv_kernel` chooses between
KERNELS = ('pointwise', 'space_to_batch', 'plain')

#: oneDNN's fast NHWC depthwise path covers dilated kernels spanning up to this many
#: pixels (``(k - 1) * d + 1``); measured with torch 2.14's oneDNN on x86 (docs/speed.md):
#: a 5x5 kernel at dilation 4 took 7-13 ms at 28x28 against 0.6-1.0 ms on sub-grids
FAST_SPAN = 9


def is_plain_conv(conv: nn.Module) -> bool:
    """An ``nn.Conv2d`` itself (no subclass, no other deploy form), whose only parameters
    are ``weight`` and ``bias``, with no buffers and no forward hooks: one a deploy form
    can take over by sharing those two parameters.

    Example:
        >>> is_plain_conv(nn.Conv2d(4, 4, 3)), is_plain_conv(nn.Linear(4, 4))
        (True, False)
    """
    if type(conv) is not nn.Conv2d or not isinstance(conv.weight, nn.Parameter):
        return False
    params = {name for name, _ in conv.named_parameters(recurse=False)}
    if not params <= {'weight', 'bias'} or any(True for _ in conv.buffers(recurse=False)):
        return False
    # nn.Module's hook tables; a hooked conv stays itself so that its hooks keep running
    hooks = ('_forward_hooks', '_forward_pre_hooks', '_backward_hooks')
    return not any(getattr(conv, name, None) for name in hooks)


def is_pointwise(conv: nn.Conv2d) -> bool:
    """A 1x1, stride-1, ungrouped, unpadded, zero-padding-mode convolution (any class).

    Example:
        >>> is_pointwise(nn.Conv2d(4, 8, 1)), is_pointwise(nn.Conv2d(4, 8, 1, stride=2))
        (True, False)
    """
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.groups == 1
        and conv.padding_mode == 'zeros'
    )


def needs_space_to_batch(conv: nn.Conv2d) -> bool:
    """A grouped, stride-1, "same"-padded, odd-kernel convolution whose dilated kernel
    spans more than :data:`FAST_SPAN` pixels (any class).

    Example:
        >>> needs_space_to_batch(nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8))
        True
        >>> needs_space_to_batch(nn.Conv2d(8, 8, 5, padding=4, dilation=2, groups=8))
        False
    """
    if conv.groups == 1 or conv.stride != (1, 1):
        return False
    (kh, kw), (dh, dw) = conv.kernel_size, conv.dilation
    return (
        dh == dw > 1
        and kh % 2 == 1
        and kw % 2 == 1
        and conv.padding == (dh * (kh // 2), dw * (kw // 2))
        and conv.padding_mode == 'zeros'
        and max(kh - 1, kw - 1) * dh + 1 > FAST_SPAN
    )


def conv_kernel(conv: nn.Module, *, channels_last: bool) -> str:
    """The kernel ``conv`` runs in the fused model, one of :data:`KERNELS`.

    Args:
        conv (nn.Module): A child module; anything but a plain ``nn.Conv2d``
            (:func:`is_plain_conv`) gets ``'plain'`` (it is left as it is).
        channels_last (bool): The model runs channels-last (``fuse``'s default).

    Example:
        >>> conv_kernel(nn.Conv2d(16, 32, 1), channels_last=True)
        'pointwise'
        >>> dw = nn.Conv2d(8, 8, 5, padding=8, dilation=4, groups=8)
        >>> conv_kernel(dw, channels_last=True), conv_kernel(dw, channels_last=False)
        ('space_to_batch', 'plain')
    """
    if not is_plain_conv(conv):
        return 'plain'
    if is_pointwise(conv):
        return 'pointwise'
    if channels_last and needs_space_to_batch(conv):
        return 'space_to_batch'
    return 'plain'

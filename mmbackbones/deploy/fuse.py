"""Deploy mode: the inference-time form of our backbones, by walking the module tree.

:func:`fuse` folds every BatchNorm into the convolution that feeds it (the stem, head and
every :class:`ConvNormAct`, the ReXNet SE's ``fc1 -> BN``, the AnyNet projection
shortcuts), makes the activations that follow a fresh convolution output run in place,
and by default stores the convolution weights channels-last, which makes PyTorch's CPU
convolutions (oneDNN) run without layout reorders; pointwise convolutions run as matrix
products over channels, long-span dilated ones on sub-grids. Public PyTorch operations
only. The result is an ordinary ``nn.Module`` with the same forward, the same taps and
``out_channels``, exportable to ONNX. Modules that are not ours (an mmdet neck, a
classifier) get their ``conv -> BN`` pairs folded where the data flow is certain:
adjacent children of an ``nn.Sequential`` and mmcv's ``ConvModule``.

What happens to a module is looked up by its type (:data:`FUSERS`, filled by
:func:`register_fuser`); which kernel a convolution runs is
:func:`mmbackbones.deploy.policy.conv_kernel`'s decision.

On a CPU the fastest way to run a model is to export it to ONNX Runtime or OpenVINO
(docs/speed.md); ``fuse`` is the form for PyTorch itself (evaluation in PyTorch, and a
smaller graph to export).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmbackbones.models.layers import ConvNormAct, InvertedResidual, ResidualBlock, SqueezeExcite

from .fold import can_fold, fold_bn
from .modules import PointwiseConv2d, SpaceToBatchConv2d, SqueezeExciteDeploy
from .policy import conv_kernel

#: Activation modules whose ``inplace`` flag we switch on after a convolution.
_INPLACE_ACTS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.ELU, nn.Hardtanh)

#: ``fuser(m, own_inputs) -> deploy form of m`` (``m`` itself, modified, or a replacement).
#: ``own_inputs``: ``m`` sits inside one of our blocks, where every SE input is the fresh
#: output of a conv, so the SE may multiply in place.
Fuser = Callable[[nn.Module, bool], nn.Module]

#: block type -> its fuser; :func:`fuser_for` takes the entry of the nearest class in
#: ``type(m).__mro__``, so a subclass is fused as its base unless it registers its own.
#: ``nn.Module``'s entry, the fallback, fuses the children.
FUSERS: dict[type, Fuser] = {}


def register_fuser(*types: type) -> Callable[[Fuser], Fuser]:
    """Register the decorated ``fuser(m, own_inputs)`` for ``types`` and their subclasses.

    Raises:
        ValueError: A type already has a fuser (assign ``FUSERS[cls]`` to replace it).

    Example:
        >>> class Twice(nn.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        >>> @register_fuser(Twice)
        ... def _fuse_twice(m, own_inputs):
        ...     return m
        >>> fuser_for(Twice()) is _fuse_twice
        True
        >>> del FUSERS[Twice]
    """
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f'register_fuser takes one or more classes, got {types}')

    def register(fuser: Fuser) -> Fuser:
        for t in types:
            if t in FUSERS:
                raise ValueError(
                    f'{t.__qualname__} already has a fuser ({FUSERS[t].__qualname__})'
                )
            FUSERS[t] = fuser
        return fuser

    return register


def fuser_for(m: nn.Module) -> Fuser:
    """The fuser registered for the nearest class of ``type(m).__mro__``."""
    for cls in type(m).__mro__:
        fuser = FUSERS.get(cls)
        if fuser is not None:
            return fuser
    raise TypeError(f'fuse: expected an nn.Module, got {type(m).__name__}')


def _fuse_module(m: nn.Module, own_inputs: bool = False) -> nn.Module:
    """The deploy form of ``m`` (``m`` itself, modified, or a replacement)."""
    return fuser_for(m)(m, own_inputs)


def _fuse_children(m: nn.Module, own_inputs: bool) -> None:
    for name, child in list(m.named_children()):
        new = _fuse_module(child, own_inputs)
        if new is not child:
            m._modules[name] = new


def _set_inplace(act: nn.Module | None) -> None:
    if isinstance(act, _INPLACE_ACTS):
        act.inplace = True


@register_fuser(nn.Module)
def _fuse_other(m: nn.Module, own_inputs: bool) -> nn.Module:
    _fuse_children(m, own_inputs)
    return m


@register_fuser(nn.Sequential)
def _fuse_sequential(m: nn.Sequential, own_inputs: bool) -> nn.Sequential:
    """Fold ``Conv2d`` directly followed by a BatchNorm in a plain ``nn.Sequential``."""
    names = list(m._modules)
    for a, b in zip(names, names[1:]):
        conv, bn = m._modules[a], m._modules[b]
        if type(conv) is nn.Conv2d and can_fold(bn):
            m._modules[a] = fold_bn(conv, bn)
            m._modules[b] = nn.Identity()
    _fuse_children(m, own_inputs)
    return m


@register_fuser(ConvNormAct)
def _fuse_conv_norm_act(m: ConvNormAct, own_inputs: bool) -> ConvNormAct:
    bn = getattr(m, 'bn', None)
    if bn is not None and can_fold(bn):
        m.conv = fold_bn(m.conv, bn)
        del m.bn  # the Sequential now runs conv -> act
    _set_inplace(getattr(m, 'act', None))  # its input is the fresh conv output
    return m


@register_fuser(SqueezeExcite)
def _fuse_se(m: SqueezeExcite, own_inputs: bool) -> SqueezeExciteDeploy:
    fc1 = fold_bn(m.fc1, m.bn) if can_fold(m.bn) else nn.Sequential(m.fc1, m.bn)
    _set_inplace(m.act)
    return SqueezeExciteDeploy(fc1, m.act, m.fc2, m.gate, inplace=own_inputs)


@register_fuser(InvertedResidual)
def _fuse_inverted_residual(m: InvertedResidual, own_inputs: bool) -> InvertedResidual:
    # the block's own forward already adds its shortcut in place on the fresh
    # projection output when autograd does not record; only stochastic depth goes
    _fuse_children(m, own_inputs=True)
    m.drop_path = None
    return m


@register_fuser(ResidualBlock)
def _fuse_residual_block(m: ResidualBlock, own_inputs: bool) -> ResidualBlock:
    _fuse_children(m, own_inputs=True)
    _set_inplace(m.act)  # it runs on the block's own (in-place) sum
    return m


@register_fuser(ConvModule)
def _fuse_conv_module(m: ConvModule, own_inputs: bool) -> ConvModule:
    """mmcv ``ConvModule`` whose ``order`` starts with ``('conv', 'norm')``."""
    if not (m.with_norm and tuple(m.order[:2]) == ('conv', 'norm')):
        return m
    norm = getattr(m, m.norm_name)
    if type(m.conv) is nn.Conv2d and can_fold(norm):
        m.conv = fold_bn(m.conv, norm)
        setattr(m, m.norm_name, nn.Identity())
    return m


def _swap_convs(model: nn.Module, channels_last: bool) -> None:
    """Swap plain ``Conv2d`` layers for the deploy form :func:`conv_kernel` picks, in place:
    1x1 stride-1 convs become :class:`PointwiseConv2d` (GEMMs) and, in channels-last
    models, dilated grouped convs past oneDNN's fast span :class:`SpaceToBatchConv2d`."""
    forms = {'pointwise': PointwiseConv2d, 'space_to_batch': SpaceToBatchConv2d}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            form = forms.get(conv_kernel(child, channels_last=channels_last))
            if form is not None:
                parent._modules[name] = form.from_conv(child)


def _ordinary_tensors(model: nn.Module) -> nn.Module:
    """``model`` with each inference tensor among its parameters and buffers (it was built
    or loaded under ``torch.inference_mode``) replaced by an ordinary copy, ties kept; call
    outside inference mode. Changing an inference tensor's memory format
    (``.to(memory_format=...)``) leaves a broken parameter behind."""
    copies: dict[int, torch.Tensor] = {}
    for m in model.modules():
        for table in (m._parameters, m._buffers):
            for name, t in table.items():
                if t is None or not t.is_inference():
                    continue
                if id(t) not in copies:
                    new = t.clone()
                    if isinstance(t, nn.Parameter):
                        new = nn.Parameter(new, requires_grad=t.requires_grad)
                    copies[id(t)] = new
                table[name] = copies[id(t)]
    return model


def fuse(model: nn.Module, inplace: bool = False, channels_last: bool = True) -> nn.Module:
    """The inference-time (deploy) form of ``model``, in eval mode.

    Works on any of our backbones and on any model containing them (``ImageClassifier``,
    an mmdet detector, an mmseg segmentor), by walking the module tree. Outputs equal
    the unfused model's in eval mode (float32 rounding, ~1e-6). The result is meant for
    inference only: there is no BatchNorm left to train. It may be called, and its result
    run, under ``torch.no_grad()`` or ``torch.inference_mode()``, in any combination: the
    weights it makes are ordinary tensors even inside ``inference_mode``.

    Args:
        model (nn.Module): The model. It is switched to eval mode (BatchNorm uses its
            running statistics, which is what gets folded).
        inplace (bool): Fuse ``model`` itself (its submodules are replaced, and so are
            weights made under ``torch.inference_mode``, by ordinary copies) instead of
            a deep copy; use the returned module. Default: False.
        channels_last (bool): Store 4-D weights channels-last (NHWC). The first
            convolution then returns channels-last features and the whole network runs
            without layout reorders; outputs have the same shapes and values, only their
            strides differ. Dilated depthwise convs whose kernel spans more than 9
            pixels, which oneDNN runs 10x slower in NHWC, then run on sub-grids
            (:class:`~mmbackbones.deploy.modules.SpaceToBatchConv2d`). In either layout
            the 1x1 stride-1 convolutions run as one matrix product over channels
            (:class:`~mmbackbones.deploy.modules.PointwiseConv2d`), which beat oneDNN's
            1x1 convolution on our CPU. Default: True.

    Returns:
        nn.Module: The fused model (``model`` itself when ``inplace``), in eval mode.

    Example:
        >>> import torch
        >>> from mmbackbones.models import ReXNet
        >>> m = ReXNet('1.0').eval()
        >>> f = fuse(m)
        >>> x = torch.rand(1, 3, 64, 64)
        >>> max((a - b).abs().max().item() for a, b in zip(m(x), f(x))) < 1e-5
        True
        >>> f.out_channels, any(isinstance(t, torch.nn.BatchNorm2d) for t in f.modules())
        ([38, 61, 128, 185], False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'fuse: expected an nn.Module, got {type(model).__name__}')
    # Called inside torch.inference_mode, the folded weights would be inference tensors:
    # they could not be used in place outside it, and changing their memory format
    # breaks them. Build ordinary tensors whatever the caller's mode (copies too).
    with torch.inference_mode(False), torch.no_grad():
        model = copy.deepcopy(model) if not inplace else _ordinary_tensors(model)
        model.eval()
        model = _fuse_module(model).eval()  # the new deploy modules too
        for p in model.parameters():
            p.requires_grad_(False)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        _swap_convs(model, channels_last)
        return model

"""Deploy mode: the inference-time form of our backbones, by walking the module tree.

:func:`fuse` folds every BatchNorm into the convolution that feeds it (the stem, head and
every :class:`ConvNormAct`, the ReXNet SE's ``fc1 -> BN``, the AnyNet projection
shortcuts), makes the activations that follow a fresh convolution output run in place,
and by default stores the convolution weights channels-last, which makes PyTorch's CPU
convolutions (oneDNN) run without layout reorders. Our conv layers then run as oneDNN
calls on prepacked weights with the activation (and the ResNeXt/RegNet residual
addition) fused in; small pointwise convolutions run as matrix products over channels.
The result is an ordinary ``nn.Module`` with the same forward, the same taps and
``out_channels``, exportable to ONNX. Modules that are not ours (an mmdet neck, a
classifier) get their ``conv -> BN`` pairs folded where the data flow is certain:
adjacent children of an ``nn.Sequential`` and mmcv's ``ConvModule``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from mmbackbones.models.backbones.anynet import ResBasicBlock, ResBottleneckBlock
from mmbackbones.models.layers import ConvNormAct, InvertedResidual, SqueezeExcite

from .fold import can_fold, fold_bn
from .modules import (
    OneDNNConv2d,
    PointwiseConv2d,
    ResidualDeploy,
    SpaceToBatchConv2d,
    SqueezeExciteDeploy,
    onednn_available,
    onednn_post_op,
)

#: Activation modules whose ``inplace`` flag we switch on after a convolution.
_INPLACE_ACTS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.ELU, nn.Hardtanh)


def _fuse_conv_norm_act(m: ConvNormAct) -> ConvNormAct:
    bn = getattr(m, 'bn', None)
    if bn is not None and can_fold(bn):
        m.conv = fold_bn(m.conv, bn)
        del m.bn  # the Sequential now runs conv -> act
    _set_inplace(getattr(m, 'act', None))  # its input is the fresh conv output
    return m


def _set_inplace(act: nn.Module | None) -> None:
    if isinstance(act, _INPLACE_ACTS):
        act.inplace = True


def _fuse_se(m: SqueezeExcite, inplace: bool) -> SqueezeExciteDeploy:
    fc1 = fold_bn(m.fc1, m.bn) if can_fold(m.bn) else nn.Sequential(m.fc1, m.bn)
    _set_inplace(m.act)
    return SqueezeExciteDeploy(fc1, m.act, m.fc2, m.gate, inplace=inplace)


def _fuse_sequential(m: nn.Sequential) -> None:
    """Fold ``Conv2d`` directly followed by a BatchNorm in a plain ``nn.Sequential``."""
    names = list(m._modules)
    for a, b in zip(names, names[1:]):
        conv, bn = m._modules[a], m._modules[b]
        if type(conv) is nn.Conv2d and can_fold(bn):
            m._modules[a] = fold_bn(conv, bn)
            m._modules[b] = nn.Identity()


def _is_conv_module(m: nn.Module) -> bool:
    try:
        from mmcv.cnn import ConvModule
    except ImportError:  # pragma: no cover - mmcv is a dependency
        return False
    return isinstance(m, ConvModule)


def _fuse_conv_module(m: nn.Module) -> None:
    """mmcv ``ConvModule`` whose ``order`` starts with ``('conv', 'norm')``."""
    if not (m.with_norm and tuple(m.order[:2]) == ('conv', 'norm')):
        return
    norm = getattr(m, m.norm_name)
    if type(m.conv) is nn.Conv2d and can_fold(norm):
        m.conv = fold_bn(m.conv, norm)
        setattr(m, m.norm_name, nn.Identity())


def _fuse_module(m: nn.Module, own_inputs: bool = False) -> nn.Module:
    """Return the deploy form of ``m`` (``m`` itself, modified, or a replacement).

    ``own_inputs``: ``m`` sits inside one of our blocks, where every SE input is the
    fresh output of a conv, so the SE may multiply in place.
    """
    if isinstance(m, ConvNormAct):
        return _fuse_conv_norm_act(m)
    if isinstance(m, SqueezeExcite):
        return _fuse_se(m, inplace=own_inputs)
    if isinstance(m, InvertedResidual):
        # the block's own forward already adds its shortcut in place on the fresh
        # projection output when autograd does not record; only stochastic depth goes
        _fuse_children(m, own_inputs=True)
        m.drop_path = None
        return m
    if isinstance(m, (ResBasicBlock, ResBottleneckBlock)):
        _fuse_children(m, own_inputs=True)
        _set_inplace(m.act)  # it runs on the block's own (in-place) sum
        return m
    if _is_conv_module(m):
        _fuse_conv_module(m)
        return m
    if isinstance(m, nn.Sequential):
        _fuse_sequential(m)
    _fuse_children(m, own_inputs)
    return m


def _fuse_children(m: nn.Module, own_inputs: bool) -> None:
    for name, child in list(m.named_children()):
        new = _fuse_module(child, own_inputs)
        if new is not child:
            m._modules[name] = new


def _swap_convs(model: nn.Module, channels_last: bool) -> None:
    """Swap plain ``Conv2d`` layers for their faster deploy forms, in place.

    1x1 stride-1 convs become :class:`PointwiseConv2d` (GEMMs); in channels-last models,
    dilated grouped convs past oneDNN's fast span become :class:`SpaceToBatchConv2d`.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if PointwiseConv2d.applies_to(child):
                parent._modules[name] = PointwiseConv2d.from_conv(child)
            elif channels_last and SpaceToBatchConv2d.applies_to(child):
                parent._modules[name] = SpaceToBatchConv2d.from_conv(child)


def _prepack(model: nn.Module) -> nn.Module:
    """Our conv layers (``ConvNormAct``) as :class:`OneDNNConv2d` with their activation
    fused, and the AnyNet residual blocks as :class:`ResidualDeploy`, in place. Dilated
    convs past oneDNN's fast span are left to :func:`_swap_convs` (sub-grids do better).
    """
    for m in model.modules():
        if not isinstance(m, ConvNormAct) or 'bn' in m._modules:
            continue
        conv = m._modules['conv']
        if OneDNNConv2d.applies_to(conv) and not SpaceToBatchConv2d.applies_to(conv):
            act = m._modules.get('act')
            if onednn_post_op(act) is None:  # not a oneDNN post-op: it stays after the conv
                m.conv = OneDNNConv2d.from_conv(conv)
            else:
                m.conv = OneDNNConv2d.from_conv(conv, act)
                if act is not None:
                    del m.act
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            parent._modules[name] = _residual_deploy(child)
    return _residual_deploy(model)


def _residual_deploy(m: nn.Module) -> nn.Module:
    """``m`` as a :class:`ResidualDeploy` if it is an AnyNet residual block whose last conv
    was prepacked, else ``m``."""
    if isinstance(m, (ResBasicBlock, ResBottleneckBlock)) and ResidualDeploy.accepts(m.f):
        return ResidualDeploy(m.proj, m.f, m.act)
    return m


def fuse(
    model: nn.Module, inplace: bool = False, channels_last: bool = True, prepack: bool = True
) -> nn.Module:
    """The inference-time (deploy) form of ``model``, in eval mode.

    Works on any of our backbones and on any model containing them (``ImageClassifier``,
    an mmdet detector, an mmseg segmentor), by walking the module tree. Outputs equal
    the unfused model's in eval mode (float32 rounding, ~1e-6). The result is meant for
    inference only: there is no BatchNorm left to train.

    Args:
        model (nn.Module): The model. It is switched to eval mode (BatchNorm uses its
            running statistics, which is what gets folded).
        inplace (bool): Fuse ``model`` itself (its submodules are replaced) instead of
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
        prepack (bool): With ``channels_last``, run our conv layers as oneDNN calls on
            weights reordered once, with the activation, and in the residual blocks of
            ResNeXt/RegNet the shortcut addition, fused into the convolution
            (:class:`~mmbackbones.deploy.modules.OneDNNConv2d`,
            :class:`~mmbackbones.deploy.modules.ResidualDeploy`); small pointwise
            convs stay GEMMs. It needs a PyTorch build with oneDNN (x86 and ARM CPU
            wheels) and is skipped without one. Other inputs (CUDA, float16, autograd,
            ONNX export, tracing) take the plain path. Default: True.

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
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    model = _fuse_module(model).eval()  # the new deploy modules too
    for p in model.parameters():
        p.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if prepack and channels_last and onednn_available():
        model = _prepack(model)
    _swap_convs(model, channels_last)
    return model

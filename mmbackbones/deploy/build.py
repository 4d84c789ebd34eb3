"""Building the thing to export or measure: one of our backbones by name, or the model of
an mmdet/mmseg config (built by :func:`mmbackbones.apis.init_model`, the one
config-to-model builder of the tools).

No weights are loaded and ``init_weights`` is not called (a ``Pretrained`` ``init_cfg`` of
the backbone is dropped): models have PyTorch's default random initialisation. Tools
that need trained weights load them explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

#: What :func:`build_backbone_or_config` builds from a config.
CONFIG_PARTS = ('backbone', 'neck')


def build_backbone(
    name: str, arch: str | dict | None = None, out_indices: Sequence[int] | None = None
) -> nn.Module:
    """Build one of our backbones by class name (``'ReXNet'`` or ``'mmbackbones.ReXNet'``).

    Args:
        name (str): A class registered in :data:`mmbackbones.registry.MODELS`.
        arch (str | dict | None): Preset name or arch dict; ``None`` = the class default.
        out_indices (Sequence[int] | None): Taps; ``None`` = the family default.

    Returns:
        nn.Module: The backbone in eval mode, with random weights.

    Raises:
        ValueError: Unknown name (the message lists the valid ones) or a bad ``arch`` /
            ``out_indices`` (the family's own message).

    Example:
        >>> build_backbone('ReXNet', '1.0').out_channels
        [38, 61, 128, 185]
    """
    from mmbackbones.models import family_class
    from mmbackbones.registry import MODELS

    cfg: dict = dict(type=f'mmbackbones.{family_class(name).__name__}')
    if arch is not None:
        cfg['arch'] = arch
    if out_indices is not None:
        cfg['out_indices'] = tuple(out_indices)
    return MODELS.build(cfg).eval()


class BackboneNeck(nn.Module):
    """``neck(backbone(x))`` as a tuple of tensors (the neck is optional).

    Args:
        backbone (nn.Module): Returns a tuple of feature maps.
        neck (nn.Module | None): An mmdet/mmseg neck taking that tuple, or ``None``.

    Example:
        >>> m = BackboneNeck(build_backbone('MobileNetV3', 'small'))
        >>> [t.shape[1] for t in m(torch.rand(1, 3, 64, 64))]
        [16, 24, 48, 96]
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def build_backbone_or_config(
    config: str | None = None,
    backbone: str | None = None,
    arch: str | dict | None = None,
    out_indices: Sequence[int] | None = None,
    part: str = 'neck',
) -> nn.Module:
    """The module the tools work on: a backbone by name, or a config's backbone (+ neck).

    Give exactly one of ``config`` and ``backbone``.

    Args:
        config (str | None): An mmdet/mmseg config file.
        backbone (str | None): One of our backbone class names, e.g. ``'ReXNet'``.
        arch (str | dict | None): With ``backbone``: its preset or arch dict.
        out_indices (Sequence[int] | None): With ``backbone``: taps to build.
        part (str): With ``config``: ``'backbone'`` alone or ``'neck'`` = backbone + neck
            (just the backbone when the model has no neck, e.g. LR-ASPP). Default: 'neck'.

    Returns:
        nn.Module: In eval mode; its forward returns a tuple of feature maps.

    Example:
        >>> m = build_backbone_or_config('configs/rexnet_fasterrcnn_fpn.py')
        >>> len(m(torch.rand(1, 3, 64, 64)))  # FPN levels P2-P6
        5
    """
    if (config is None) == (backbone is None):
        raise ValueError('give either a config file or a backbone name, not both or neither')
    if backbone is not None:
        return build_backbone(backbone, arch, out_indices)
    if part not in CONFIG_PARTS:
        raise ValueError(f'part must be one of {CONFIG_PARTS}, got {part!r}')
    from mmbackbones.apis import init_model

    model = init_model(config)
    neck = getattr(model, 'neck', None) if part == 'neck' else None
    return BackboneNeck(model.backbone, neck).eval()

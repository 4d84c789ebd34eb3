"""A plain ImageNet/CIFAR-style classifier around any of our backbones.

Used to compare params/FLOPs with the papers' classification figures and to train sampled
models in the design-space sweeps. Detection and segmentation use the backbones directly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from mmbackbones.registry import MODELS


class ImageClassifier(nn.Module):
    """Backbone (last tap only) followed by the family's published classifier.

    Args:
        backbone (dict): Backbone config, e.g. ``dict(type='ReXNet', arch='1.0')``; its
            ``out_indices`` is forced to the last tap.
        num_classes (int): Number of classes. Default: 1000.

    Example:
        >>> import torch
        >>> m = ImageClassifier(dict(type='ReXNet', arch='1.0'), num_classes=10).eval()
        >>> m(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 10])
    """

    def __init__(self, backbone: dict, num_classes: int = 1000) -> None:
        super().__init__()
        cfg = dict(backbone, out_indices=(-1,))
        if '.' not in cfg['type']:
            cfg['type'] = f'mmbackbones.{cfg["type"]}'
        self.backbone = MODELS.build(cfg)
        self.head = self.backbone.make_classifier(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])

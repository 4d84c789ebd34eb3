"""mmdet's ``SSDHead`` with its prediction path fixed for mmdet 3.3.

``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls`` (for heads with custom
class channels), which ``SSDHead`` never creates, so every SSD/SSDLite config of mmdet 3.3
trains but fails in validation and testing with ``AttributeError: 'SSDHead' object has no
attribute 'loss_cls'`` (open-mmlab/mmdetection#11063, #11305, #11780; the fix #11524 was
not released). SSD scores with a softmax and has no custom class channels, so
``loss_cls = None`` is exactly the behaviour the base class expects.

Registered as ``mmbackbones.SSDHead`` (scoped; mmdet's own class is not touched).
"""

from __future__ import annotations

from mmdet.models.dense_heads import SSDHead as _MMDetSSDHead

from mmbackbones.registry import MODELS


@MODELS.register_module()
class SSDHead(_MMDetSSDHead):
    """mmdet's ``SSDHead`` (same arguments) whose ``predict`` works on mmdet 3.3.

    Example:
        >>> head = SSDHead(num_classes=4, in_channels=(16, 32, 16, 16, 16, 16),
        ...                use_depthwise=True)  # doctest: +SKIP
    """

    loss_cls = None  # read by BaseDenseHead._predict_by_feat_single; SSD uses softmax

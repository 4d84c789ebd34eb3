"""Importing this package registers every backbone under scope ``mmbackbones``.

Configs load it with ``custom_imports = dict(imports=['mmbackbones.models'])``. The heads
subclass their host's classes (mmseg's ``BaseDecodeHead``, mmdet's ``SSDHead``), so configs
that use them also import ``'mmbackbones.models.heads'`` (or ``...heads.ssd_head``).
"""

from .backbones import *  # noqa: F401,F403
from .backbones import __all__ as _backbones
from .classifier import ImageClassifier

__all__ = [*_backbones, 'ImageClassifier']

# registers the weight URI schemes (timm://, tv://, ...) with mmengine's CheckpointLoader, so
# that a config's init_cfg=dict(type='Pretrained', checkpoint='timm://...') loads; last, as
# mmbackbones.convert reads the families registered above
import mmbackbones.convert  # noqa: E402, F401


def __getattr__(name: str):
    # the heads subclass mmseg's BaseDecodeHead: imported on first use only, so that the
    # backbones never pay for (or need) mmseg; configs import 'mmbackbones.models.heads'
    if name == 'AdaptiveLRASPPHead':
        from .heads import AdaptiveLRASPPHead

        return AdaptiveLRASPPHead
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

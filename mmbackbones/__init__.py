"""mmbackbones: efficient CNN backbones for OpenMMLab (mmdet / mmseg)."""

from .checkpoint import allow_mmengine_checkpoints

__version__ = '0.1.0'

# mmengine's own checkpoints (``--resume``, ``load_from``) must load under torch >= 2.6's
# weights_only default, also when our configs run under mmdet's/mmseg's own tools.
allow_mmengine_checkpoints()

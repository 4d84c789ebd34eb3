"""The plugin's registry: a child of mmengine's root ``MODELS`` with scope ``mmbackbones``.

Configs name our classes with the scope (``type='mmbackbones.ReXNet'``) so that they never
resolve to a host's class of the same name (mmdet has ``RegNet``, ``ResNeXt``,
``EfficientNet``; mmseg has ``MobileNetV3``). We never register into mmdet's or mmseg's
registries, so the backbones import with neither installed.
"""

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmbackbones', locations=['mmbackbones.models']
)

# the CPU DDP wrapper of ``tools/train.py --launcher pytorch`` without CUDA (utils/dist.py)
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='mmbackbones',
    locations=['mmbackbones.utils.dist'],
)

# the runner hooks of tools/train.py and tools/test.py: strict checkpoint loading and the
# random state saved with each checkpoint (mmbackbones/loading_hooks.py)
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmbackbones', locations=['mmbackbones.loading_hooks']
)

__all__ = ['HOOKS', 'MODELS', 'MODEL_WRAPPERS']

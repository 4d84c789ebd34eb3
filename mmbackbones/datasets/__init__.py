"""Built-in data sets (generated on first use) and the ``--builtin-data`` config switch."""

from .builtin import BUILTIN_SCHEDULES, apply_builtin_data, task_of
from .cityscapes_synth import CITYSCAPES_CLASSES, SYNTH_TRAIN_IDS, ensure_cityscapes_synth
from .shapes import SHAPES_CLASSES, ensure_shapes_coco

__all__ = [
    'BUILTIN_SCHEDULES',
    'CITYSCAPES_CLASSES',
    'SHAPES_CLASSES',
    'SYNTH_TRAIN_IDS',
    'apply_builtin_data',
    'ensure_cityscapes_synth',
    'ensure_shapes_coco',
    'task_of',
]

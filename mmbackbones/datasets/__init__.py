"""Built-in data sets (generated on first use) and the ``--builtin-data`` config switch."""

from .builtin import BUILTIN_SCHEDULES, apply_builtin_data, task_of
from .shapes import SHAPES_CLASSES, ensure_shapes_coco

__all__ = [
    'BUILTIN_SCHEDULES',
    'SHAPES_CLASSES',
    'apply_builtin_data',
    'ensure_shapes_coco',
    'task_of',
]

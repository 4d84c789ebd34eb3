"""Config checks shared by ``tools/train.py`` and ``tools/test.py``."""

from .checks import DataNotFoundError, check_data, check_neck_channels, check_pretrained

__all__ = ['DataNotFoundError', 'check_data', 'check_neck_channels', 'check_pretrained']

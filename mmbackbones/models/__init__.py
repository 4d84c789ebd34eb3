"""Importing this package registers every backbone and head under scope ``mmbackbones``.

Configs load it with ``custom_imports = dict(imports=['mmbackbones.models'])``.
"""

from .backbones import *  # noqa: F401,F403
from .backbones import __all__ as _backbones
from .classifier import ImageClassifier

__all__ = [*_backbones, 'ImageClassifier']

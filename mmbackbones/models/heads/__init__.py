"""Heads that mmdet / mmseg lack. They need their host (mmseg), so this package is not
imported by ``mmbackbones.models``: configs add ``'mmbackbones.models.heads'`` to
``custom_imports`` (importing mmseg.models costs seconds, which backbone-only and mmdet
users should not pay)."""

from .lraspp_head import AdaptiveLRASPPHead

__all__ = ['AdaptiveLRASPPHead']

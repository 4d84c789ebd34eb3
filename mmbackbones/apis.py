"""The one config-to-model builder every tool uses, on mmdet's and mmseg's own init APIs.

:func:`init_model` builds the detector or segmentor of an mmdet/mmseg config with the
host's own ``init_detector`` (mmdet) / ``init_model`` (mmseg), which pick the registry
from the config's ``default_scope``, load a checkpoint and put the model in eval mode
(``Config.fromfile`` has imported the config's ``custom_imports``). What it adds: the
backbone's ``Pretrained`` init is dropped unless asked for (the tools measure or
export; weights come from ``checkpoint``), SyncBN runs as BN (one process, as mmengine's
Runner does on one device), mmseg keeps the config's ``train_cfg``, and a bad config
path or scope is one clear ``ValueError``.
"""

from __future__ import annotations

import os.path as osp
import warnings
from typing import Any

import torch.nn as nn

#: The hosts a config can name as its ``default_scope``.
HOSTS = ('mmdet', 'mmseg')


def load_config(config: Any, cfg_options: dict | None = None) -> Any:
    """An ``mmengine.Config`` of an mmdet/mmseg config file (or a copy of a loaded one),
    with ``cfg_options`` merged and the host checked.

    Raises:
        ValueError: a missing file, a ``default_scope`` that is neither host, or no
            ``model``.
    """
    from mmengine.config import Config

    if isinstance(config, Config):
        cfg = Config(config.to_dict(), filename=config.filename)
    else:
        if not osp.isfile(str(config)):
            raise ValueError(f'config file {str(config)!r} does not exist')
        cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    host_of(cfg)
    if not isinstance(cfg.get('model'), dict):
        raise ValueError(
            f'{cfg.filename or "the config"}: no model=dict(...); an mmdet/mmseg config '
            "defines it or inherits it (_base_ = ['mmdet::...'] or one of configs/)"
        )
    return cfg


def host_of(cfg: Any) -> str:
    """``'mmdet'`` or ``'mmseg'``: the config's ``default_scope`` (mmdet when unset)."""
    scope = cfg.get('default_scope', 'mmdet')
    if scope not in HOSTS:
        where = getattr(cfg, 'filename', None) or 'the config'
        raise ValueError(f'{where}: default_scope must be one of {HOSTS}, got {scope!r}')
    return scope


def init_model(
    config: Any,
    checkpoint: str | None = None,
    device: str = 'cpu',
    cfg_options: dict | None = None,
    backbone_pretrained: bool = False,
) -> nn.Module:
    """Build the model of an mmdet or mmseg config in eval mode.

    Args:
        config (str | Config): Config file or loaded config (not modified).
        checkpoint (str | None): Weights to load (the host's loader); ``None`` leaves
            the initialisation. Default: None.
        device (str): Default: 'cpu'.
        cfg_options (dict | None): Config overrides, as ``--cfg-options``.
        backbone_pretrained (bool): Keep the backbone's ``init_cfg`` (the host APIs do
            not call ``init_weights``, so it only matters to callers that do).
            Default: False (dropped: no ImageNet file is needed).

    Returns:
        nn.Module: The detector / segmentor, ``model.cfg`` set, SyncBN reverted to BN.

    Example:
        >>> model = init_model('configs/rexnet_fasterrcnn_fpn.py')
        >>> type(model).__name__, type(model.backbone).__name__, model.training
        ('FasterRCNN', 'ReXNet', False)
    """
    from mmengine.model import revert_sync_batchnorm

    cfg = load_config(config, cfg_options)
    if not backbone_pretrained and isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.init_cfg = None
    # mmdet warns that a model without checkpoint gets COCO's class names (after its own
    # simplefilter('once'), so a filter cannot silence it): drop that one, re-emit others
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        if host_of(cfg) == 'mmdet':
            from mmdet.apis import init_detector

            model = init_detector(cfg, checkpoint, device=device)
        else:
            from mmseg.apis import init_model as init_segmentor

            # mmseg's init_model sets the config's train_cfg to None; keep it (loss heads
            # such as PointHead read it)
            train_cfg = cfg.model.get('train_cfg')
            model = init_segmentor(cfg, checkpoint, device=device)
            model.train_cfg = train_cfg
            cfg.model.train_cfg = train_cfg
    for w in caught:
        if not str(w.message).startswith('checkpoint is None'):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return revert_sync_batchnorm(model).eval()

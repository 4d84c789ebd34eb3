"""The host config's side: resolving it and measuring what its backbone gives."""

from __future__ import annotations

import copy
import math
import os.path as osp
from typing import Any

import torch
import torch.nn as nn

from mmbackbones.apis import HOSTS

from .types import PROBE_SIZE, DropInError, HostBackbone


# ------------------------------------------------------------------------ the host
def resolve_host(host: str, out: str | None = None) -> tuple[str, str]:
    """The file of a host config and what the written config's ``_base_`` says.

    ``'mmdet::<dir>/<file>.py'`` / ``'mmseg::...'`` name the configs the pip packages ship
    (under ``.mim/configs``) and stay as they are in ``_base_``; a path is written relative
    to ``out``'s folder (absolute without ``out``), as mmengine resolves ``_base_``.

    Raises:
        DropInError: an unknown package or config file.

    Example:
        >>> path, base = resolve_host('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
        >>> path.endswith('mmdet/.mim/configs/retinanet/retinanet_r50_fpn_1x_coco.py'), base
        (True, 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')
    """
    if '::' in host:
        package, rel = host.split('::', 1)
        if package not in HOSTS:
            raise DropInError(
                f'unknown host config {host!r}: the package before :: must be one of {HOSTS}'
            )
        from mmengine.utils import get_installed_path

        root = osp.join(get_installed_path(package), '.mim', 'configs')
        path = osp.join(root, rel)
        if not osp.isfile(path):
            raise DropInError(f'unknown host config {host!r}: no file {rel} under {root}')
        return path, host
    if not osp.isfile(host):
        raise DropInError(
            f"unknown host config {host!r}: no such file (use 'mmdet::<dir>/<file>.py' or "
            "'mmseg::...' for the configs mmdet and mmseg ship)"
        )
    path = osp.abspath(host)
    if out is None:
        return path, path
    return path, osp.relpath(path, osp.dirname(osp.abspath(out)))


def _host_registry(scope: str) -> Any:
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def measure_host_backbone(cfg: Any, scope: str) -> HostBackbone:
    """Build the host config's backbone and measure its outputs on a
    ``PROBE_SIZE`` x ``PROBE_SIZE`` input (the meta device first; the CPU when a layer
    cannot run there). No weights are loaded.

    Args:
        cfg (Config): The host config.
        scope (str): ``'mmdet'`` or ``'mmseg'``.

    Returns:
        HostBackbone: Its type, output channels and strides, and whether it is dilated.

    Example:
        >>> from mmengine.config import Config
        >>> path, _ = resolve_host('mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py')
        >>> host = measure_host_backbone(Config.fromfile(path), 'mmseg')
        >>> host.type, host.channels, host.strides, host.dilated
        ('ResNetV1c', [256, 512, 1024, 2048], [4, 8, 8, 8], True)
    """
    from mmengine.registry import DefaultScope

    bb_cfg = copy.deepcopy(cfg.model.get('backbone'))
    if not isinstance(bb_cfg, dict) or 'type' not in bb_cfg:
        raise DropInError(f'{cfg.filename}: the host config has no model.backbone to replace')
    bb_cfg.pop('init_cfg', None)
    bb_cfg.pop('pretrained', None)
    name = str(bb_cfg['type'])
    registry = _host_registry(scope)
    errors = []
    for device in ('meta', 'cpu'):
        try:
            with DefaultScope.overwrite_default_scope(scope), torch.device(device):
                model = registry.build(bb_cfg)
                model.eval()  # not chained: mmdet's ResNet.train() returns None
                with torch.no_grad():
                    outs = model(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
            break
        except Exception as e:  # any layer may refuse the meta device; report both tries
            errors.append(f'{device}: {type(e).__name__}: {e}')
    else:
        raise DropInError(
            f'could not build and run the host backbone {name} to measure its outputs '
            f'({"; ".join(errors)})'
        )
    outs = (outs,) if isinstance(outs, torch.Tensor) else tuple(outs)
    strides = [2 ** round(math.log2(PROBE_SIZE / o.shape[-1])) for o in outs]
    dilated = any(
        isinstance(m, nn.Conv2d) and max(m.dilation) > 1 for m in model.modules()
    )  # fmt: skip
    return HostBackbone(name, [int(o.shape[1]) for o in outs], strides, dilated)

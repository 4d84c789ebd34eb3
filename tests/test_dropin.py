"""Drop-in use: mmdet's own configs, unchanged through ``_base_``, with ReXNet swapped in."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

DROPIN = """
_base_ = '{base}'
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmbackbones.ReXNet', arch='1.0',
                  out_indices=(1, 2, 3, 4)),
    neck=dict(in_channels=[38, 61, 128, 185]))
"""


def _loss_step(cfg: Config, with_mask: bool) -> dict:
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    from mmengine.utils import import_modules_from_strings

    import_modules_from_strings(**cfg.custom_imports)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    packed = demo_mm_inputs(2, [[3, 128, 160], [3, 160, 128]], num_classes=80, with_mask=with_mask)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    assert torch.isfinite(loss)
    assert type(model.backbone).__module__ == 'mmbackbones.models.backbones.rexnet'
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    return losses


@pytest.mark.parametrize(
    'base,with_mask',
    [
        ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', False),
        ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', True),
    ],
)
def test_rexnet_drops_into_mmdet_config(tmp_path, base: str, with_mask: bool) -> None:
    path = tmp_path / 'dropin.py'
    path.write_text(DROPIN.format(base=base))
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type == 'mmbackbones.ReXNet'
    losses = _loss_step(cfg, with_mask)
    assert ('loss_mask' in losses) == with_mask

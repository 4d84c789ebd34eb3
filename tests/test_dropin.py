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


# ------------------------------------------------------------------ mmseg's `pretrained`
# mmseg's EncoderDecoder copies a config's model.pretrained into the backbone; its base
# configs set 'open-mmlab://resnet50_v1c'. Only the backbone is replaced here, as a user
# would on a first try.
MMSEG_CONFIGS = [
    'fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py',
]
SEG_DROPIN = """
_base_ = 'mmseg::{base}'
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, type='mmbackbones.{family}', arch={arch!r}))
"""


def _seg_model(tmp_path, base: str, family: str, arch: str, **model):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    path = tmp_path / 'cfg.py'
    path.write_text(SEG_DROPIN.format(base=base, family=family, arch=arch))
    cfg = Config.fromfile(str(path))
    cfg.model.update(model)
    init_default_scope('mmseg')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('base', MMSEG_CONFIGS)
def test_mmseg_base_pretrained_stops_with_one_line(tmp_path, base: str) -> None:
    with pytest.raises(ValueError) as e:
        _seg_model(tmp_path, base, 'ReXNet', '1.0')
    msg = str(e.value)
    assert "pretrained='open-mmlab://resnet50_v1c'" in msg and '\n' not in msg
    assert 'set model.pretrained=None' in msg and 'model.backbone.init_cfg' in msg


@pytest.mark.parametrize(
    'family,arch',
    [('ReXNet', '1.0'), ('MobileNetV3', 'large'), ('EfficientNet', 'b0'),
     ('RegNet', 'regnetx_400mf'), ('ResNeXt', '50_32x4d'), ('AnyNet', 'nds_r56')],
)  # fmt: skip
def test_mmseg_pretrained_none_builds_every_family(tmp_path, family: str, arch: str) -> None:
    model = _seg_model(tmp_path, MMSEG_CONFIGS[0], family, arch, pretrained=None)
    assert type(model.backbone).__name__ == family
    assert type(model.backbone).__module__.startswith('mmbackbones.')


def test_mmseg_pretrained_of_ours_becomes_the_pretrained_init(tmp_path) -> None:
    """A weight file our converter wrote, given as model.pretrained, loads as the
    backbone's Pretrained init (with mmseg's deprecation note)."""
    timm = pytest.importorskip('timm')
    from mmbackbones.convert import SOURCES, convert_file, resolve

    src, dst = tmp_path / 'rexnet_100.pth', tmp_path / 'rexnet_1.0_ours.pth'
    torch.save(timm.create_model('rexnet_100', pretrained=False).state_dict(), src)
    convert_file(str(src), str(dst), resolve(SOURCES['timm'], model='rexnet_100'))
    with pytest.warns(UserWarning, match='pretrained is deprecated'):
        model = _seg_model(tmp_path, MMSEG_CONFIGS[0], 'ReXNet', '1.0', pretrained=str(dst))
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(dst))
    model.init_weights()
    ours = torch.load(dst, weights_only=True)['state_dict']
    w = 'layers.b5.dw.conv.weight'
    assert torch.equal(model.backbone.state_dict()[w], ours[w])
    # a file that is not ours is refused like the host's checkpoint
    torch.save({'state_dict': ours}, tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match='not a weight file of ours'):
        _seg_model(
            tmp_path, MMSEG_CONFIGS[0], 'ReXNet', '1.0', pretrained=str(tmp_path / 'plain.pth')
        )

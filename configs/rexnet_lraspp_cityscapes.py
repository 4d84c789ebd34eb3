# ReXNet x1.0 + LR-ASPP on Cityscapes. Not a row of either paper: the MobileNetV3
# LR-ASPP recipe, _base_/lraspp_4xb4-320k_cityscapes-512x1024.py (mmseg's Cityscapes
# schedule, output stride 16, 128 head filters, from scratch), so that this row compares
# with mobilenetv3-large_lraspp_cityscapes.py at equal recipe.
#
#   python tools/train.py configs/rexnet_lraspp_cityscapes.py                # Cityscapes
#   python tools/train.py configs/rexnet_lraspp_cityscapes.py --builtin-data # CPU
_base_ = './_base_/lraspp_4xb4-320k_cityscapes-512x1024.py'

model = dict(
    backbone=dict(
        type='mmbackbones.ReXNet',  # scoped: our registry
        arch='1.0',
        # 61@/8 (low-level skip) and the last block, 185@/16. Not the 1280-channel head
        # conv: it exists for ImageNet pooling and would add 0.52M params and 3.1G FLOPs
        # at 1024x2048 (the MobileNetV3 rows tap a 480-channel C5)
        out_indices=(2, 4),
        # from scratch, as the MobileNetV3 rows; with ImageNet weights add
        # init_cfg=dict(type='Pretrained', checkpoint='timm://rexnet_100.nav_in1k')
    ),
    decode_head=dict(in_channels=(61, 185)),  # == backbone out_channels (tools/train.py checks)
)

# EfficientNet-B0 + LR-ASPP on Cityscapes. Not a row of either paper: the MobileNetV3
# LR-ASPP recipe, _base_/lraspp_4xb4-320k_cityscapes-512x1024.py (mmseg's Cityscapes
# schedule, output stride 16, 128 head filters, from scratch), so that this row compares
# with mobilenetv3-large_lraspp_cityscapes.py at equal recipe.
#
#   python tools/train.py configs/efficientnet-b0_lraspp_cityscapes.py                # Cityscapes
#   python tools/train.py configs/efficientnet-b0_lraspp_cityscapes.py --builtin-data # CPU
_base_ = './_base_/lraspp_4xb4-320k_cityscapes-512x1024.py'

model = dict(
    backbone=dict(
        type='mmbackbones.EfficientNet',  # scoped: mmseg/mmdet have their own EfficientNet
        arch='b0',
        # 40@/8 (low-level skip) and the last block, 320@/16. Not the 1280-channel head
        # conv: it exists for ImageNet pooling and would add 0.66M params and 4.4G FLOPs
        # at 1024x2048 (the MobileNetV3 rows tap a 480-channel C5)
        out_indices=(2, 4),
        # from scratch, as the MobileNetV3 rows; with ImageNet weights add
        # init_cfg=dict(type='Pretrained', checkpoint='tv://efficientnet_b0.imagenet1k_v1')
        # and norm_cfg eps 1e-5 (the weights' BN eps)
    ),
    decode_head=dict(in_channels=(40, 320)),  # == backbone out_channels (tools/train.py checks)
)

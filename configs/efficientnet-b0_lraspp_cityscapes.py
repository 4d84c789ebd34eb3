# EfficientNet-B0 + LR-ASPP on Cityscapes. Not a row of either paper: the MobileNetV3-Large
# LR-ASPP recipe (configs/mobilenetv3-large_lraspp_cityscapes.py: mmseg's Cityscapes
# schedule, output stride 16, 128 head filters, from scratch) with the backbone swapped, so
# the two compare at equal recipe.
#
#   python tools/train.py configs/efficientnet-b0_lraspp_cityscapes.py                # Cityscapes
#   python tools/train.py configs/efficientnet-b0_lraspp_cityscapes.py --builtin-data # CPU
_base_ = './mobilenetv3-large_lraspp_cityscapes.py'

model = dict(
    backbone=dict(
        _delete_=True,  # drop the MobileNetV3 keys
        type='mmbackbones.EfficientNet',  # scoped: mmseg/mmdet have their own EfficientNet
        arch='b0',
        output_stride=16,  # LR-ASPP's atrous last stage, as the MobileNetV3 row
        # 40@/8 (low-level skip) and the last block, 320@/16. Not the 1280-channel head
        # conv: it exists for ImageNet pooling and would add 0.66M params and 4.4G FLOPs
        # at 1024x2048 (the MobileNetV3 rows tap a 480-channel C5)
        out_indices=(2, 4),
        norm_cfg=dict(type='SyncBN', eps=1e-3, requires_grad=True),  # as the MobileNetV3 recipe
        # from scratch, as the MobileNetV3 rows; with converted ImageNet weights add
        # init_cfg=dict(type='Pretrained', checkpoint='checkpoints/efficientnet_b0_imagenet.pth')
    ),
    decode_head=dict(in_channels=(40, 320)),  # == backbone out_channels (tools/train.py checks)
)

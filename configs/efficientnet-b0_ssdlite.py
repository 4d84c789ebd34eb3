# EfficientNet-B0 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 23.5 box AP
# test-dev, 6.2M params, 0.97 GFLOPs at 320x320).
#
# The ReXNet paper trains its EfficientNet rows like its ReXNet rows, so the recipe is
# rexnet_ssdlite.py's: _base_/ssdlite_syncbn_8xb32-600e_coco-320.py (8 GPUs x 32 images,
# SGD lr 0.01, SyncBN, mmdet's SSDLite schedule).
#
# Taps: C4 = the expansion conv of the first stride-32 block (672 channels at stride 16),
# C5 = the final 1x1 head conv (1280 at stride 32), the MobileNetV2/V3 SSDLite convention
# that the ReXNet paper follows. With them our model reproduces both the paper's params
# and FLOPs to 3%; the last stride-16 block's output gives 4-5% too few FLOPs.
#
#   python tools/train.py configs/efficientnet-b0_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './_base_/ssdlite_syncbn_8xb32-600e_coco-320.py'

model = dict(
    backbone=dict(
        type='mmbackbones.EfficientNet',  # scoped: mmdet has its own EfficientNet
        arch='b0',
        # C4 and C5: tap 3 becomes the first stride-32 block's expansion conv (672@/16),
        # tap 5 is the head 1x1 conv (1280@/32)
        out_indices=(3, 5),
        feature_location='expansion',
        # the recipe's SyncBN, with the eps the ImageNet weights were trained with (1e-5
        # for torchvision's B0-B4, not SSDLite's TF 1e-3); neck and head keep 1e-3
        norm_cfg=dict(type='SyncBN', eps=1e-5, momentum=0.03),
        drop_path_rate=0.2,  # stochastic depth of the ImageNet recipe, kept for fine-tuning
        # torchvision's ImageNet weights, fetched into TORCH_HOME and converted on load
        # (docs/weights.md); RGB input, ImageNet mean/std (the recipe's data_preprocessor)
        init_cfg=dict(type='Pretrained', checkpoint='tv://efficientnet_b0.imagenet1k_v1'),
    ),
    # must equal EfficientNet('b0', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 672@/16, C5 1280@/32
    neck=dict(in_channels=(672, 1280), out_channels=(672, 1280, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(672, 1280, 512, 256, 256, 128)),  # = the neck's out_channels
)

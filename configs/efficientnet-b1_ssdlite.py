# EfficientNet-B1 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 25.8 box AP
# test-dev, 8.7M params, 1.35 GFLOPs at 320x320).
#
# efficientnet-b0_ssdlite.py (the ReXNet paper's SSDLite recipe, C4 expansion + C5 head
# taps) with the B1 backbone: only the arch, its weights and the tap widths change.
#
#   python tools/train.py configs/efficientnet-b1_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './efficientnet-b0_ssdlite.py'

model = dict(
    backbone=dict(
        arch='b1',
        # torchvision's ImageNet weights (BN eps 1e-5, as B0's), converted on load
        init_cfg=dict(type='Pretrained', checkpoint='tv://efficientnet_b1.imagenet1k_v2'),
    ),
    # must equal EfficientNet('b1', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 672@/16, C5 1280@/32
    neck=dict(in_channels=(672, 1280), out_channels=(672, 1280, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(672, 1280, 512, 256, 256, 128)),  # = the neck's out_channels
)

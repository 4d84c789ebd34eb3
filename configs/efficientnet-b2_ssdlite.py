# EfficientNet-B2 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 26.6 box AP
# test-dev, 10.0M params, 1.55 GFLOPs at 320x320).
#
# efficientnet-b0_ssdlite.py (the ReXNet paper's SSDLite recipe, C4 expansion + C5 head
# taps) with the B2 backbone: only the arch, its weights and the tap widths change.
#
#   python tools/train.py configs/efficientnet-b2_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './efficientnet-b0_ssdlite.py'

model = dict(
    backbone=dict(
        arch='b2',
        # torchvision's ImageNet weights (BN eps 1e-5, as B0's), converted on load
        init_cfg=dict(type='Pretrained', checkpoint='tv://efficientnet_b2.imagenet1k_v1'),
    ),
    # must equal EfficientNet('b2', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 720@/16, C5 1408@/32
    neck=dict(in_channels=(720, 1408), out_channels=(720, 1408, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(720, 1408, 512, 256, 256, 128)),  # = the neck's out_channels
)

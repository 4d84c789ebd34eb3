# ReXNet x1.3 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 27.3 box AP test-dev,
# 8.4M params, 1.60 GFLOPs at 320x320).
#
# Everything but the width is rexnet_ssdlite.py: the same taps (C4 = the expansion conv of
# the first stride-32 block, C5 = the final 1x1 head conv; see there why) and recipe.
#
#   python tools/train.py configs/rexnet-1.3_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './rexnet_ssdlite.py'

model = dict(
    backbone=dict(
        arch='1.3',
        # the authors' x1.3 ImageNet weights on the Hugging Face Hub (timm), as x1.0's
        init_cfg=dict(type='Pretrained', checkpoint='timm://rexnet_130.nav_in1k'),
    ),
    # must equal ReXNet('1.3', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 1002@/16, C5 1664@/32
    neck=dict(in_channels=(1002, 1664), out_channels=(1002, 1664, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(1002, 1664, 512, 256, 256, 128)),  # = the neck's out_channels
)

# ReXNet x0.9 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 24.7 box AP test-dev,
# 5.0M params, 0.88 GFLOPs at 320x320).
#
# Everything but the width is rexnet_ssdlite.py: the same taps (C4 = the expansion conv of
# the first stride-32 block, C5 = the final 1x1 head conv; see there why) and recipe.
#
#   python tools/train.py configs/rexnet-0.9_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './rexnet_ssdlite.py'

model = dict(
    backbone=dict(
        arch='0.9',
        # No published ImageNet weights for x0.9: neither the authors (clovaai/rexnet) nor
        # timm publish this width. This is the converter's default file name for
        # ReXNet('0.9') (tools/convert_weights.py SRC --source clovaai --backbone ReXNet
        # --arch 0.9 writes it from weights you trained with the authors' code); or train
        # from scratch with --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/rexnet-0.9_imagenet.pth'),
    ),
    # must equal ReXNet('0.9', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 702@/16, C5 1152@/32
    neck=dict(in_channels=(702, 1152), out_channels=(702, 1152, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(702, 1152, 512, 256, 256, 128)),  # = the neck's out_channels
)

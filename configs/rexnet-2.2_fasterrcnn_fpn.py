# ReXNet x2.2 + FPN + Faster R-CNN on COCO (ReXNet paper, COCO transfer: 41.5 box AP val,
# 33.0M params, 153.8 GFLOPs at 1200x800).
#
# Everything but the width is rexnet_fasterrcnn_fpn.py: taps at strides 4-32 for FPN and
# mmdet's 1x recipe at 1200x800 (the paper does not publish its R-CNN schedule).
#
#   python tools/train.py configs/rexnet-2.2_fasterrcnn_fpn.py                 # COCO
#   python tools/train.py configs/rexnet-2.2_fasterrcnn_fpn.py --builtin-data  # built-in, CPU
_base_ = './rexnet_fasterrcnn_fpn.py'

model = dict(
    backbone=dict(
        arch='2.2',
        # No published ImageNet weights for x2.2: neither the authors (clovaai/rexnet) nor
        # timm publish this width. This is the converter's default file name for
        # ReXNet('2.2') (tools/convert_weights.py SRC --source clovaai --backbone ReXNet
        # --arch 2.2 writes it from weights you trained with the authors' code); or train
        # from scratch with --cfg-options model.backbone.init_cfg=None
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/rexnet-2.2_imagenet.pth'),
    ),
    # must equal ReXNet('2.2').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[85, 134, 283, 406]),
)

# ReXNet x1.0 + FPN + Mask R-CNN on COCO (ReXNet paper, COCO transfer: 38.9 box AP / 35.4
# mask AP val, 23.3M params, 124.1 GFLOPs at 1200x800).
#
# Recipe: _base_/mask-rcnn_fpn_1x_coco-1200x800.py (mmdet's 1x recipe at the paper's
# 1200x800 input; the paper does not publish its R-CNN schedule). Backbone and neck are
# those of rexnet_fasterrcnn_fpn.py.
#
#   python tools/train.py configs/rexnet_maskrcnn_fpn.py                 # COCO, paper recipe
#   python tools/train.py configs/rexnet_maskrcnn_fpn.py --builtin-data  # built-in, CPU
_base_ = './_base_/mask-rcnn_fpn_1x_coco-1200x800.py'

model = dict(
    backbone=dict(
        type='mmbackbones.ReXNet',  # scoped: never resolves to a host class
        arch='1.0',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        # ImageNet weights (the paper's detection rows start from them): the authors'
        # ReXNet x1.0 as timm hosts it on the Hugging Face Hub, fetched into the HF cache
        # and converted on load (docs/weights.md). Trained with BN eps 1e-5 (the recipe's
        # BN) on RGB input with ImageNet mean/std (the recipe's data_preprocessor)
        init_cfg=dict(type='Pretrained', checkpoint='timm://rexnet_100.nav_in1k'),
    ),
    # must equal ReXNet('1.0').out_channels for out_indices (1, 2, 3, 4); checked by
    # tools/train.py at build time and by tests/test_configs.py
    neck=dict(in_channels=[38, 61, 128, 185]),
)

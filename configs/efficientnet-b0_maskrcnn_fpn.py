# EfficientNet-B0 + FPN + Mask R-CNN on COCO (ReXNet paper, COCO transfer: 38.4 box AP /
# 34.8 mask AP val, 23.7M params, 123.0 GFLOPs at 1200x800).
#
# The ReXNet paper trains its EfficientNet row like its ReXNet rows, so the recipe is
# rexnet_maskrcnn_fpn.py's: _base_/mask-rcnn_fpn_1x_coco-1200x800.py (mmdet's 1x
# recipe at 1200x800; the paper does not publish its R-CNN schedule).
#
#   python tools/train.py configs/efficientnet-b0_maskrcnn_fpn.py                 # COCO
#   python tools/train.py configs/efficientnet-b0_maskrcnn_fpn.py --builtin-data  # CPU
_base_ = './_base_/mask-rcnn_fpn_1x_coco-1200x800.py'

model = dict(
    backbone=dict(
        type='mmbackbones.EfficientNet',  # scoped: mmdet has its own EfficientNet
        arch='b0',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        # the eps the ImageNet weights were trained with: 1e-5 for torchvision's (and
        # timm's) efficientnet_b0, not the family's TF default 1e-3; the frozen BN
        # statistics (norm_eval) assume it
        norm_cfg=dict(type='BN', eps=1e-5, momentum=0.01, requires_grad=True),
        drop_path_rate=0.2,  # stochastic depth of the ImageNet recipe, kept for fine-tuning
        # torchvision's ImageNet weights, fetched into TORCH_HOME and converted on load
        # (docs/weights.md); RGB input, ImageNet mean/std (the recipe's data_preprocessor)
        init_cfg=dict(type='Pretrained', checkpoint='tv://efficientnet_b0.imagenet1k_v1'),
    ),
    # must equal EfficientNet('b0').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[24, 40, 112, 320]),
)

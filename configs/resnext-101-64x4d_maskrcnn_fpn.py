# ResNeXt-101 64x4d + FPN + Mask R-CNN on COCO (mmdet model zoo, 1x at 1333x800: 42.8 box
# AP / 38.4 mask AP val). The ReXNet paper has no ResNeXt row for Mask R-CNN.
#
# Recipe: _base_/mask-rcnn_fpn_1x_coco-1200x800.py, as for the ReXNet rows: mmdet's 1x
# recipe at the ReXNet paper's 1200x800 input, so that this row compares with them.
#
#   python tools/train.py configs/resnext-101-64x4d_maskrcnn_fpn.py                 # COCO
#   python tools/train.py configs/resnext-101-64x4d_maskrcnn_fpn.py --builtin-data  # CPU
_base_ = './_base_/mask-rcnn_fpn_1x_coco-1200x800.py'

model = dict(
    backbone=dict(
        type='mmbackbones.ResNeXt',  # scoped: mmdet has its own ResNeXt
        arch='101_64x4d',  # [3, 4, 23, 3] bottlenecks, grouped 3x3 of cardinality x width
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        # torchvision's ImageNet weights, fetched into TORCH_HOME and converted on load
        # (docs/weights.md); BN eps 1e-5, RGB input with the base config's mean/std
        init_cfg=dict(type='Pretrained', checkpoint='tv://resnext101_64x4d.imagenet1k_v1'),
    ),
    # must equal ResNeXt('101_64x4d').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[256, 512, 1024, 2048]),
)

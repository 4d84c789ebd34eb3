# ResNeXt-101 64x4d + FPN + Faster R-CNN on COCO (mmdet model zoo, 1x at 1333x800: 42.1
# box AP val). The ReXNet paper's ResNeXt-101 row is the 32x4d model (its 60.4M params
# are resnext-101-32x4d_fasterrcnn_fpn.py's), so this one has no paper row.
#
# rexnet_fasterrcnn_fpn.py with the backbone swapped: mmdet's 1x recipe at the ReXNet
# paper's 1200x800 input, so that this row compares with the ReXNet rows.
#
#   python tools/train.py configs/resnext-101-64x4d_fasterrcnn_fpn.py                 # COCO
#   python tools/train.py configs/resnext-101-64x4d_fasterrcnn_fpn.py --builtin-data  # CPU
_base_ = './rexnet_fasterrcnn_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,  # drop every ReXNet-only key of the base config
        type='mmbackbones.ResNeXt',  # scoped: mmdet has its own ResNeXt
        arch='101_64x4d',  # [3, 4, 23, 3] bottlenecks, grouped 3x3 of cardinality x width
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        frozen_stages=1,  # mmdet convention for pretrained backbones: stem + stage 1
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,  # 2 images/GPU: keep ImageNet BN statistics
        # ImageNet weights converted with tools/convert_weights.py (timm/torchvision:
        # RGB input, the base config's ImageNet mean/std)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnext_101_64x4d_imagenet.pth'),
    ),
    # must equal ResNeXt('101_64x4d').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[256, 512, 1024, 2048]),
)

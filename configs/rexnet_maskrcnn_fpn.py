# ReXNet x1.0 + FPN + Mask R-CNN on COCO (ReXNet paper, COCO transfer: 38.9 box AP / 35.4
# mask AP val, 23.3M params, 124.1 GFLOPs at 1200x800). The root of the Mask R-CNN configs.
#
# The paper does not publish its R-CNN schedule, so we use mmdet's 1x recipe (12 epochs,
# SGD lr 0.02 for batch 16, steps at epochs 8 and 11) at the paper's 1200x800 input.
# Backbone and neck are those of rexnet_fasterrcnn_fpn.py.
#
#   python tools/train.py configs/rexnet_maskrcnn_fpn.py                 # COCO, paper recipe
#   python tools/train.py configs/rexnet_maskrcnn_fpn.py --builtin-data  # built-in, CPU
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

# registers mmbackbones.* classes; fail loudly rather than fall back to a host class
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # drop every ResNet-only key of the base config
        type='mmbackbones.ReXNet',  # scoped: never resolves to a host class
        arch='1.0',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        frozen_stages=1,  # mmdet convention for pretrained backbones: stem + stage 1
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,  # 2 images/GPU: keep ImageNet BN statistics
        # ImageNet weights converted with tools/convert_weights.py (README: "Bring your
        # ImageNet weights"); the detection rows of the paper start from them.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/rexnet_1.0_imagenet.pth'),
    ),
    # must equal ReXNet('1.0').out_channels for out_indices (1, 2, 3, 4); checked by
    # tools/train.py at build time and by tests/test_configs.py
    neck=dict(in_channels=[38, 61, 128, 185]),
)

# the paper's input size: 1200x800 instead of mmdet's 1333x800
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# mmdet 1x: lr 0.02 is for 8 GPUs x 2 images; scaled linearly for other batch sizes
auto_scale_lr = dict(enable=True, base_batch_size=16)

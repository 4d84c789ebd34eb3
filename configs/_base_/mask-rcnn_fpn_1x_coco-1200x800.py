# Recipe: FPN + Mask R-CNN on COCO, mmdet's 1x schedule at the ReXNet paper's 1200x800
# input. The recipe of every *_maskrcnn_fpn.py config; the backbone (type, arch, taps,
# weights) and the FPN's in_channels are the config's own.
#
# The ReXNet paper does not publish its R-CNN schedule; like the other rows of its table
# we use mmdet's 1x recipe (12 epochs, SGD lr 0.02 for batch 16, steps at epochs 8 and 11)
# at the paper's 1200x800 input.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

# registers mmbackbones.* classes; fail loudly rather than fall back to a host class
custom_imports = dict(imports=['mmbackbones.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # drop every ResNet-only key of the base config
        frozen_stages=1,  # mmdet convention for pretrained backbones: stem + stage 1
        norm_cfg=dict(type='BN', requires_grad=True),  # mmdet's R-CNN backbone norm
        norm_eval=True,  # 2 images/GPU: keep ImageNet BN statistics
    ),
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

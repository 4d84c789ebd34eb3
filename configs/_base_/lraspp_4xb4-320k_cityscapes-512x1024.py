# Recipe: LR-ASPP on Cityscapes at output stride 16 with 128 head filters, trained from
# scratch, as the MobileNetV3 paper's segmentation rows (section 6.3, Table 7). The recipe
# of every *_lraspp_cityscapes.py config; the backbone (type, arch, taps) and the head's
# in_channels are the config's own.
#
# The paper does not publish its Cityscapes schedule; we use mmseg's LR-ASPP Cityscapes
# recipe: 512x1024 crops, batch 16 (4 GPUs x 4), SGD lr 0.01, poly 0.9, wd 5e-4, SyncBN
# eps 1e-3, 320k iterations.
_base_ = [
    'mmseg::_base_/models/lraspp_m-v3-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    # the real 320k schedule: mmseg's own mobilenet_v3 configs inherit the 160k one and set
    # a legacy `runner` key that mmengine ignores, so they actually train 160k iterations
    'mmseg::_base_/schedules/schedule_320k.py',
]

# registers mmbackbones.* (backbones, and the heads, which need mmseg); fail loudly
# rather than fall back to a host class
custom_imports = dict(
    imports=['mmbackbones.models', 'mmbackbones.models.heads'], allow_failed_imports=False
)

# mmseg's recipe: SyncBN with TF's epsilon (the paper trains in TensorFlow)
norm_cfg = dict(type='SyncBN', eps=1e-3, requires_grad=True)
crop_size = (512, 1024)  # mmseg's Cityscapes training crop
model = dict(
    data_preprocessor=dict(size=crop_size),  # pad training batches to the crop size
    backbone=dict(
        _delete_=True,  # drop mmseg's MobileNetV3 (output stride 8) keys
        output_stride=16,  # paper: atrous convolution in the last stage, OS 16
        norm_cfg=norm_cfg,
    ),
    decode_head=dict(
        _delete_=True,  # drop mmseg's LRASPPHead (fixed 49x49 pooling) keys
        type='mmbackbones.AdaptiveLRASPPHead',
        in_index=(0, 1),  # (low, high): the config's two taps, at /8 and /16
        channels=128,  # paper: 128 filters in the LR-ASPP branches
        # global pooling for the gate (torchvision; works at any input size); the paper's
        # TF kernel is pool_kernel=(49, 49), pool_stride=(16, 20)
        pool_kernel=None,
        dropout_ratio=0.1,  # mmseg's LR-ASPP recipe
        # the rest as mmseg's LRASPPHead (restated after _delete_); Cityscapes' 19 classes
        num_classes=19,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    ),
)

train_dataloader = dict(batch_size=4, num_workers=4)  # x 4 GPUs = 16 (mmseg's recipe)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader

# mmseg's recipe: SGD lr 0.01 for batch 16 (4 GPUs x 4), scaled linearly for other sizes
auto_scale_lr = dict(enable=True, base_batch_size=16)

# MobileNetV3-Small + LR-ASPP on Cityscapes: the MobileNetV3 paper's segmentation row
# "V3-Small, reduced tail, 128 head filters" (section 6.3, Table 7): 68.38 mIoU val,
# 0.47M params, 2.90B multiply-adds at 1024x2048, output stride 16, trained from scratch.
#
# The paper does not publish its Cityscapes schedule; we use mmseg's LR-ASPP Cityscapes
# recipe (mmseg's own MobileNetV3-Small LR-ASPP: 62.74 from scratch at output stride 8):
# 512x1024 crops, batch 16 (4 GPUs x 4), SGD lr 0.01, poly 0.9, wd 5e-4, SyncBN eps 1e-3,
# 320k iterations.
#
#   python tools/train.py configs/mobilenetv3-small_lraspp_cityscapes.py                # Cityscapes
#   python tools/train.py configs/mobilenetv3-small_lraspp_cityscapes.py --builtin-data # CPU
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
crop_size = (512, 1024)
# MobileNetV3-Small (paper Table 2) with the segmentation "reduced tail" of the paper's
# TF code (deeplab's mobilenet_v3_small_seg): every channel count from the first stride-32
# block on is halved, *including* that block's expansion (288 -> 144). torchvision's
# reduced_tail (SSDLite, where that expansion is the C4 tap) keeps 288, which adds 0.05M
# params (0.52M instead of 0.47M). Columns: kernel, expansion, out, SE, activation, stride.
small_seg_blocks = [
    (3, 16, 16, True, 'RE', 2),
    (3, 72, 24, False, 'RE', 2),  # /8: the low-level skip
    (3, 88, 24, False, 'RE', 1),
    (5, 96, 40, True, 'HS', 2),  # /16
    (5, 240, 40, True, 'HS', 1),
    (5, 240, 40, True, 'HS', 1),
    (5, 120, 48, True, 'HS', 1),
    (5, 144, 48, True, 'HS', 1),
    (5, 144, 96, True, 'HS', 2),  # nominal /32, atrous at output stride 16; 288 halved
    (5, 576, 96, True, 'HS', 1),  # reduced_tail halves these to 288 / 48
    (5, 576, 96, True, 'HS', 1),
]
model = dict(
    data_preprocessor=dict(size=crop_size),  # pad training batches to the crop size
    backbone=dict(
        _delete_=True,  # drop mmseg's MobileNetV3 (output stride 8) keys
        type='mmbackbones.MobileNetV3',  # scoped: never resolves to mmseg's MobileNetV3
        arch=dict(blocks=small_seg_blocks, classifier_channels=1024),
        reduced_tail=True,  # paper's "RT" rows: channels after C4 halved (head conv 288)
        output_stride=16,  # paper: atrous convolution in the last stage, OS 16
        out_indices=(2, 5),  # 24@/8 (low-level skip), 288 head 1x1 conv (C5)
        norm_cfg=norm_cfg,
        # no init_cfg: the paper trains from scratch (Kaiming init, the family default)
    ),
    decode_head=dict(
        _delete_=True,  # drop mmseg's LRASPPHead (fixed 49x49 pooling) keys
        type='mmbackbones.AdaptiveLRASPPHead',
        in_channels=(24, 288),  # == backbone out_channels; checked by tools/train.py
        in_index=(0, 1),  # (low, high)
        channels=128,  # paper: 128 filters in the LR-ASPP branches
        # global pooling for the gate (torchvision; works at any input size); the paper's
        # TF kernel is pool_kernel=(49, 49), pool_stride=(16, 20)
        pool_kernel=None,
        dropout_ratio=0.1,  # mmseg's LR-ASPP recipe
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

# ReXNet x1.0 + SSDLite 320 on COCO (ReXNet paper, COCO transfer: 25.3 box AP test-dev,
# 5.7M params, 1.01 GFLOPs at 320x320). The root of the ReXNet and EfficientNet SSDLite
# configs, which share its recipe.
#
# Taps: C4 = the expansion conv of the first stride-32 block (768 channels at stride 16)
# and C5 = the final 1x1 head conv (1280 at stride 32). The paper's SSDLite follows
# MobileNetV2's (Sandler et al.: the first SSD layer on the expansion of layer 15, the
# second on the last 1280-channel layer). With these taps our model reproduces both the
# paper's params and FLOPs to 3% (in the TF API's head layout, see tests/test_configs.py);
# the last stride-16 block's output (128 channels, mmdet's MobileNetV2 convention) matches
# the params as well but gives 6% too few FLOPs.
#
# Recipe: the authors point to the ssdlite-pytorch-mobilenext recipe (8 GPUs x 32 images,
# SGD lr 0.01, SyncBN). It does not publish a schedule we could check, so the schedule
# (600 epochs = 120 x RepeatDataset 5, cosine), the augmentation and the anchors are
# mmdet's SSDLite recipe, inherited unchanged.
#
#   python tools/train.py configs/rexnet_ssdlite.py                 # COCO, paper recipe
#   python tools/train.py configs/rexnet_ssdlite.py --builtin-data  # built-in, CPU
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

# registers mmbackbones.* classes; fail loudly rather than fall back to a host class
# mmbackbones.models.heads.ssd_head: mmdet 3.3's SSDHead cannot predict (see that module)
custom_imports = dict(
    imports=['mmbackbones.models', 'mmbackbones.models.heads.ssd_head'],
    allow_failed_imports=False,
)

# SSDLite's BN (MobileNetV2/V3 papers, TF detection API): eps 1e-3 and momentum 0.03 (TF
# decay 0.97); SyncBN as in the authors' recipe (mmengine reverts it to BN on one device)
norm_cfg = dict(type='SyncBN', eps=1e-3, momentum=0.03)

model = dict(
    backbone=dict(
        _delete_=True,  # drop every MobileNetV2-only key of the base config
        type='mmbackbones.ReXNet',  # scoped: never resolves to a host class
        arch='1.0',
        # C4 and C5: tap 3 becomes the first stride-32 block's expansion conv (768@/16),
        # tap 5 is the head 1x1 conv (1280@/32)
        out_indices=(3, 5),
        feature_location='expansion',
        frozen_stages=-1,  # 32 images/GPU: the whole backbone is fine-tuned
        norm_cfg=norm_cfg,
        norm_eval=False,  # BN statistics are updated (SyncBN over 256 images)
        # ImageNet weights converted with tools/convert_weights.py (README: "Bring your
        # ImageNet weights"); the paper's SSDLite rows start from them.
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/rexnet_1.0_imagenet.pth'),
    ),
    neck=dict(
        # must equal the backbone's out_channels; checked by tools/train.py and
        # tests/test_configs.py
        in_channels=(768, 1280),
        # the two taps, then SSDLite's four extra levels (1x1 conv + depthwise 3x3/2)
        out_channels=(768, 1280, 512, 256, 256, 128),
        norm_cfg=norm_cfg,
    ),
    bbox_head=dict(
        type='mmbackbones.SSDHead',  # mmdet's SSDHead + the mmdet 3.3 predict fix
        in_channels=(768, 1280, 512, 256, 256, 128),  # = the neck's out_channels
        norm_cfg=norm_cfg,
    ),
)

# the authors' recipe: 8 GPUs x 32 images
train_dataloader = dict(batch_size=32)
optim_wrapper = dict(optimizer=dict(lr=0.01))  # for batch 256 (mmdet's: 0.015 for 192)

# lr 0.01 is for 8 GPUs x 32 images; scaled linearly for other batch sizes
auto_scale_lr = dict(enable=True, base_batch_size=256)

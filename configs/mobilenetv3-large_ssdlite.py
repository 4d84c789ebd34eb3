# MobileNetV3-Large + SSDLite 320 on COCO (MobileNetV3 paper: 22.0 mAP test-dev, 4.97M
# params, 0.62 GMAdds at 320x320). The root of the MobileNetV3 SSDLite configs.
#
# Taps (the paper's detection experiments): C4 = the expansion layer of bottleneck 13,
# the first stride-32 block (672 channels at stride 16), and C5 = the layer just before
# pooling, the 1x1 head conv (960 at stride 32).
#
# Recipe: the paper trains with the TF Object Detection API and publishes no schedule, so
# the recipe is mmdet's SSDLite recipe (8 GPUs x 24 images, SGD lr 0.015, cosine over 600
# epochs = 120 x RepeatDataset 5), inherited unchanged; its BN settings (eps 1e-3,
# momentum 0.03) are the TF API's.
#
#   python tools/train.py configs/mobilenetv3-large_ssdlite.py                 # COCO
#   python tools/train.py configs/mobilenetv3-large_ssdlite.py --builtin-data  # built-in, CPU
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'

# registers mmbackbones.* classes; fail loudly rather than fall back to a host class
# mmbackbones.models.heads.ssd_head: mmdet 3.3's SSDHead cannot predict (see that module)
custom_imports = dict(
    imports=['mmbackbones.models', 'mmbackbones.models.heads.ssd_head'],
    allow_failed_imports=False,
)

model = dict(
    backbone=dict(
        _delete_=True,  # drop every MobileNetV2-only key of the base config
        type='mmbackbones.MobileNetV3',  # scoped: mmseg has its own MobileNetV3
        arch='large',
        reduced_tail=False,  # the full tail; mobilenetv3-large-rt_ssdlite.py halves it
        # C4 and C5: tap 3 becomes bottleneck 13's expansion conv (672@/16), tap 5 is the
        # 1x1 conv before pooling (960@/32)
        out_indices=(3, 5),
        feature_location='expansion',
        frozen_stages=-1,  # 24 images/GPU: the whole backbone is fine-tuned
        # SSDLite's BN (TF detection API): eps 1e-3, momentum 0.03 (TF decay 0.97)
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.03),
        norm_eval=False,  # BN statistics are updated
        # ImageNet weights converted with tools/convert_weights.py (torchvision/timm)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mobilenetv3_large_imagenet.pth'),
    ),
    neck=dict(
        # must equal the backbone's out_channels; checked by tools/train.py and
        # tests/test_configs.py
        in_channels=(672, 960),
        # the two taps, then SSDLite's four extra levels (1x1 conv + depthwise 3x3/2)
        out_channels=(672, 960, 512, 256, 256, 128),
    ),
    bbox_head=dict(
        type='mmbackbones.SSDHead',  # mmdet's SSDHead + the mmdet 3.3 predict fix
        in_channels=(672, 960, 512, 256, 256, 128),  # = the neck's out_channels
    ),
)

# lr 0.015 is for 8 GPUs x 24 images; scaled linearly for other batch sizes
auto_scale_lr = dict(enable=True, base_batch_size=192)

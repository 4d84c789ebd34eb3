# Recipe: SSDLite 320 on COCO, mmdet's SSDLite recipe (8 GPUs x 24 images, SGD lr 0.015,
# cosine over 600 epochs = 120 x RepeatDataset 5), inherited unchanged; its BN settings
# (eps 1e-3, momentum 0.03) are the TF Object Detection API's. The recipe of the
# MobileNetV3 SSDLite configs; ssdlite_syncbn_8xb32-600e_coco-320.py (the ReXNet paper's
# variant) inherits it. The backbone (type, arch, taps, weights) and the neck / head
# in_channels are the config's own: the neck takes the two taps (C4, C5), then adds
# SSDLite's four extra levels (1x1 conv + depthwise 3x3/2) of 512, 256, 256, 128 channels.
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
        frozen_stages=-1,  # 24 images/GPU: the whole backbone is fine-tuned
        # SSDLite's BN (TF detection API): eps 1e-3, momentum 0.03 (TF decay 0.97)
        norm_cfg=dict(type='BN', eps=1e-3, momentum=0.03),
        norm_eval=False,  # BN statistics are updated
    ),
    bbox_head=dict(type='mmbackbones.SSDHead'),  # mmdet's SSDHead + the mmdet 3.3 predict fix
)

# lr 0.015 is for 8 GPUs x 24 images; scaled linearly for other batch sizes
auto_scale_lr = dict(enable=True, base_batch_size=192)

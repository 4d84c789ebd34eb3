# MobileNetV3-Large + SSDLite 320 on COCO (MobileNetV3 paper: 22.0 mAP test-dev, 4.97M
# params, 0.62 GMAdds at 320x320). The root of the MobileNetV3 SSDLite configs.
#
# Taps (the paper's detection experiments): C4 = the expansion layer of bottleneck 13,
# the first stride-32 block (672 channels at stride 16), and C5 = the layer just before
# pooling, the 1x1 head conv (960 at stride 32).
#
# Recipe: the paper trains with the TF Object Detection API and publishes no schedule, so
# the recipe is mmdet's SSDLite recipe, _base_/ssdlite_8xb24-600e_coco-320.py (8 GPUs x 24
# images, SGD lr 0.015, cosine over 600 epochs, the TF API's BN settings).
#
#   python tools/train.py configs/mobilenetv3-large_ssdlite.py                 # COCO
#   python tools/train.py configs/mobilenetv3-large_ssdlite.py --builtin-data  # built-in, CPU
_base_ = './_base_/ssdlite_8xb24-600e_coco-320.py'

model = dict(
    backbone=dict(
        type='mmbackbones.MobileNetV3',  # scoped: mmseg has its own MobileNetV3
        arch='large',
        reduced_tail=False,  # the full tail; mobilenetv3-large-rt_ssdlite.py halves it
        # C4 and C5: tap 3 becomes bottleneck 13's expansion conv (672@/16), tap 5 is the
        # 1x1 conv before pooling (960@/32)
        out_indices=(3, 5),
        feature_location='expansion',
        # torchvision's ImageNet weights (those of torchvision's own SSDLite), fetched into
        # TORCH_HOME and converted on load (docs/weights.md); trained with BN eps 1e-3, the
        # recipe's, on RGB input with ImageNet mean/std, the recipe's data_preprocessor
        init_cfg=dict(type='Pretrained', checkpoint='tv://mobilenet_v3_large.imagenet1k_v1'),
    ),
    # in_channels must equal the backbone's out_channels; checked by tools/train.py and
    # tests/test_configs.py. out_channels: the two taps, then the recipe's four extra levels
    neck=dict(in_channels=(672, 960), out_channels=(672, 960, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(672, 960, 512, 256, 256, 128)),  # = the neck's out_channels
)

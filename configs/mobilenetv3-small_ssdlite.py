# MobileNetV3-Small + SSDLite 320 on COCO (MobileNetV3 paper: 16.0 mAP test-dev, 2.49M
# params, 0.21 GMAdds at 320x320).
#
# Taps (the paper's detection experiments): C4 = the expansion layer of bottleneck 9,
# the first stride-32 block (288 channels at stride 16), and C5 = the 1x1 conv before
# pooling (576 at stride 32). Recipe: mobilenetv3-large_ssdlite.py.
#
#   python tools/train.py configs/mobilenetv3-small_ssdlite.py --builtin-data  # CPU
_base_ = './mobilenetv3-large_ssdlite.py'

model = dict(
    backbone=dict(
        arch='small',
        # torchvision's ImageNet weights (BN eps 1e-3, as Large's), converted on load
        init_cfg=dict(type='Pretrained', checkpoint='tv://mobilenet_v3_small.imagenet1k_v1'),
    ),
    # must equal MobileNetV3('small', out_indices=(3, 5), feature_location='expansion')
    # .out_channels: C4 288@/16, C5 576@/32
    neck=dict(in_channels=(288, 576), out_channels=(288, 576, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(288, 576, 512, 256, 256, 128)),  # = the neck's out_channels
)

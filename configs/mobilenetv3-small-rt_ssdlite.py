# MobileNetV3-Small with reduced tail ("†") + SSDLite 320 on COCO (MobileNetV3 paper:
# 16.1 mAP test-dev, 1.77M params, 0.16 GMAdds at 320x320).
#
# The reduced tail halves every channel count between C4 and C5 (the paper's "†" rows). C4
# (bottleneck 9's expansion, 288@/16) keeps its width, C5 (the 1x1 conv before pooling)
# has 288 channels. Recipe: mobilenetv3-large_ssdlite.py.
#
#   python tools/train.py configs/mobilenetv3-small-rt_ssdlite.py --builtin-data  # CPU
_base_ = './mobilenetv3-large_ssdlite.py'

model = dict(
    backbone=dict(
        arch='small',
        reduced_tail=True,  # halve the channels between C4 and C5 (torchvision's flag)
        # No public ImageNet weights exist for the reduced tail (torchvision uses it only
        # without a pretrained backbone): train them with the classifier of
        # MobileNetV3('small', reduced_tail=True), or train from scratch with
        # --cfg-options model.backbone.init_cfg=None. The file is the converter's default
        # name for that backbone (tools/convert_weights.py SRC --source torchvision
        # --backbone MobileNetV3 --arch small --backbone-args reduced_tail=True writes it)
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/mobilenetv3-small-rt_imagenet.pth'
        ),
    ),
    # must equal MobileNetV3('small', reduced_tail=True, out_indices=(3, 5),
    # feature_location='expansion').out_channels: C4 288@/16, C5 288@/32
    neck=dict(in_channels=(288, 288), out_channels=(288, 288, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(288, 288, 512, 256, 256, 128)),  # = the neck's out_channels
)

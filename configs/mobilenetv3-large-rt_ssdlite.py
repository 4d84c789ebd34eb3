# MobileNetV3-Large with reduced tail ("†") + SSDLite 320 on COCO (MobileNetV3 paper:
# 22.0 mAP test-dev, 3.22M params, 0.51 GMAdds at 320x320).
#
# The reduced tail halves every channel count between C4 and C5 (the paper's "†" rows):
# the same mAP at lower cost. C4 (bottleneck 13's expansion, 672@/16) keeps its width, C5
# (the 1x1 conv before pooling) has 480 channels. Recipe: mobilenetv3-large_ssdlite.py.
#
#   python tools/train.py configs/mobilenetv3-large-rt_ssdlite.py --builtin-data  # CPU
_base_ = './mobilenetv3-large_ssdlite.py'

model = dict(
    backbone=dict(
        reduced_tail=True,  # halve the channels between C4 and C5 (torchvision's flag)
        # No public ImageNet weights exist for the reduced tail (torchvision uses it only
        # without a pretrained backbone): train them with the classifier of
        # MobileNetV3('large', reduced_tail=True), or train from scratch with
        # --cfg-options model.backbone.init_cfg=None. The file is the converter's default
        # name for that backbone (tools/convert_weights.py SRC --source torchvision
        # --backbone MobileNetV3 --arch large --backbone-args reduced_tail=True writes it)
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/mobilenetv3-large-rt_imagenet.pth'
        ),
    ),
    # must equal MobileNetV3('large', reduced_tail=True, out_indices=(3, 5),
    # feature_location='expansion').out_channels: C4 672@/16, C5 480@/32
    neck=dict(in_channels=(672, 480), out_channels=(672, 480, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(672, 480, 512, 256, 256, 128)),  # = the neck's out_channels
)

# RegNetX-3.2GF + FPN + Mask R-CNN on COCO (mmdet model zoo, 1x at 1333x800: 40.3 box AP
# / 36.6 mask AP val).
#
# Recipe: _base_/mask-rcnn_fpn_1x_coco-1200x800.py, as for the ReXNet rows (mmdet's 1x
# recipe at the ReXNet paper's 1200x800 input), plus the two settings of mmdet's
# RegNet configs below.
#
#   python tools/train.py configs/regnetx-3.2gf_maskrcnn_fpn.py                 # COCO
#   python tools/train.py configs/regnetx-3.2gf_maskrcnn_fpn.py --builtin-data  # CPU
_base_ = './_base_/mask-rcnn_fpn_1x_coco-1200x800.py'

model = dict(
    # pycls trained the RegNet ImageNet weights on BGR images with this mean/std, so the
    # converted weights expect them (mmdet's RegNet configs do the same)
    data_preprocessor=dict(
        mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], bgr_to_rgb=False
    ),
    backbone=dict(
        type='mmbackbones.RegNet',  # scoped: mmdet has its own RegNet
        arch='regnetx_3.2gf',  # w0=88, wa=26.31, wm=2.25, group width 48, depth 25
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 for FPN P2-P5
        # the pycls model zoo's ImageNet weights (BGR input: the data_preprocessor above;
        # BN eps 1e-5), fetched into TORCH_HOME and converted on load (docs/weights.md)
        init_cfg=dict(type='Pretrained', checkpoint='pycls://RegNetX-3.2GF'),
    ),
    # must equal RegNet('regnetx_3.2gf').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[96, 192, 432, 1008]),
)

# weight decay 5e-5 instead of 1e-4: RegNet's own recipe, kept by mmdet's RegNet configs
optim_wrapper = dict(optimizer=dict(weight_decay=5e-5))

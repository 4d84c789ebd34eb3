# RegNetX-4.0GF + FPN + Mask R-CNN on COCO (mmdet model zoo, 1x at 1333x800: 41.5 box AP
# / 37.4 mask AP val).
#
# regnetx-3.2gf_maskrcnn_fpn.py (mmdet's 1x recipe at 1200x800, pycls's BGR input and
# weight decay 5e-5) with the 4.0GF backbone.
#
#   python tools/train.py configs/regnetx-4.0gf_maskrcnn_fpn.py                 # COCO
#   python tools/train.py configs/regnetx-4.0gf_maskrcnn_fpn.py --builtin-data  # CPU
_base_ = './regnetx-3.2gf_maskrcnn_fpn.py'

model = dict(
    backbone=dict(
        arch='regnetx_4.0gf',  # w0=96, wa=38.65, wm=2.43, group width 40, depth 23
        # the pycls model zoo's ImageNet weights (BGR input: the data_preprocessor above;
        # BN eps 1e-5), fetched into TORCH_HOME and converted on load (docs/weights.md)
        init_cfg=dict(type='Pretrained', checkpoint='pycls://RegNetX-4.0GF'),
    ),
    # must equal RegNet('regnetx_4.0gf').out_channels for out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[80, 240, 560, 1360]),
)

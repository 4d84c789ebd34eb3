"""ReXNet against the authors' published figures and the reference implementation (timm)."""

from __future__ import annotations

import pytest
import torch
from helpers import classifier, nparams, timm_model, within_published

from mmbackbones.complexity import measure
from mmbackbones.models import ReXNet

# ReXNet paper / clovaai README, ImageNet 224x224 with the classifier (REFERENCE.md):
# arch: (params, multiply-adds), as published (2-3 significant digits).
# Kept as printed: the number of decimals says how precise the figure is.
PUBLISHED = {
    '0.9': ('4.1M', '0.35B'),
    '1.0': ('4.8M', '0.40B'),
    '1.3': ('7.6M', '0.66B'),
    '1.5': ('9.7M', '0.88B'),
    '2.0': ('16M', '1.5B'),
    'lite-1.0': ('4.7M', '0.41B'),
    'lite-1.3': ('6.8M', '0.65B'),
    'lite-1.5': ('8.3M', '0.84B'),
    'lite-2.0': ('13M', '1.5B'),
}


@pytest.mark.parametrize('arch', sorted(PUBLISHED))
def test_published_params_and_flops(arch: str) -> None:
    cx = measure(classifier('ReXNet', arch), (224, 224))
    params, flops = PUBLISHED[arch]
    assert within_published(cx.params, params), (arch, cx.params, params)
    assert within_published(cx.flops, flops), (arch, cx.flops, flops)


def test_within_published_rule() -> None:
    assert within_published(16.4e6, '16M') and not within_published(16.6e6, '16M')
    assert within_published(4.84e6, '4.8M') and not within_published(4.86e6, '4.8M')
    assert within_published(0.403e9, '0.40B') and not within_published(0.41e9, '0.40B')
    assert within_published(5.33e6, '5.3M') and not within_published(5.36e6, '5.3M')


def test_taps_x10_match_paper() -> None:
    # REFERENCE.md: 16@/2, 38@/4, 61@/8, 128@/16, 185@/32, and 1280 after the head conv.
    m = ReXNet('1.0', out_indices=(0, 1, 2, 3, 4, 5))
    got = [(f['num_chs'], f['reduction']) for f in m.feature_info]
    assert got == [(16, 2), (38, 4), (61, 8), (128, 16), (185, 32), (1280, 32)]
    assert ReXNet('1.0').out_channels == [38, 61, 128, 185]
    assert ReXNet('1.0').out_strides == [4, 8, 16, 32]


def test_width_below_one_keeps_stem() -> None:
    # authors' rule: for w < 1 the stem stays 32 and block 0 outputs 16
    m = ReXNet('0.9', out_indices=(0,))
    assert m.layers.stem.conv.out_channels == 32
    assert m.feature_info[0]['num_chs'] == 16


def test_block_structure_matches_authors() -> None:
    m = ReXNet('1.0', out_indices=(4,))
    b0, b1, b5 = m.layers.b0, m.layers.b1, m.layers.b5
    assert b0.expand is None and b0.se is None  # t = 1, no SE in stage 1
    assert isinstance(b1.expand.act, torch.nn.SiLU)  # SiLU only after the expansion
    assert not hasattr(b1.dw, 'act')  # dw -> BN, no activation
    assert isinstance(b1.post_se_act, torch.nn.ReLU6)
    # SE from stage 3 on: dw channels // 12 with BN (block 5: in 61 -> dw 366 -> 30)
    assert b5.se.fc1.out_channels == 366 // 12 and isinstance(b5.se.bn, torch.nn.BatchNorm2d)
    # partial residual where stride 1 and in <= out; none on strided blocks
    assert m.layers.b2.shortcut == 'partial' and b1.shortcut == 'none'


@pytest.mark.parametrize(
    'output_stride,block,c_in,dilation',
    # b2: 27 -> 38 channels, stride 1 (stage 2); b12: 140 -> 151, the second block of the
    # last stage, dilated 2 at output stride 16; b6 (stage 4, /16) dilated 2 at 8
    [(32, 'b2', 27, 1), (16, 'b12', 140, 2), (8, 'b6', 72, 2)],
)
def test_partial_residual_hand_computed(
    output_stride: int, block: str, c_in: int, dilation: int
) -> None:
    m = ReXNet('1.0', out_indices=(4,), output_stride=output_stride).eval()
    blk = getattr(m.layers, block)
    assert blk.dw.conv.dilation == (dilation, dilation)
    x = torch.randn(1, c_in, 8, 8)
    with torch.no_grad():
        body = blk.dw(blk.expand(x))
        body = blk.project(blk.post_se_act(body if blk.se is None else blk.se(body)))
        expected = body.clone()
        expected[:, :c_in] += x
        torch.testing.assert_close(blk(x), expected)


def test_lite_matches_authors() -> None:
    m = ReXNet('lite-1.0', out_indices=(0, 1, 2, 3, 4, 5))
    assert all(f['num_chs'] % 8 == 0 for f in m.feature_info)
    assert not any(isinstance(x, torch.nn.SiLU) for x in m.modules())
    assert all(b.se is None for n, b in m.layers.named_children() if n.startswith('b'))
    assert m.feature_info[-1]['num_chs'] == 1280


@pytest.mark.parametrize(
    'arch,timm_name',
    [('1.0', 'rexnet_100'), ('1.3', 'rexnet_130'), ('1.5', 'rexnet_150'), ('2.0', 'rexnet_200')],
)
def test_parity_with_timm(arch: str, timm_name: str) -> None:
    ref = timm_model(timm_name, features_only=True)
    ours = ReXNet(arch, out_indices=(0, 1, 2, 3, 4))
    assert [f['num_chs'] for f in ours.feature_info[:5]] == ref.feature_info.channels()
    assert [f['reduction'] for f in ours.feature_info[:5]] == ref.feature_info.reduction()
    full = timm_model(timm_name, device='meta')
    assert nparams(classifier('ReXNet', arch, device='meta')) == nparams(full)


def test_custom_arch_dict_and_channels() -> None:
    chans = [16 + 8 * i for i in range(16)]
    m = ReXNet(dict(channels=chans), out_indices=(0, 1, 2, 3, 4))
    assert [f['num_chs'] for f in m.feature_info[:5]] == [16, 32, 48, 96, 136]
    with pytest.raises(ValueError, match='16 blocks'):
        ReXNet(dict(channels=chans[:-1]))


@pytest.mark.parametrize(
    'arch,match',
    [
        ('bogus', "unknown arch 'bogus'.*valid presets"),
        (dict(widthmult=1.0), 'unknown arch keys'),
        (dict(mid_channels=[None] * 15), 'mid_channels'),
    ],
)
def test_bad_arch_raises(arch, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReXNet(arch)

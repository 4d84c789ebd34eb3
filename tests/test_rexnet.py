"""ReXNet against the authors' published figures and the reference implementation (timm)."""

from __future__ import annotations

import pytest
import torch

from mmbackbones.complexity import measure
from mmbackbones.models import ImageClassifier, ReXNet

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


def _within_published(ours: float, published: str) -> bool:
    """Within 1% of a published figure such as '4.8M' or '0.40B', or within its printed
    rounding (half a unit of the last printed digit: '16M' covers 15.5-16.5M), whichever
    is looser."""
    number, unit = published[:-1], published[-1]
    scale = {'K': 1e3, 'M': 1e6, 'B': 1e9, 'G': 1e9}[unit]
    decimals = len(number.split('.')[1]) if '.' in number else 0
    value = float(number) * scale
    half_unit = 0.5 * 10 ** (-decimals) * scale
    return abs(ours - value) <= max(0.01 * value, half_unit)


@pytest.mark.parametrize('arch', sorted(PUBLISHED))
def test_published_params_and_flops(arch: str) -> None:
    model = ImageClassifier(dict(type='ReXNet', arch=arch), num_classes=1000)
    cx = measure(model, (224, 224))
    params, flops = PUBLISHED[arch]
    assert _within_published(cx.params, params), (arch, cx.params, params)
    assert _within_published(cx.flops, flops), (arch, cx.flops, flops)


def test_within_published_rule() -> None:
    assert _within_published(16.4e6, '16M') and not _within_published(16.6e6, '16M')
    assert _within_published(4.84e6, '4.8M') and not _within_published(4.86e6, '4.8M')
    assert _within_published(0.403e9, '0.40B') and not _within_published(0.41e9, '0.40B')
    assert _within_published(5.33e6, '5.3M') and not _within_published(5.36e6, '5.3M')


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


def test_partial_residual_hand_computed() -> None:
    m = ReXNet('1.0', out_indices=(1,)).eval()
    blk = m.layers.b2  # 27 -> 38 channels, stride 1
    x = torch.randn(1, 27, 8, 8)
    body = blk.project(blk.post_se_act(blk.dw(blk.expand(x))))
    expected = body.clone()
    expected[:, :27] += x
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
    timm = pytest.importorskip('timm')
    ref = timm.create_model(timm_name, pretrained=False, features_only=True)
    ours = ReXNet(arch, out_indices=(0, 1, 2, 3, 4))
    assert [f['num_chs'] for f in ours.feature_info[:5]] == ref.feature_info.channels()
    assert [f['reduction'] for f in ours.feature_info[:5]] == ref.feature_info.reduction()
    full = timm.create_model(timm_name, pretrained=False)
    mine = ImageClassifier(dict(type='ReXNet', arch=arch), num_classes=1000)
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in full.parameters())


def test_custom_arch_dict_and_channels() -> None:
    chans = [16 + 8 * i for i in range(16)]
    m = ReXNet(dict(channels=chans), out_indices=(0, 1, 2, 3, 4))
    assert [f['num_chs'] for f in m.feature_info[:5]] == [16, 32, 48, 96, 136]
    with pytest.raises(ValueError, match='16 blocks'):
        ReXNet(dict(channels=chans[:-1]))

"""AnyNet / RegNet / ResNeXt against published figures and reference implementations.

References (never numbers our own code produced): REFERENCE.md's exact pycls complexity
table, pycls's MODEL_ZOO.md, torchvision's weight metadata, and torchvision / timm / mmdet
models built with random weights. The backbone contract (stages, taps, frozen_stages,
with_cp, output_stride, ...) is checked in test_contract.py.
"""

from __future__ import annotations

import random
import re
import time

import pytest
import torch
from helpers import (
    classifier,
    nparams,
    on_meta,
    randomize_bn,
    timm_model,
    torchvision_model,
    within_published,
)

from mmbackbones.complexity import measure
from mmbackbones.models import ImageClassifier
from mmbackbones.models.backbones.anynet import AnyNet, anynet_complexity
from mmbackbones.models.backbones.regnet import RegNet, adjust_block_compatibility, generate_regnet
from mmbackbones.models.backbones.resnext import ResNeXt

# ------------------------------------------------------------------ published figures
# REFERENCE.md, "Exact complexity" (pycls convention at 224: flops, params, acts).
EXACT_PYCLS = {
    (RegNet, 'regnetx_400mf'): (397_678_568, 5_157_512, 3_143_272),
    (RegNet, 'regnety_400mf'): (401_849_056, 4_344_144, 3_892_496),
    (RegNet, 'regnetx_3.2gf'): (3_176_622_952, 15_296_552, 11_367_432),
    (ResNeXt, '50_32x4d'): (4_230_480_872, 25_028_904, 14_602_216),
}

# pycls MODEL_ZOO.md (dds_baselines): flops (B), params (M), acts (M), at 224.
PYCLS_ZOO = {
    'regnetx_400mf': (0.4, 5.2, 3.1),
    'regnetx_800mf': (0.8, 7.3, 5.1),
    'regnetx_1.6gf': (1.6, 9.2, 7.9),
    'regnetx_3.2gf': (3.2, 15.3, 11.4),
    'regnetx_4.0gf': (4.0, 22.1, 12.2),
    'regnetx_6.4gf': (6.5, 26.2, 16.4),
    'regnetx_8.0gf': (8.0, 39.6, 14.1),
    'regnetx_12gf': (12.1, 46.1, 21.4),
    'regnety_400mf': (0.4, 4.3, 3.9),
    'regnety_800mf': (0.8, 6.3, 5.2),
    'regnety_1.6gf': (1.6, 11.2, 8.0),
    'regnety_3.2gf': (3.2, 19.4, 11.3),
    'regnety_4.0gf': (4.0, 20.6, 12.3),
    'regnety_6.4gf': (6.4, 30.6, 16.4),
    'regnety_8.0gf': (8.0, 39.2, 18.0),
    'regnety_12gf': (12.1, 51.8, 21.4),
}

# ResNeXt: torchvision weight metadata (exact params, GFLOPs) and pycls MODEL_ZOO.md.
RESNEXT_PUBLISHED = {
    '50_32x4d': (25_028_904, 4.23),  # torchvision resnext50_32x4d
    '101_32x8d': (88_791_336, 16.41),  # torchvision resnext101_32x8d
    '101_64x4d': (83_455_272, 15.46),  # torchvision resnext101_64x4d
    '101_32x4d': (44.2e6, 8.0),  # pycls ResNeXt-101
    '152_32x4d': (60.0e6, 11.7),  # pycls ResNeXt-152
}

# torchvision's RegNet presets (its names, same generator parameters as ours).
TORCHVISION_REGNET = {
    'regnetx_400mf': 'regnet_x_400mf',
    'regnetx_800mf': 'regnet_x_800mf',
    'regnetx_1.6gf': 'regnet_x_1_6gf',
    'regnetx_3.2gf': 'regnet_x_3_2gf',
    'regnetx_8.0gf': 'regnet_x_8gf',
    'regnety_400mf': 'regnet_y_400mf',
    'regnety_800mf': 'regnet_y_800mf',
    'regnety_1.6gf': 'regnet_y_1_6gf',
    'regnety_3.2gf': 'regnet_y_3_2gf',
    'regnety_8.0gf': 'regnet_y_8gf',
}
# Our names -> timm's (timm keeps pycls's rounding; its tables are pycls's configs).
TIMM_REGNET = {
    f'regnet{xy}_{ours}': f'regnet{xy}_{timm}'
    for xy in 'xy'
    for ours, timm in [
        ('400mf', '004'),
        ('800mf', '008'),
        ('1.6gf', '016'),
        ('3.2gf', '032'),
        ('4.0gf', '040'),
        ('6.4gf', '064'),
        ('8.0gf', '080'),
        ('12gf', '120'),
    ]
}


def _pycls_bias_flops(a: dict, num_classes: int) -> int:
    """What pycls adds to the multiply-adds: w_out per biased layer (classifier, SE)."""
    extra, w_in = num_classes, a['stem_w']
    for d, w, b, r in zip(a['depths'], a['widths'], a['bot_muls'], a['se_ratio']):
        for j in range(d):
            if r:  # SE: w_b -> w_se -> w_b, both biased
                extra += round((w_in if j == 0 else w) * r) + round(w * b)
        w_in = w
    return extra


# ------------------------------------------------------ exact and published complexity
@pytest.mark.parametrize('cls,arch', list(EXACT_PYCLS))
def test_exact_pycls_complexity(cls, arch: str) -> None:
    flops, params, acts = EXACT_PYCLS[(cls, arch)]
    cx = cls.complexity(arch)
    assert (cx.flops, cx.params, cx.acts) == (flops, params, acts)
    # and the counted model agrees: same params; FLOPs/acts differ exactly by what pycls
    # counts and measure() does not (biases of SE convs and fc, the max-pool output)
    model = ImageClassifier(dict(type=cls.__name__, arch=arch), num_classes=1000)
    got = measure(model, (224, 224))
    assert got.params == params
    counted = cls.complexity(arch, convention='counted')
    assert (got.flops, got.acts) == (counted.flops, counted.acts)
    a = cls.to_anynet(arch)
    assert flops - got.flops == _pycls_bias_flops(a, 1000)
    pool_acts = 64 * 56 * 56 if a['stem_type'] == 'resnet' else 0
    assert acts - got.acts == pool_acts


@pytest.mark.parametrize('arch', sorted(PYCLS_ZOO))
def test_regnet_presets_match_pycls_model_zoo(arch: str) -> None:
    flops, params, acts = PYCLS_ZOO[arch]
    cx = RegNet.complexity(arch)
    assert within_published(cx.flops, flops * 1e9), (arch, cx.flops, flops)
    assert within_published(cx.params, params * 1e6), (arch, cx.params, params)
    assert within_published(cx.acts, acts * 1e6), (arch, cx.acts, acts)
    # the analytic count is the built model's count
    model = classifier('RegNet', arch, device='meta')
    assert nparams(model) == cx.params


@pytest.mark.parametrize('arch', sorted(RESNEXT_PUBLISHED))
def test_resnext_presets_match_published(arch: str) -> None:
    params, gflops = RESNEXT_PUBLISHED[arch]
    model = classifier('ResNeXt', arch, device='meta')
    n = nparams(model)
    cx = ResNeXt.complexity(arch, convention='counted')
    assert n == cx.params
    if isinstance(params, int):
        assert n == params
    else:
        assert within_published(n, params), (arch, n, params)
    assert within_published(cx.flops, gflops * 1e9), (arch, cx.flops, gflops)


# pycls MODEL_ZOO.md ResNeXt acts (M). That table predates pycls counting the max-pool
# output (REFERENCE.md's 14,602,216 for ResNeXt-50 includes it), so it matches 'counted'.
RESNEXT_ZOO_ACTS = {'50_32x4d': 14.4, '101_32x4d': 21.2, '152_32x4d': 29.7}


@pytest.mark.parametrize('arch', sorted(RESNEXT_ZOO_ACTS))
def test_resnext_acts_match_pycls_model_zoo(arch: str) -> None:
    cx = ResNeXt.complexity(arch, convention='counted')
    assert within_published(cx.acts, RESNEXT_ZOO_ACTS[arch] * 1e6), (arch, cx.acts)


@pytest.mark.parametrize(
    'cls,arch,timm_name',
    [(RegNet, a, t) for a, t in TIMM_REGNET.items()]
    + [(ResNeXt, a, f'resnext{a}') for a in ('50_32x4d', '101_32x4d', '101_64x4d', '101_32x8d')],
)
def test_classifier_params_equal_timm(cls, arch: str, timm_name: str) -> None:
    ref = timm_model(timm_name, device='meta')
    ours = classifier(cls.__name__, arch, device='meta')
    assert nparams(ours) == nparams(ref) == cls.complexity(arch).params


def test_within_published_rule() -> None:
    assert within_published(0.44e9, 0.4e9) and not within_published(0.46e9, 0.4e9)
    assert within_published(15.4e6, 15.3e6) and not within_published(15.5e6, 15.3e6)


# ------------------------------------------------------------- RegNet generator / LCM
def test_generate_regnet_hand_computed() -> None:
    # RegNetX-400MF: u_j = 24 + 24.48 j, snapped to 24 * 2.54^k (k = 0..3: 24, 60.96,
    # 154.8, 393.3), quantized to 8: 24, 64 (7.62 -> 8), 152 (19.35 -> 19), 392 (49.2)
    assert generate_regnet(24, 24.48, 2.54, 22) == ([24, 64, 152, 392], [1, 2, 7, 12])
    # then to multiples of group width 16, rounding half-to-even as pycls: 24 / 16 = 1.5
    # -> 32, 152 / 16 = 9.5 -> 160, 392 / 16 = 24.5 -> 384 (torchvision rounds up: 400)
    assert RegNet.to_anynet('regnetx_400mf')['widths'] == [32, 64, 160, 384]
    with pytest.raises(ValueError, match='w0 % q == 0'):
        generate_regnet(20, 24.48, 2.54, 22)
    with pytest.raises(ValueError, match='wm > 1'):
        generate_regnet(24, 24.48, 1.0, 22)


def test_lcm_rounding_hand_computed() -> None:
    # w=56, b=4, g=6: v = 224 must be a multiple of lcm(6, 4) = 12 -> 228 (19 * 12),
    # w = 228 / 4 = 57. Rounding to a multiple of g alone (mmdet) gives v = 222 ->
    # w = int(222 / 4) = 55 -> round(55 * 4) = 220, not divisible by 6.
    assert adjust_block_compatibility([56], [4.0], [6]) == ([57], [4.0], [6])
    naive_w = int(round(224 / 6) * 6 / 4)
    assert round(naive_w * 4) % 6 != 0
    # w=100, b=2, g=3: lcm 6, 200 -> 198, w = 99 (99 * 2 = 198 = 66 * 3)
    assert adjust_block_compatibility([100], [2.0], [3]) == ([99], [2.0], [3])
    # b <= 1: plain rounding to the group width; the group width is capped at w * b
    assert adjust_block_compatibility([392, 20], [1.0, 0.5], [16, 16]) == (
        [384, 20],
        [1.0, 0.5],
        [16, 10],
    )
    # a RegNet with bot_mul > 1 therefore builds, with valid groups everywhere
    arch = dict(w0=24, wa=20.0, wm=2.5, depth=10, group_w=6, bot_mul=4.0)
    a = RegNet.to_anynet(arch)
    assert all(round(w * 4.0) % 6 == 0 for w in a['widths'])
    m = RegNet(arch, out_indices=(-1,)).eval()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 64, 64))[0].shape[1] == a['widths'][-1]


@pytest.mark.parametrize('ours', sorted(TORCHVISION_REGNET))
def test_generator_matches_torchvision(ours: str) -> None:
    tv = pytest.importorskip('torchvision.models.regnet')

    p = RegNet.arch_settings[ours]
    # group_width 8 (= the quantum) makes torchvision's compatibility step the identity,
    # exposing its raw generator output
    raw = tv.BlockParams.from_init_params(p['depth'], p['w0'], p['wa'], p['wm'], 8)
    assert generate_regnet(p['w0'], p['wa'], p['wm'], p['depth']) == (raw.widths, raw.depths)
    real = tv.BlockParams.from_init_params(
        p['depth'], p['w0'], p['wa'], p['wm'], p['group_w'], se_ratio=p['se_ratio'] or None
    )
    a = RegNet.to_anynet(ours)
    assert a['depths'] == real.depths and a['group_ws'] == real.group_widths
    # torchvision rounds bottleneck widths with make_divisible (ties up, never -10%)
    # where pycls rounds half-to-even; they disagree on exactly these presets
    if ours in ('regnetx_400mf', 'regnety_800mf', 'regnety_8.0gf'):
        assert a['widths'] != real.widths
    else:
        assert a['widths'] == real.widths


@pytest.mark.parametrize('ours', sorted(TIMM_REGNET))
def test_generator_and_table_match_timm(ours: str) -> None:
    timm_regnet = pytest.importorskip('timm.models.regnet')
    cfg = timm_regnet.model_cfgs[TIMM_REGNET[ours]]
    p = RegNet.arch_settings[ours]
    assert (cfg.w0, cfg.wa, cfg.wm, cfg.group_size, cfg.depth) == (
        p['w0'],
        p['wa'],
        p['wm'],
        p['group_w'],
        p['depth'],
    )
    assert cfg.se_ratio == p.get('se_ratio', 0.0)
    block_ws = timm_regnet.generate_regnet(cfg.wa, cfg.w0, cfg.wm, cfg.depth, cfg.group_size)[0]
    stage_ws = sorted(set(block_ws))
    stage_ds = [block_ws.count(w) for w in stage_ws]
    assert generate_regnet(p['w0'], p['wa'], p['wm'], p['depth']) == (stage_ws, stage_ds)
    n = len(stage_ws)
    widths, group_ws = timm_regnet.adjust_widths_groups_comp(
        stage_ws, [cfg.bottle_ratio] * n, [cfg.group_size] * n, min_ratio=cfg.group_min_ratio
    )
    a = RegNet.to_anynet(ours)
    assert (a['widths'], a['depths'], a['group_ws']) == (widths, stage_ds, group_ws)


def test_generator_matches_mmdet() -> None:
    mmdet_backbones = pytest.importorskip('mmdet.models.backbones')
    ref = mmdet_backbones.RegNet
    for name, p in ref.arch_settings.items():
        assert name in RegNet.arch_settings, name
        ours = RegNet.arch_settings[name]
        assert {k: p[k] for k in ('w0', 'wa', 'wm', 'group_w', 'depth')} == {
            k: ours[k] for k in ('w0', 'wa', 'wm', 'group_w', 'depth')
        }
        widths, _ = ref.generate_regnet(None, p['w0'], p['wa'], p['wm'], p['depth'])
        stage_widths, stage_blocks = ref.get_stages_from_blocks(None, widths)
        assert generate_regnet(p['w0'], p['wa'], p['wm'], p['depth']) == (
            stage_widths,
            stage_blocks,
        )
        # bot_mul = 1: mmdet's rounding is pycls's, so the final widths agree too
        group_ws = [p['group_w']] * len(stage_widths)
        mm_widths, _ = ref.adjust_width_group(ref, stage_widths, [1.0] * len(group_ws), group_ws)
        assert RegNet.to_anynet(name)['widths'] == mm_widths


# -------------------------------------------------------------- reference parity
@pytest.mark.parametrize('ours,ref', [('regnety_400mf', 'regnet_y_400mf')])
def test_regnet_numerical_parity_with_torchvision(ours: str, ref: str) -> None:
    # RegNetY: the full block (projection, grouped 3x3, SE); RegNetX is the same without SE
    torch.manual_seed(0)
    tv = randomize_bn(torchvision_model(ref).eval())
    m = RegNet(ours, out_indices=(0, 1, 2, 3, 4)).eval()
    src = [(k, v) for k, v in tv.state_dict().items() if not k.startswith('fc.')]
    dst = list(m.state_dict())
    assert len(src) == len(dst)  # same layers, same order (stem, proj, a, b, se, c)
    m.load_state_dict({d: v for d, (_, v) in zip(dst, src)})
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        outs = m(x)
        y = tv.stem(x)
        torch.testing.assert_close(outs[0], y)
        for out, stage in zip(outs[1:], tv.trunk_output):
            y = stage(y)
            torch.testing.assert_close(out, y)
    assert nparams(m) + tv.fc.weight.numel() + tv.fc.bias.numel() == nparams(tv)


def _torchvision_resnext_key(k: str) -> str:
    k = re.sub(r'^conv1\.', 'layers.stem.conv.', k)
    k = re.sub(r'^bn1\.', 'layers.stem.bn.', k)
    k = re.sub(r'^layer(\d)\.(\d+)\.', lambda mt: f'layers.s{mt[1]}_b{int(mt[2]) + 1}.', k)
    k = re.sub(r'\.conv([123])\.', lambda mt: f'.f.{"abc"[int(mt[1]) - 1]}.conv.', k)
    k = re.sub(r'\.bn([123])\.', lambda mt: f'.f.{"abc"[int(mt[1]) - 1]}.bn.', k)
    return k.replace('.downsample.0.', '.proj.conv.').replace('.downsample.1.', '.proj.bn.')


def test_resnext_numerical_parity_with_torchvision() -> None:
    torch.manual_seed(0)
    tv = randomize_bn(torchvision_model('resnext50_32x4d').eval())
    m = ResNeXt('50_32x4d', out_indices=(0, 1, 2, 3, 4)).eval()
    state = {
        _torchvision_resnext_key(k): v
        for k, v in tv.state_dict().items()
        if not k.startswith('fc.')
    }
    m.load_state_dict(state)  # strict: every key maps, every shape matches
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        outs = m(x)
        y = tv.relu(tv.bn1(tv.conv1(x)))
        torch.testing.assert_close(outs[0], y)
        y = tv.maxpool(y)
        for out, layer in zip(outs[1:], (tv.layer1, tv.layer2, tv.layer3, tv.layer4)):
            y = layer(y)
            torch.testing.assert_close(out, y)


@pytest.mark.parametrize(
    'arch,ref', [('101_32x8d', 'resnext101_32x8d'), ('101_64x4d', 'resnext101_64x4d')]
)
def test_resnext_trunk_params_match_torchvision(arch: str, ref: str) -> None:
    tv = torchvision_model(ref, device='meta')
    m = on_meta(lambda: ResNeXt(arch, out_indices=(4,)))
    assert nparams(m) == nparams(tv) - nparams(tv.fc)
    stages = [tv.layer1, tv.layer2, tv.layer3, tv.layer4]
    assert [f['num_chs'] for f in m.feature_info] == [64] + [
        s[-1].conv3.out_channels for s in stages
    ]


def test_resnet50_is_resnext_1x64d() -> None:
    tv = torchvision_model('resnet50', device='meta')
    arch = dict(depths=(3, 4, 6, 3), cardinality=1, base_width=64)
    m = classifier('ResNeXt', arch, device='meta')
    assert nparams(m) == nparams(tv) == 25_557_032


@pytest.mark.parametrize(
    'cls,arch,timm_name',
    [
        (ResNeXt, '50_32x4d', 'resnext50_32x4d'),
        (RegNet, 'regnetx_3.2gf', 'regnetx_032'),
        (RegNet, 'regnetx_400mf', 'regnetx_004'),
        (RegNet, 'regnety_400mf', 'regnety_004'),
    ],
)
def test_taps_match_timm_features_only(cls, arch: str, timm_name: str) -> None:
    ref = timm_model(timm_name, device='meta', features_only=True)
    m = on_meta(lambda: cls(arch, out_indices=(0, 1, 2, 3, 4)))
    assert [f['num_chs'] for f in m.feature_info] == ref.feature_info.channels()
    assert [f['reduction'] for f in m.feature_info] == ref.feature_info.reduction()
    assert nparams(m) == nparams(ref)


def test_regnetx_400mf_differs_from_torchvision_as_documented() -> None:
    # torchvision's regnet_x_400mf rounds the last stage to 400 (5,495,976 params); pycls
    # and REFERENCE.md have 384 (5,157,512). We follow pycls.
    tv = torchvision_model('regnet_x_400mf')
    assert nparams(tv) == 5_495_976
    assert tv.trunk_output[-1][0].proj[0].out_channels == 400
    assert RegNet('regnetx_400mf').out_channels == [32, 64, 160, 384]


# ---------------------------------------------------- analytic == counted complexity
STEMS = ('imagenet', 'resnet', 'cifar')
BLOCK_TYPES = ('vanilla', 'res_basic', 'res_bottleneck')


def _random_arch(rng: random.Random, stem: str, block: str) -> dict:
    n = rng.randint(1, 4)
    arch = dict(
        stem_type=stem,
        stem_w=rng.choice([8, 16, 24]),
        block_type=block,
        depths=[rng.randint(1, 3) for _ in range(n)],
        widths=[8 * rng.randint(1, 12) for _ in range(n)],
        strides=[rng.choice([1, 2]) for _ in range(n)],
    )
    if block == 'res_bottleneck':
        bot_muls = [rng.choice([0.25, 0.5, 1.0, 2.0]) for _ in range(n)]
        group_ws = []
        for w, b in zip(arch['widths'], bot_muls):
            w_b = int(round(w * b))
            group_ws.append(rng.choice([None] + [g for g in (1, 2, 4, 8, 16) if w_b % g == 0]))
        arch.update(
            bot_muls=bot_muls,
            group_ws=group_ws,
            se_ratio=rng.choice([0.0, 0.25, [0.25] * (n - 1) + [0.5]]),
        )
    return arch


@pytest.mark.parametrize('seed', range(20))
def test_analytic_equals_counted_random_archs(seed: int) -> None:
    # seeds 0-8 cover every stem x block combination, the rest are drawn at random
    rng = random.Random(seed)
    stem, block = STEMS[seed % 3], BLOCK_TYPES[(seed // 3) % 3]
    if seed >= 9:
        stem, block = rng.choice(STEMS), rng.choice(BLOCK_TYPES)
    arch = _random_arch(rng, stem, block)
    shape = (20, 16) if arch['stem_type'] == 'cifar' else (40, 28)
    nc = rng.choice([10, 100])
    model = ImageClassifier(dict(type='AnyNet', arch=arch), num_classes=nc)
    got = measure(model, shape)
    assert anynet_complexity(arch, shape, nc, convention='counted') == got, arch
    pycls = anynet_complexity(arch, shape, nc)
    assert pycls.params == got.params
    assert pycls.flops - got.flops == _pycls_bias_flops(AnyNet.to_anynet(arch), nc)
    # the backbone alone, also with output_stride < 32 (dilation instead of stride)
    os_ = rng.choice([8, 16, 32])
    bb = AnyNet(arch, out_indices=(-1,), output_stride=os_)
    assert anynet_complexity(
        arch, shape, None, convention='counted', output_stride=os_
    ) == measure(bb, shape), (arch, os_)


def test_analytic_is_fast() -> None:
    rng = random.Random(0)
    archs = [_random_arch(rng, rng.choice(STEMS), rng.choice(BLOCK_TYPES)) for _ in range(200)]
    archs += [RegNet.to_anynet(a) for a in RegNet.arch_settings]
    start = time.perf_counter()
    for _ in range(5):
        for a in archs:
            anynet_complexity(a)
    rate = 5 * len(archs) / (time.perf_counter() - start)
    assert rate > 1000, f'{rate:.0f} configs/s'


# ------------------------------------------------------------------- architecture
def test_block_structure() -> None:
    m = RegNet('regnety_400mf', out_indices=(4,))
    b1, b2 = m.layers.s2_b1, m.layers.s2_b2
    # stride on the 3x3, projection only where the shape changes
    assert b1.f.a.conv.stride == (1, 1) and b1.f.b.conv.stride == (2, 2)
    assert b1.proj.conv.stride == (2, 2) and b2.proj is None
    # SE width is 1/4 of the block *input* width (pycls), gating the bottleneck
    assert b1.f.se.fc1.out_channels == round(0.25 * 48) == 12
    assert b2.f.se.fc1.out_channels == round(0.25 * 104) == 26
    assert b1.f.b.conv.groups == 104 // 8
    x = ResNeXt('50_32x4d', out_indices=(1,))
    blk = x.layers.s1_b1
    assert blk.f.b.conv.groups == 32 and blk.f.b.conv.out_channels == 128
    assert isinstance(x.layers.pool, torch.nn.MaxPool2d)
    assert not hasattr(RegNet('regnetx_400mf', out_indices=(1,)).layers.s1_b1.f, 'se')


def test_default_out_indices_are_stage_outputs() -> None:
    assert RegNet('regnetx_3.2gf').out_indices == (1, 2, 3, 4)
    assert RegNet('regnetx_3.2gf').out_channels == [96, 192, 432, 1008]  # mmdet FPN
    assert RegNet('regnetx_4.0gf').out_channels == [80, 240, 560, 1360]  # mmdet FPN
    assert ResNeXt('50_32x4d').out_strides == [4, 8, 16, 32]
    m = AnyNet('nds_r56')
    assert m.out_indices == (0, 1, 2) and m.out_strides == [1, 2, 4]
    assert m.out_channels == [16, 32, 64]


# ------------------------------------------------------------- arch validation
@pytest.mark.parametrize(
    'cls,kwargs,match',
    [
        (RegNet, dict(arch='regnetx_401mf'), r"unknown arch 'regnetx_401mf'.*valid presets"),
        (ResNeXt, dict(arch='50_32x5d'), 'unknown arch'),
        (AnyNet, dict(arch='bogus'), 'unknown arch'),
        (RegNet, dict(arch=dict(w0=24, wa=24.48)), r"missing \['wm', 'depth', 'group_w'\]"),
        (RegNet, dict(arch=dict(w_0=24)), 'unknown arch keys'),
        (ResNeXt, dict(arch=dict(cardinality=8)), 'needs "depths"'),
        (AnyNet, dict(arch=dict(depths=[1])), 'needs per-stage lists'),
        (AnyNet, dict(arch=dict(depths=[1, 2], widths=[8])), r"arch\['widths'\] must be a list"),
        (AnyNet, dict(arch=dict(depths=[1], widths=[8], stem_type='vgg')), 'unknown stem_type'),
        (AnyNet, dict(arch=dict(depths=[1], widths=[8], block_type='mb')), 'unknown block_type'),
        (
            AnyNet,
            dict(arch=dict(depths=[1], widths=[24], group_ws=[16])),
            'group width 16 must divide the bottleneck width 24',
        ),
        (
            AnyNet,
            dict(arch=dict(depths=[1], widths=[8], block_type='vanilla', se_ratio=0.25)),
            'applies only to',
        ),
        (AnyNet, dict(arch=dict(depths=[1], widths=[8], strides=[4])), 'stride must be 1 or 2'),
    ],
)
def test_bad_arguments_raise(cls, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_complexity_rejects_bad_convention() -> None:
    with pytest.raises(ValueError, match='convention'):
        RegNet.complexity('regnetx_400mf', convention='fvcore')


@pytest.mark.parametrize('block_type', ['res_basic', 'res_bottleneck'])
def test_projection_is_decided_at_the_nominal_stride(block_type: str) -> None:
    """A strided stage that keeps its width has a projection shortcut (stride 2); at
    output stride 16 / 8 that block is dilated instead, and must keep the projection so
    the OS-32 weights load and the analytic complexity stays the counted one."""
    arch = dict(block_type=block_type, depths=[1, 1, 2, 1], widths=[32, 32, 64, 64])
    ref = AnyNet(arch, output_stride=32)
    assert ref.layers.s2_b1.proj is not None and ref.layers.s4_b1.proj is not None
    for os_ in (16, 8):
        m = AnyNet(arch, output_stride=os_)
        assert m.layers.s4_b1.proj is not None
        m.load_state_dict(ref.state_dict(), strict=True)
        counted = measure(m, (64, 64))
        assert AnyNet.complexity(arch, 64, None, convention='counted', output_stride=os_) == (
            counted
        )

"""One complexity engine: every family's ``complexity(arch)`` (read from its ``layout``)
against the counted forward pass, the published pycls figures, and mmengine's counter."""

from __future__ import annotations

import pytest
import torch

from mmbackbones.complexity import CONVENTIONS, Cx, measure
from mmbackbones.design_space.sampling import build_classifier
from mmbackbones.design_space.sampling import complexity as sampler_complexity
from mmbackbones.models import EfficientNet, ImageClassifier, MobileNetV3, ReXNet
from mmbackbones.netadapt.knobs import get_knobs

INVERTED_RESIDUAL = (ReXNet, MobileNetV3, EfficientNet)
PRESETS = [(cls, arch) for cls in INVERTED_RESIDUAL for arch in cls.arch_settings]


def classifier(cls: type, arch, num_classes: int = 1000, **kw) -> ImageClassifier:
    cfg = dict(type=f'mmbackbones.{cls.__name__}', arch=arch, out_indices=(-1,), **kw)
    return ImageClassifier(cfg, num_classes=num_classes)


@pytest.mark.parametrize('cls,arch', PRESETS, ids=[f'{c.__name__}-{a}' for c, a in PRESETS])
def test_analytic_equals_counted_for_every_preset(cls: type, arch: str) -> None:
    counted = measure(classifier(cls, arch), (64, 96))
    assert cls.complexity(arch, (64, 96), convention='counted') == counted


@pytest.mark.parametrize(
    'cls,arch,kw',
    [
        (ReXNet, '1.3', dict(widen_factor=0.75, output_stride=16)),
        (ReXNet, 'lite-1.5', dict(output_stride=8)),
        (MobileNetV3, 'large', dict(widen_factor=0.75, width_rule='timm', output_stride=8)),
        (MobileNetV3, 'small', dict(reduced_tail='segmentation', output_stride=16)),
        (EfficientNet, dict(phi=1.5), dict(widen_factor=1.1, output_stride=16)),
    ],
)
def test_analytic_equals_counted_with_constructor_options(cls: type, arch, kw: dict) -> None:
    counted = measure(classifier(cls, arch, num_classes=10, **kw), (65, 97))
    assert cls.complexity(arch, (65, 97), 10, convention='counted', **kw) == counted
    # the backbone alone: stem to head conv
    backbone = cls(arch, out_indices=(-1,), **kw)
    assert cls.complexity(arch, (65, 97), None, convention='counted', **kw) == measure(
        backbone, (65, 97)
    )


def test_efficientnet_b0_matches_pycls_exactly() -> None:
    # REFERENCE.md, "Exact complexity" (pycls convention at 224, 1000 classes)
    cx = EfficientNet.complexity('b0')
    assert (cx.flops, cx.params, cx.acts) == (385_825_092, 5_288_548, 6_748_036)


def test_widen_factor_is_one_name_across_families() -> None:
    # ReXNet's arch key width_mult and EfficientNet's width, times widen_factor
    assert ReXNet.layout('1.0', widen_factor=1.3) == ReXNet.layout('1.3')
    assert ReXNet('1.0', widen_factor=1.5).out_channels == ReXNet('1.5').out_channels
    b2 = EfficientNet.resolve_arch('b2')
    same = dict(width=1.0, depth=b2['depth'])
    assert EfficientNet.layout(same, widen_factor=b2['width']) == EfficientNet.layout('b2')
    with pytest.raises(ValueError, match='widen_factor must be > 0'):
        ReXNet('1.0', widen_factor=0)


def test_netadapt_arch_is_scored_like_the_built_model() -> None:
    """An arch NetAdapt writes (explicit channels and per-block expansion widths) gets the
    same params/FLOPs from the design-space sampler as the built classifier counts."""
    knobs = get_knobs('ReXNet')
    arch = knobs.start_arch('1.0')
    by_name = {k.name: k for k in knobs.knobs(arch)}
    for name in ('b3.exp', 'b7.exp', 'b7.out', 'head'):
        arch = knobs.apply(arch, by_name[name], knobs.candidates(arch, by_name[name])[-1])
    assert arch['mid_channels'][3] is not None and arch['mid_channels'][7] is not None
    analytic = sampler_complexity('ReXNet', arch)
    built = measure(build_classifier(dict(family='ReXNet', arch=arch)), (32, 32))
    assert analytic == built
    # the expansion widths matter: ignoring them (the old sampler) scores another network
    plain = {k: v for k, v in arch.items() if k != 'mid_channels'}
    assert sampler_complexity('ReXNet', plain).params > analytic.params


def test_measure_agrees_with_mmengine_flop_counter() -> None:
    from mmengine.analysis import FlopAnalyzer, parameter_count

    model = classifier(MobileNetV3, 'small').eval()
    ours = measure(model, (224, 224))
    fa = FlopAnalyzer(model, torch.rand(1, 3, 224, 224))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()  # mmengine also counts BN and pooling, which we do not
    assert ops['conv'] + ops['linear'] == ours.flops
    assert parameter_count(model)[''] == ours.params


def test_cx_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match='convention must be one of'):
        Cx(32, 32, 'fvcore')
    with pytest.raises(ValueError, match='positive integers'):
        Cx(0, 32)
    assert CONVENTIONS == ('pycls', 'counted')

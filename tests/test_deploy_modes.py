"""Every deploy form under ``torch.no_grad()``, under ``torch.inference_mode()``, and fused
inside ``inference_mode`` (issue 16 item 6: fusing a ResNeXt inside ``inference_mode``
and then calling it raised "Inference tensors do not track version counter").

The reference is always the unfused model under ``no_grad``; BN statistics are random, so
a wrong fold or a wrong in-place write shows up as a difference of ~0.1, not 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn as nn

from mmbackbones.deploy import compile_for_inference, fuse, randomize_bn
from mmbackbones.deploy.modules import PointwiseConv2d, SpaceToBatchConv2d, SqueezeExciteDeploy
from mmbackbones.models import ImageClassifier
from mmbackbones.models.backbones import MobileNetV3, ResNeXt, ReXNet

TINY_RESNEXT = dict(depths=(1, 1, 2, 1), cardinality=8, base_width=4, widths=(64, 128, 256, 512))

#: models that, between them, contain every deploy module of ``fuse``
MODELS = {
    # residual sums in place on fresh outputs, taps held by the caller
    'resnext': lambda: ResNeXt(TINY_RESNEXT, out_indices=(0, 1, 2, 3)),
    # SqueezeExciteDeploy in place, the partial residual in place, ReLU6 / SiLU in place
    'rexnet': lambda: ReXNet('1.0', out_indices=(1, 3, 4)),
    # SpaceToBatchConv2d (5x5 at dilation 4), PointwiseConv2d (SE), h-swish post-op
    'mobilenetv3-os8': lambda: MobileNetV3('large', out_indices=(1, 5), output_stride=8),
    # a classifier (the pooled head and its linear layer) around MobileNetV3-Small
    'mobilenetv3-small-classifier': lambda: ImageClassifier(
        dict(type='MobileNetV3', arch='small'), 10
    ),
}

#: deploy forms: name -> model -> deployed model
FORMS: dict[str, Callable[[nn.Module], nn.Module]] = {
    'fuse': fuse,
    'fuse-nchw': lambda m: fuse(m, channels_last=False),
}

CONTEXTS = {'no_grad': torch.no_grad, 'inference_mode': torch.inference_mode}


def _outputs(out) -> tuple[torch.Tensor, ...]:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def _max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(_outputs(a), _outputs(b)))


def _reference(name: str) -> tuple[nn.Module, torch.Tensor, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    model = randomize_bn(MODELS[name]()).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = _outputs(model(x))
    # non-trivial outputs (a wrong fold moves them by their own size): 1e-5 is a real bound
    assert min(float(t.abs().max()) for t in ref) > 0.01
    return model, x, ref


def _no_inference_tensors(model: nn.Module) -> bool:
    return not any(t.is_inference() for t in model.state_dict().values())


@pytest.mark.parametrize('name', sorted(MODELS))
def test_deploy_forms_in_every_grad_mode(name: str) -> None:
    """Every form, fused outside and inside ``inference_mode``, run under ``no_grad`` and
    ``inference_mode`` and then under ``no_grad`` again, equals the unfused model."""
    model, x, ref = _reference(name)
    for form, deploy in FORMS.items():
        fused_outside = deploy(model)
        with torch.inference_mode():
            fused_inside = deploy(model)
        assert _no_inference_tensors(fused_inside), form
        for fused in (fused_outside, fused_inside):
            for ctx in ('no_grad', 'inference_mode', 'no_grad'):
                with CONTEXTS[ctx]():
                    out = _outputs(fused(x))
                assert [t.shape for t in out] == [t.shape for t in ref]
                assert _max_diff(out, ref) <= 1e-5, (form, ctx)
    # the unfused model was not touched by any fuse
    with torch.no_grad():
        assert _max_diff(model(x), ref) == 0


def _kinds(m: nn.Module) -> set[type]:
    return {type(c) for c in m.modules()}


def test_fusing_inside_inference_mode_gives_the_same_forms() -> None:
    """The same deploy modules whichever mode ``fuse`` runs in."""
    model, _, _ = _reference('mobilenetv3-os8')
    with torch.inference_mode():
        inside = fuse(model)
    outside = fuse(model)
    assert _kinds(inside) == _kinds(outside)
    assert {PointwiseConv2d, SpaceToBatchConv2d, SqueezeExciteDeploy} <= _kinds(inside)


def test_fuse_inplace_of_a_model_built_in_inference_mode() -> None:
    """A model built inside ``inference_mode`` has inference-tensor weights, which break
    when their memory format changes; fused in place, they are replaced by ordinary
    copies (here the convs with nothing to fold)."""
    torch.manual_seed(0)
    with torch.inference_mode():
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 1), nn.Hardswish()
        ).eval()
        x = torch.randn(1, 3, 9, 9)
        ref = model(x)
    assert model[0].weight.is_inference()
    fused = fuse(model, inplace=True)
    assert fused is model and _no_inference_tensors(fused)
    for ctx in ('no_grad', 'inference_mode'):
        with CONTEXTS[ctx]():
            assert _max_diff(fused(x), ref) <= 1e-6


@pytest.mark.slow  # torch.compile: ~20 s per graph on 2 cores
def test_compiled_form_in_every_grad_mode() -> None:
    """``compile_for_inference`` called inside ``inference_mode`` and run under both."""
    model, x, ref = _reference('rexnet')
    with torch.inference_mode():
        compiled = compile_for_inference(model)
    for ctx in ('inference_mode', 'no_grad'):
        with CONTEXTS[ctx]():
            assert _max_diff(compiled(x), ref) <= 1e-4, ctx


def test_autograd_enabled_call_of_a_model_fused_in_inference_mode() -> None:
    """Outside any no-grad context (plain ``model(x)``) the fused model still runs."""
    model, x, ref = _reference('resnext')
    with torch.inference_mode():
        fused = fuse(model)
    assert _max_diff(fused(x), ref) <= 1e-5

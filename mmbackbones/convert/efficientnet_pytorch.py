"""``efficientnet_pytorch`` (lukemelas/EfficientNet-PyTorch, the most used PyTorch port of
the authors' TensorFlow EfficientNets) -> mmbackbones key mappings.

The package's module naming (``efficientnet_pytorch/model.py``; its Lite fork
``efficientnet_lite_pytorch`` keeps it):

* stem ``_conv_stem`` + ``_bn0``; head conv ``_conv_head`` + ``_bn1``; classifier ``_fc``;
* ``_blocks.<i>`` (one flat list of MBConv blocks): ``_expand_conv`` + ``_bn0`` (absent
  when the expansion is 1), ``_depthwise_conv`` + ``_bn1``, SE ``_se_reduce`` /
  ``_se_expand`` (convs with bias; absent in Lite), ``_project_conv`` + ``_bn2``.

The weights are the authors' TensorFlow checkpoints, converted: every conv pads as
TensorFlow's ``'SAME'`` (the package's ``Conv2dStaticSamePadding``) and BatchNorm has eps
1e-3 and momentum 0.01 (the package's ``batch_norm_epsilon=1e-3``,
``batch_norm_momentum=0.99`` in TF's sense). The backbone config hence has
``padding='tf_same'``; tensors alone cannot tell that, so ``--model`` is required and names
the model as the package does: ``efficientnet-b0`` ... ``efficientnet-b8``,
``efficientnet-l2``, ``efficientnet-lite0`` ... ``efficientnet-lite4`` and the AdvProp files
``adv-efficientnet-b0`` ... ``b8`` (``from_pretrained(..., advprop=True)``; input scaled to
[-1, 1]).
"""

from __future__ import annotations

from .source import (
    CLASSIFIER,
    PARAM,
    RGB_IMAGENET,
    EvalTransform,
    Input,
    Preset,
    Source,
    arch_resolution,
    regex_mapper,
)

_P = PARAM

efficientnet = regex_mapper(
    [
        (r'_conv_stem\.weight', 'layers.stem.conv.weight'),
        (rf'_bn0\.{_P}', r'layers.stem.bn.\1'),
        (r'_blocks\.(\d+)\._expand_conv\.weight', r'layers.b\1.expand.conv.weight'),
        (rf'_blocks\.(\d+)\._bn0\.{_P}', r'layers.b\1.expand.bn.\2'),
        (r'_blocks\.(\d+)\._depthwise_conv\.weight', r'layers.b\1.dw.conv.weight'),
        (rf'_blocks\.(\d+)\._bn1\.{_P}', r'layers.b\1.dw.bn.\2'),
        (r'_blocks\.(\d+)\._se_reduce\.(weight|bias)', r'layers.b\1.se.fc1.\2'),
        (r'_blocks\.(\d+)\._se_expand\.(weight|bias)', r'layers.b\1.se.fc2.\2'),
        (r'_blocks\.(\d+)\._project_conv\.weight', r'layers.b\1.project.conv.weight'),
        (rf'_blocks\.(\d+)\._bn2\.{_P}', r'layers.b\1.project.bn.\2'),
        (r'_conv_head\.weight', 'layers.head.conv.weight'),
        (rf'_bn1\.{_P}', r'layers.head.bn.\1'),
        (r'_fc\.(weight|bias)', CLASSIFIER),
    ]
)

#: TF's EfficientNet-Lite input: ``(x - 127) / 128`` (efficientnet_lite_builder.py).
LITE_INPUT = Input('RGB', (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
#: AdvProp weights: ``x / 127.5 - 1`` (the package's ``advprop=True`` transform).
ADVPROP_INPUT = Input('RGB', (127.5, 127.5, 127.5), (127.5, 127.5, 127.5))

# the package's models beyond our presets (efficientnet_params): width, depth, resolution,
# dropout
_EXTRA = {'b8': (2.2, 3.6, 672, 0.5), 'l2': (4.3, 5.3, 800, 0.5)}
_TF = dict(padding='tf_same')  # every conv of the package pads as TF's 'SAME'


def _arch(name: str) -> str | dict:
    if name in _EXTRA:
        w, d, r, p = _EXTRA[name]
        return dict(width=w, depth=d, resolution=r, dropout=p)
    return name


PRESETS: dict[str, Preset] = {
    **{
        f'efficientnet-{n}': Preset('EfficientNet', _arch(n), dict(_TF), bn_eps=1e-3)
        for n in (*(f'b{i}' for i in range(9)), 'l2')
    },
    **{
        f'adv-efficientnet-b{i}': Preset(
            'EfficientNet', _arch(f'b{i}'), dict(_TF), bn_eps=1e-3, input=ADVPROP_INPUT
        )
        for i in range(9)
    },
    **{
        f'efficientnet-lite{i}': Preset(
            'EfficientNet', f'lite{i}', dict(_TF), bn_eps=1e-3, input=LITE_INPUT
        )
        for i in range(5)
    },
}


def eval_transform(model: str | None, preset: Preset | None) -> EvalTransform:
    """The authors' evaluation (efficientnet ``preprocessing.py``): a centre crop of
    ``size / (size + 32)`` of the shorter side resized to ``size``, bicubic."""
    size = arch_resolution(preset)
    return EvalTransform(size, size + 32, 'bicubic')


SOURCE = Source(
    name='efficientnet_pytorch',
    mappers={'EfficientNet': efficientnet},
    presets=PRESETS,
    input=RGB_IMAGENET,
    needs_model={
        'EfficientNet': (
            "--source efficientnet_pytorch needs --model (the package's model name, e.g. "
            '--model efficientnet-b0 or efficientnet-lite0): its files pad as TensorFlow '
            "does (padding='tf_same'), have BatchNorm eps 1e-3, and B0/AdvProp/Lite files "
            'expect different inputs, none of which the tensors tell'
        )
    },
    default_bn_eps={'EfficientNet': 1e-3},
    eval_transform=eval_transform,
)

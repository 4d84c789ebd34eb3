"""timm (huggingface/pytorch-image-models) -> mmbackbones key mappings, as pure functions.

Families and timm's module naming:

* ReXNet (``rexnet_*``): ``stem.{conv,bn}``, ``features.<i>.{conv_exp,conv_dw,conv_pwl}.{conv,bn}``
  and ``features.<i>.se.{fc1,bn,fc2}`` per block, ``features.<n>.{conv,bn}`` the head conv,
  ``head.fc`` the classifier.
* MobileNetV3 (``mobilenetv3_*``) and EfficientNet (``efficientnet_b*``), timm's
  EfficientNet builder: ``conv_stem`` + ``bn1``; ``blocks.<stage>.<i>`` of three kinds,
  told apart by their keys: depthwise-separable (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``),
  inverted residual (``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ``conv_pwl``, ``bn3``), and a
  final ``ConvBnAct`` (``conv``, ``bn1``: MobileNetV3's 960/576 head conv); SE is
  ``se.conv_reduce`` / ``se.conv_expand``. EfficientNet's head conv is ``conv_head`` + ``bn2``;
  MobileNetV3's ``conv_head`` is the 1x1 conv *after* global pooling, i.e. the classifier's
  hidden layer, and is dropped with the classifier.
* RegNet (``regnetx_*``, ``regnety_*``): ``stem.{conv,bn}``, ``s<i>.b<j>.conv{1,2,3}.{conv,bn}``,
  ``se.{fc1,fc2}``, ``downsample.{conv,bn}``, ``head.fc``.
* ResNeXt (``resnext*``): torchvision's naming (``conv1``, ``bn1``, ``layer<i>.<j>.conv{1,2,3}``,
  ``bn{1,2,3}``, ``downsample.{0,1}``, ``fc``).

timm's ``tf_efficientnet_*``, ``tf_efficientnet_lite*`` and ``tf_mobilenetv3_*`` are
TensorFlow ports with TF ``'SAME'`` (asymmetric) padding and BatchNorm eps 1e-3; they convert
to the same backbones with ``padding='tf_same'``. Their tensors are indistinguishable from
the PyTorch-native models', so ``--model`` is required for these two families. Input
conventions follow timm's ``pretrained_cfg``: the Lite and MobileNetV3 ports and the AdvProp
(``.ap_in1k``) weights expect ``x / 127.5 - 1``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .source import (
    CLASSIFIER,
    PARAM,
    RGB_IMAGENET,
    RGB_INCEPTION,
    Drop,
    EvalTransform,
    Input,
    KeyMap,
    Preset,
    Source,
    default_eval_transform,
    regex_mapper,
)

POOLED_CONV_HEAD = Drop(
    "classifier: MobileNetV3's conv_head is the 1x1 layer after global pooling "
    '(the classifier hidden layer)',
    classifier=True,
)
_P = PARAM

# --------------------------------------------------------------------------- ReXNet
rexnet = regex_mapper(
    [
        (rf'stem\.(conv|bn)\.{_P}', r'layers.stem.\1.\2'),
        (rf'features\.(\d+)\.conv_exp\.(conv|bn)\.{_P}', r'layers.b\1.expand.\2.\3'),
        (rf'features\.(\d+)\.conv_dw\.(conv|bn)\.{_P}', r'layers.b\1.dw.\2.\3'),
        (rf'features\.(\d+)\.se\.(fc1|bn|fc2)\.{_P}', r'layers.b\1.se.\2.\3'),
        (rf'features\.(\d+)\.conv_pwl\.(conv|bn)\.{_P}', r'layers.b\1.project.\2.\3'),
        (rf'features\.\d+\.(conv|bn)\.{_P}', r'layers.head.\1.\2'),  # the final ConvBnAct
        (r'head\.fc\.(weight|bias)', CLASSIFIER),
    ]
)

# ------------------------------------------------- MobileNetV3 / EfficientNet (builder)
_INVERTED = {  # timm InvertedResidual
    'conv_pw': 'expand.conv',
    'bn1': 'expand.bn',
    'conv_dw': 'dw.conv',
    'bn2': 'dw.bn',
    'se.conv_reduce': 'se.fc1',
    'se.conv_expand': 'se.fc2',
    'conv_pwl': 'project.conv',
    'bn3': 'project.bn',
}
_SEPARABLE = {  # timm DepthwiseSeparableConv
    'conv_dw': 'dw.conv',
    'bn1': 'dw.bn',
    'se.conv_reduce': 'se.fc1',
    'se.conv_expand': 'se.fc2',
    'conv_pw': 'project.conv',
    'bn2': 'project.bn',
}
_CONV_BN_ACT = {'conv': 'head.conv', 'bn1': 'head.bn'}  # timm ConvBnAct (MobileNetV3 head)
_BLOCK = re.compile(r'blocks\.(\d+)\.(\d+)\.(.+)\.' + _P)


def _builder_blocks(keys: Sequence[str]) -> KeyMap:
    """``blocks.<s>.<i>.*`` -> ``layers.b<k>.*`` (``k`` counts blocks in order) or the head."""
    rests: dict[tuple[int, int], set[str]] = {}
    for k in keys:
        m = _BLOCK.fullmatch(k)
        if m:
            rests.setdefault((int(m[1]), int(m[2])), set()).add(m[3])
    ids = sorted(rests)
    kinds = {}
    for i in ids:
        if 'conv' in rests[i]:
            kinds[i] = _CONV_BN_ACT if i == ids[-1] else None
        elif 'conv_pwl' in rests[i]:
            kinds[i] = _INVERTED
        else:
            kinds[i] = _SEPARABLE
    index = {i: n for n, i in enumerate(j for j in ids if kinds[j] is not _CONV_BN_ACT)}
    out: KeyMap = {}
    for k in keys:
        m = _BLOCK.fullmatch(k)
        if not m:
            continue
        i = (int(m[1]), int(m[2]))
        table = kinds[i]
        if table is None or m[3] not in table:
            continue  # unmapped: reported by the caller
        layer = table[m[3]]
        out[k] = (
            f'layers.{layer}.{m[4]}'
            if table is _CONV_BN_ACT
            else f'layers.b{index[i]}.{layer}.{m[4]}'
        )
    return out


_mobilenet_v3_rest = regex_mapper(
    [
        (r'conv_stem\.weight', 'layers.stem.conv.weight'),
        (rf'bn1\.{_P}', r'layers.stem.bn.\1'),
        (r'conv_head\.(weight|bias)', POOLED_CONV_HEAD),
        (r'classifier\.(weight|bias)', CLASSIFIER),
    ]
)
_efficientnet_rest = regex_mapper(
    [
        (r'conv_stem\.weight', 'layers.stem.conv.weight'),
        (rf'bn1\.{_P}', r'layers.stem.bn.\1'),
        (r'conv_head\.weight', 'layers.head.conv.weight'),
        (rf'bn2\.{_P}', r'layers.head.bn.\1'),
        (r'classifier\.(weight|bias)', CLASSIFIER),
    ]
)


def mobilenet_v3(keys: Sequence[str]) -> KeyMap:
    return {**_mobilenet_v3_rest(keys), **_builder_blocks(keys)}


def efficientnet(keys: Sequence[str]) -> KeyMap:
    blocks = _builder_blocks(keys)
    # EfficientNet has no ConvBnAct block: its head conv is conv_head + bn2
    blocks = {k: v for k, v in blocks.items() if not str(v).startswith('layers.head.')}
    return {**_efficientnet_rest(keys), **blocks}


# ---------------------------------------------------------------------------- RegNet
regnet = regex_mapper(
    [
        (rf'stem\.(conv|bn)\.{_P}', r'layers.stem.\1.\2'),
        (rf's(\d+)\.b(\d+)\.conv1\.(conv|bn)\.{_P}', r'layers.s\1_b\2.f.a.\3.\4'),
        (rf's(\d+)\.b(\d+)\.conv2\.(conv|bn)\.{_P}', r'layers.s\1_b\2.f.b.\3.\4'),
        (rf's(\d+)\.b(\d+)\.conv3\.(conv|bn)\.{_P}', r'layers.s\1_b\2.f.c.\3.\4'),
        (r's(\d+)\.b(\d+)\.se\.(fc1|fc2)\.(weight|bias)', r'layers.s\1_b\2.f.se.\3.\4'),
        (rf's(\d+)\.b(\d+)\.downsample\.(conv|bn)\.{_P}', r'layers.s\1_b\2.proj.\3.\4'),
        (r'head\.fc\.(weight|bias)', CLASSIFIER),
    ]
)


# ---------------------------------------------------------------------------- ResNeXt
def _resnext_block(m: re.Match) -> str:
    layer = 'abc'[int(m[4]) - 1]
    return f'layers.s{m[1]}_b{int(m[2]) + 1}.f.{layer}.{"conv" if m[3] == "conv" else "bn"}.{m[5]}'


def _resnext_proj(m: re.Match) -> str:
    return f'layers.s{m[1]}_b{int(m[2]) + 1}.proj.{"conv" if m[3] == "0" else "bn"}.{m[4]}'


#: torchvision's ResNet naming (timm keeps it).
resnext = regex_mapper(
    [
        (r'conv1\.weight', 'layers.stem.conv.weight'),
        (rf'bn1\.{_P}', r'layers.stem.bn.\1'),
        (rf'layer(\d)\.(\d+)\.(conv|bn)([123])\.{_P}', _resnext_block),
        (rf'layer(\d)\.(\d+)\.downsample\.([01])\.{_P}', _resnext_proj),
        (r'fc\.(weight|bias)', CLASSIFIER),
    ]
)

# ---------------------------------------------------------------------------- presets
#: timm's TensorFlow ports: TF 'SAME' padding, BatchNorm eps 1e-3 (BN_EPS_TF_DEFAULT)
_TF = dict(padding='tf_same')
_TF_EPS = 1e-3


def eval_transform(model: str | None, preset: Preset | None) -> EvalTransform:
    """The evaluation transform of a timm model: its ``pretrained_cfg`` (timm's public
    ``get_pretrained_cfg``; the default tag's without one) when timm is installed, else
    the common ImageNet convention."""
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:  # pragma: no cover - timm is in the convert extra
        return default_eval_transform(model, preset)
    cfg = get_pretrained_cfg(model) if model else None
    if cfg is None:
        return default_eval_transform(model, preset)
    size = cfg.input_size[-1]
    return EvalTransform.from_crop_pct(size, cfg.crop_pct, cfg.interpolation or 'bilinear')


def _regnet_dict(w0: int, wa: float, wm: float, group_w: int, depth: int, se: float = 0.0):
    return dict(w0=w0, wa=wa, wm=wm, group_w=group_w, depth=depth, se_ratio=se)


def _anynet_dict(depths, widths, group_w, se: float = 0.0):
    return dict(
        stem_type='imagenet',
        stem_w=32,
        block_type='res_bottleneck',
        depths=depths,
        widths=widths,
        group_ws=[group_w] * len(depths),
        se_ratio=se,
    )


#: pycls's RegNet generator parameters (w0, wa, wm, group width, depth), by model size;
#: the sizes with one of our presets use its name.
REGNET_PARAMS = {
    'x': {
        '200mf': (24, 36.44, 2.49, 8, 13),
        '400mf': 'regnetx_400mf',
        '600mf': (48, 36.97, 2.24, 24, 16),
        '800mf': 'regnetx_800mf',
        '1.6gf': 'regnetx_1.6gf',
        '3.2gf': 'regnetx_3.2gf',
        '4.0gf': 'regnetx_4.0gf',
        '6.4gf': 'regnetx_6.4gf',
        '8.0gf': 'regnetx_8.0gf',
        '12gf': 'regnetx_12gf',
        '16gf': (216, 55.59, 2.1, 128, 22),
        '32gf': (320, 69.86, 2.0, 168, 23),
    },
    'y': {
        '200mf': (24, 36.44, 2.49, 8, 13),
        '400mf': 'regnety_400mf',
        '600mf': (48, 32.54, 2.32, 16, 15),
        '800mf': 'regnety_800mf',
        '1.6gf': 'regnety_1.6gf',
        '3.2gf': 'regnety_3.2gf',
        '4.0gf': 'regnety_4.0gf',
        '6.4gf': 'regnety_6.4gf',
        '8.0gf': 'regnety_8.0gf',
        '12gf': 'regnety_12gf',
        '16gf': (200, 106.23, 2.48, 112, 18),
        '32gf': (232, 115.89, 2.53, 232, 20),
        '64gf': (352, 147.48, 2.4, 328, 20),  # SEER
        '128gf': (456, 160.83, 2.52, 264, 27),  # SEER / SWAG
    },
}


def regnet_preset(kind: str, size: str) -> Preset:
    """Our RegNet preset (or arch dict) of pycls's RegNet{X,Y}-<size>."""
    p = REGNET_PARAMS[kind][size]
    if isinstance(p, str):
        return Preset('RegNet', p)
    return Preset('RegNet', _regnet_dict(*p, se=0.25 if kind == 'y' else 0.0))


#: torchvision's RegNets whose widths differ from pycls's rounding (torchvision rounds
#: bottleneck widths with make_divisible): AnyNet archs with torchvision's exact widths.
TORCHVISION_ROUNDED_REGNETS = {
    'x_400mf': _anynet_dict([1, 2, 7, 12], [32, 64, 160, 400], 16),
    'y_800mf': _anynet_dict([1, 3, 8, 2], [64, 144, 320, 784], 16, 0.25),
    'y_8gf': _anynet_dict([2, 4, 10, 1], [224, 448, 896, 2016], 56, 0.25),
}

_TIMM_REGNET_SIZES = {
    '002': '200mf', '004': '400mf', '006': '600mf', '008': '800mf', '016': '1.6gf',
    '032': '3.2gf', '040': '4.0gf', '064': '6.4gf', '080': '8.0gf', '120': '12gf',
    '160': '16gf', '320': '32gf',
}  # fmt: skip

PRESETS: dict[str, Preset] = {
    **{f'rexnet_{k}': Preset('ReXNet', a) for k, a in
       [('100', '1.0'), ('130', '1.3'), ('150', '1.5'), ('200', '2.0'), ('300', '3.0')]},
    # timm's width rule (TF-slim's) reproduces its 0.5 / 0.75 models; BN eps 1e-5
    **{f'mobilenetv3_{a}_{w}': Preset(
        'MobileNetV3', a, dict(widen_factor=int(w) / 100, width_rule='timm'))
       for a, w in [('large', '075'), ('large', '100'), ('small', '050'), ('small', '075'),
                    ('small', '100')]},
    **{f'efficientnet_b{i}': Preset('EfficientNet', f'b{i}') for i in range(8)},
    # timm's own 3600-epoch recipe normalises as Inception does
    'efficientnet_b0.ra4_e3600_r224_in1k': Preset('EfficientNet', 'b0', input=RGB_INCEPTION),
    'efficientnet_b1.ra4_e3600_r240_in1k': Preset('EfficientNet', 'b1', input=RGB_INCEPTION),
    'mobilenetv3_large_100.ra4_e3600_r224_in1k': Preset(
        'MobileNetV3', 'large', dict(widen_factor=1.0, width_rule='timm'), input=RGB_INCEPTION),
    # Alibaba MIIL's ImageNet-21k weights: pixels scaled to [0, 1], no mean/std
    **{f'mobilenetv3_large_100.{t}': Preset(
        'MobileNetV3', 'large', dict(widen_factor=1.0, width_rule='timm'),
        input=Input('RGB', (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)))
       for t in ('miil_in21k', 'miil_in21k_ft_in1k')},
    **{f'efficientnet_lite{i}': Preset('EfficientNet', f'lite{i}') for i in range(5)},
    **{f'tf_efficientnet_b{i}': Preset('EfficientNet', f'b{i}', _TF, _TF_EPS) for i in range(8)},
    # AdvProp weights (.ap_in1k) expect x / 127.5 - 1
    **{f'tf_efficientnet_b{i}.ap_in1k': Preset('EfficientNet', f'b{i}', _TF, _TF_EPS,
                                               RGB_INCEPTION) for i in range(8)},
    **{f'tf_efficientnet_lite{i}': Preset('EfficientNet', f'lite{i}', _TF, _TF_EPS, RGB_INCEPTION)
       for i in range(5)},
    **{f'tf_mobilenetv3_{a}_{w}': Preset(
        'MobileNetV3', a, dict(widen_factor=int(w) / 100, width_rule='timm', **_TF), _TF_EPS,
        RGB_INCEPTION)
       for a, w in [('large', '075'), ('large', '100'), ('small', '075'), ('small', '100')]},
    **{f'regnet{k}_{n}': regnet_preset(k, s) for k in 'xy' for n, s in _TIMM_REGNET_SIZES.items()
       if s in REGNET_PARAMS[k]},
    'regnety_640': regnet_preset('y', '64gf'),
    'regnety_1280': regnet_preset('y', '128gf'),
    # timm's copies of torchvision's differently rounded RegNets
    'regnetx_004_tv': Preset('AnyNet', TORCHVISION_ROUNDED_REGNETS['x_400mf']),
    'regnety_008_tv': Preset('AnyNet', TORCHVISION_ROUNDED_REGNETS['y_800mf']),
    'regnety_080_tv': Preset('AnyNet', TORCHVISION_ROUNDED_REGNETS['y_8gf']),
    **{f'resnext{n}': Preset('ResNeXt', n)
       for n in ('50_32x4d', '101_32x4d', '101_32x8d', '101_64x4d')},
}  # fmt: skip

SOURCE = Source(
    name='timm',
    mappers={
        'ReXNet': rexnet,
        'MobileNetV3': mobilenet_v3,
        'EfficientNet': efficientnet,
        'RegNet': regnet,
        'AnyNet': regnet,
        'ResNeXt': resnext,
    },
    presets=PRESETS,
    input=RGB_IMAGENET,
    refused=(
        (
            r'tf_mobilenetv3_.*_minimal_.*',
            "timm's MobileNetV3 'minimal' variants (no SE, no h-swish, 3x3 kernels only) are "
            'no MobileNetV3 preset or arch',
        ),
        (
            r'rexnetr_.*',
            "timm's rexnetr_* round every channel count (SE included) to multiples of 8; no "
            'ReXNet preset or arch builds those widths',
        ),
    ),
    needs_model={
        fam: (
            f'--source timm --backbone {fam} needs --model: timm publishes {what} with tensors '
            "identical to its tf_* TensorFlow ports, which need padding='tf_same' and "
            'BatchNorm eps 1e-3 (silently wrong features otherwise). Name the timm model, '
            f'e.g. --model {example}'
        )
        for fam, what, example in [
            ('EfficientNet', 'efficientnet_b*', 'efficientnet_b0'),
            ('MobileNetV3', 'mobilenetv3_*', 'mobilenetv3_large_100'),
        ]
    },
    default_bn_eps={},
    eval_transform=eval_transform,
)

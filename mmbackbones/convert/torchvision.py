"""torchvision -> mmbackbones key mappings, as pure functions.

Families and torchvision's module naming:

* MobileNetV3 (``mobilenet_v3_{large,small}``) and EfficientNet (``efficientnet_b*``): a
  ``features`` Sequential; ``features.0.{0,1}`` is the stem conv + BN, the last
  ``features.<n>.{0,1}`` the head conv + BN, and every block in between (``features.<i>`` for
  MobileNetV3, ``features.<stage>.<i>`` for EfficientNet) holds a *positional* ``block``
  Sequential: ``[expand,] dw, [SE,] project``, each conv a ``Conv2dNormActivation``
  (``.0`` conv, ``.1`` BN) and the SE a ``SqueezeExcitation`` (``fc1``, ``fc2``). The roles
  are read off the block's own keys (the SE position has ``fc1``; the convs, in order, are
  [expand,] dw, project). ``classifier.*`` is dropped.
* RegNet (``regnet_{x,y}_*``): ``stem.{0,1}``,
  ``trunk_output.block<i>.block<i>-<j>.{proj,f.a,f.b,f.c}.{0,1}`` and ``f.se.{fc1,fc2}``,
  ``fc``. Three torchvision RegNets round their widths differently from pycls
  (``regnet_x_400mf``, ``regnet_y_800mf``, ``regnet_y_8gf``); they convert to an AnyNet arch
  with torchvision's exact widths.
* ResNeXt (``resnext*``): ``conv1``, ``bn1``, ``layer<i>.<j>.{conv,bn}{1,2,3}``,
  ``downsample.{0,1}``, ``fc``.

BatchNorm eps of the weights: 1e-3 for MobileNetV3 and EfficientNet-B5..B7, 1e-5 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import timm as _timm
from .source import (
    CLASSIFIER,
    PARAM,
    RGB_IMAGENET,
    EvalTransform,
    KeyMap,
    Preset,
    Source,
    conv_bn_roles,
    default_eval_transform,
    regex_mapper,
)

_P = PARAM


# ------------------------------------------------- MobileNetV3 / EfficientNet (features)
def _features(keys: Sequence[str], block_pattern: str) -> KeyMap:
    block_rx = re.compile(block_pattern + r'\.block\.(\d+)\.(.+)')
    ends_rx = re.compile(rf'features\.(\d+)\.([01])\.{_P}')
    tops = [int(m[1]) for k in keys if (m := re.match(r'features\.(\d+)\.', k))]
    last = max(tops, default=-1)
    # group each block's keys by position
    blocks: dict[tuple[int, ...], dict[int, list[tuple[str, str]]]] = {}
    for k in keys:
        m = block_rx.fullmatch(k)
        if m:
            *bid, pos, rest = m.groups()
            key = tuple(int(g) for g in bid)
            blocks.setdefault(key, {}).setdefault(int(pos), []).append((k, rest))
    out: KeyMap = {}
    for n, bid in enumerate(sorted(blocks)):
        positions = blocks[bid]
        se = [
            p for p, ks in positions.items() if any(r.startswith(('fc1.', 'fc2.')) for _, r in ks)
        ]
        convs = [p for p in sorted(positions) if p not in se]
        roles = conv_bn_roles(convs, []) if len(se) <= 1 else None
        if roles is None:
            continue  # not an inverted residual: its keys stay unmapped
        for p, ks in positions.items():
            for k, rest in ks:
                if p in se:
                    m = re.fullmatch(r'(fc1|fc2)\.(weight|bias)', rest)
                    if m:
                        out[k] = f'layers.b{n}.se.{m[1]}.{m[2]}'
                    continue
                m = re.fullmatch(rf'([01])\.{_P}', rest)
                if m and (m[1] == '1' or m[2] == 'weight'):
                    out[k] = f'layers.b{n}.{roles[p]}.{"conv" if m[1] == "0" else "bn"}.{m[2]}'
    for k in keys:
        m = ends_rx.fullmatch(k)
        if m and (m[2] == '1' or m[3] == 'weight') and int(m[1]) in (0, last):
            layer = 'stem' if int(m[1]) == 0 else 'head'
            out[k] = f'layers.{layer}.{"conv" if m[2] == "0" else "bn"}.{m[3]}'
        elif re.fullmatch(r'classifier\.\d+\.(weight|bias)', k):
            out[k] = CLASSIFIER
    return out


def mobilenet_v3(keys: Sequence[str]) -> KeyMap:
    return _features(keys, r'features\.(\d+)')


def efficientnet(keys: Sequence[str]) -> KeyMap:
    return _features(keys, r'features\.(\d+)\.(\d+)')


# ---------------------------------------------------------------------------- RegNet
def _regnet_block(m: re.Match) -> str:
    what = {'proj': 'proj', 'f.a': 'f.a', 'f.b': 'f.b', 'f.c': 'f.c'}[m[3]]
    return f'layers.s{m[1]}_b{int(m[2]) + 1}.{what}.{"conv" if m[4] == "0" else "bn"}.{m[5]}'


regnet = regex_mapper(
    [
        (r'stem\.0\.weight', 'layers.stem.conv.weight'),
        (rf'stem\.1\.{_P}', r'layers.stem.bn.\1'),
        (
            rf'trunk_output\.block(\d+)\.block\1-(\d+)\.(proj|f\.a|f\.b|f\.c)\.([01])\.{_P}',
            _regnet_block,
        ),
        (
            r'trunk_output\.block(\d+)\.block\1-(\d+)\.f\.se\.(fc1|fc2)\.(weight|bias)',
            lambda m: f'layers.s{m[1]}_b{int(m[2]) + 1}.f.se.{m[3]}.{m[4]}',
        ),
        (r'fc\.(weight|bias)', CLASSIFIER),
    ]
)

# ---------------------------------------------------------------------------- presets
_SIZES = {
    '400mf': '400mf', '800mf': '800mf', '1_6gf': '1.6gf', '3_2gf': '3.2gf', '8gf': '8.0gf',
    '16gf': '16gf', '32gf': '32gf', '128gf': '128gf',
}  # fmt: skip


def _regnet(kind: str, size: str) -> Preset:
    rounded = _timm.TORCHVISION_ROUNDED_REGNETS.get(f'{kind}_{size}')
    if rounded is not None:
        return Preset('AnyNet', rounded)
    return _timm.regnet_preset(kind, _SIZES[size])


PRESETS: dict[str, Preset] = {
    'mobilenet_v3_large': Preset('MobileNetV3', 'large', bn_eps=1e-3),
    'mobilenet_v3_small': Preset('MobileNetV3', 'small', bn_eps=1e-3),
    **{f'efficientnet_b{i}': Preset('EfficientNet', f'b{i}', bn_eps=1e-3 if i >= 5 else 1e-5)
       for i in range(8)},
    **{f'regnet_x_{s}': _regnet('x', s)
       for s in ('400mf', '800mf', '1_6gf', '3_2gf', '8gf', '16gf', '32gf')},
    **{f'regnet_y_{s}': _regnet('y', s)
       for s in ('400mf', '800mf', '1_6gf', '3_2gf', '8gf', '16gf', '32gf', '128gf')},
    **{f'resnext{n}': Preset('ResNeXt', n) for n in ('50_32x4d', '101_32x8d', '101_64x4d')},
}  # fmt: skip


def eval_transform(model: str | None, preset: Preset | None) -> EvalTransform:
    """The evaluation transform of torchvision's ``DEFAULT`` weights of ``model`` (its public
    ``get_model_weights(...).DEFAULT.transforms()``; older weights of the same model may
    have resized a little differently), else the common ImageNet convention."""
    try:
        from torchvision.models import get_model_weights

        t = get_model_weights(model).DEFAULT.transforms()
    except (ImportError, ValueError, KeyError, TypeError, AttributeError):
        return default_eval_transform(model, preset)
    return EvalTransform(t.crop_size[0], t.resize_size[0], t.interpolation.value)


SOURCE = Source(
    name='torchvision',
    mappers={
        'MobileNetV3': mobilenet_v3,
        'EfficientNet': efficientnet,
        'RegNet': regnet,
        'AnyNet': regnet,
        'ResNeXt': _timm.resnext,
    },
    presets=PRESETS,
    input=RGB_IMAGENET,
    refused=(
        (
            r'efficientnet_v2_.*',
            'EfficientNetV2 (Fused-MBConv stages) is a different architecture from our '
            'EfficientNet (B0-B7)',
        ),
    ),
    default_bn_eps={'MobileNetV3': 1e-3},
    eval_transform=eval_transform,
)

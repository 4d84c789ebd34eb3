"""clovaai/rexnet (the authors' ReXNet and ReXNet-lite) -> mmbackbones key mappings.

The authors' module naming (``rexnetv1.py``, ``rexnetv1_lite.py``) is positional:

* ``features`` is one Sequential: the stem conv, BN and activation, then one
  ``LinearBottleneck`` per block, then the head 1x1 conv, BN and activation (v1 also a pool).
* A block's ``out`` Sequential holds, in order, [1x1 expand conv, BN, act,] the depthwise conv
  and BN [, ReLU6 (lite)] [, SE (v1)], ReLU6 (v1), the 1x1 projection conv and BN. v1's SE is
  ``fc.0`` (conv with bias), ``fc.1`` (BN), ``fc.3`` (conv with bias).
* ``output`` is the classifier (v1: dropout + 1x1 conv; lite: a 1024-wide conv-BN-ReLU6 and
  the 1x1 conv), dropped.

Activation layers have no tensors, so positions are read off the keys: a child with only a
``weight`` is a conv, one with ``running_mean`` a BN; the convs of a block are, in order,
[expand,] dw and project, and every BN belongs to the conv before it. Stem and head are the
conv + BN before the first and after the last block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .source import BN_PARAMS, CLASSIFIER, RGB_IMAGENET, KeyMap, Preset, Source, conv_bn_roles

_SE = {'fc.0': 'se.fc1', 'fc.1': 'se.bn', 'fc.3': 'se.fc2'}


def _kind(params: set[str]) -> str | None:
    if params == {'weight'}:
        return 'conv'
    if 'running_mean' in params and params <= set(BN_PARAMS):
        return 'bn'
    return None


def rexnet(keys: Sequence[str]) -> KeyMap:
    """Keys of ``ReXNetV1`` / ``ReXNetV1_lite`` -> ours (``layers.<...>``)."""
    top: dict[int, list[tuple[str, str]]] = {}
    out: KeyMap = {}
    for k in keys:
        m = re.fullmatch(r'features\.(\d+)\.(.+)', k)
        if m:
            top.setdefault(int(m[1]), []).append((k, m[2]))
        elif re.fullmatch(r'output\.\d+\.\w+', k):
            out[k] = CLASSIFIER
    blocks = sorted(i for i, ks in top.items() if any(r.startswith('out.') for _, r in ks))
    if not blocks:
        return out
    # stem (before the first block) and head (after the last): a conv, then its BN
    for name, ids in (
        ('stem', [i for i in sorted(top) if i < blocks[0]]),
        ('head', [i for i in sorted(top) if i > blocks[-1]]),
    ):
        kinds = [_kind({r for _, r in top[i]}) for i in ids]
        if kinds == ['conv', 'bn']:
            for i, layer in zip(ids, ('conv', 'bn')):
                for k, r in top[i]:
                    out[k] = f'layers.{name}.{layer}.{r}'
    for n, i in enumerate(blocks):
        pos: dict[int, list[tuple[str, str]]] = {}
        se: list[tuple[str, str]] = []
        for k, r in top[i]:
            m = re.fullmatch(r'out\.(\d+)\.(.+)', r)
            if not m:
                continue
            sm = re.fullmatch(r'(fc\.\d+)\.(\w+)', m[2])
            if sm:
                se.append((k, m[2]))
            else:
                pos.setdefault(int(m[1]), []).append((k, m[2]))
        kinds = {p: _kind({r for _, r in ks}) for p, ks in pos.items()}
        convs = [p for p in sorted(pos) if kinds[p] == 'conv']
        bns = [p for p in sorted(pos) if kinds[p] == 'bn']
        roles = conv_bn_roles(convs, bns)
        if roles is None or len(bns) != len(convs):
            continue
        for p, ks in pos.items():
            for k, r in ks:
                out[k] = f'layers.b{n}.{roles[p]}.{"conv" if kinds[p] == "conv" else "bn"}.{r}'
        for k, r in se:
            sub, param = r.rsplit('.', 1)
            if sub in _SE:
                out[k] = f'layers.b{n}.{_SE[sub]}.{param}'
    return out


PRESETS: dict[str, Preset] = {
    **{
        f'rexnetv1_{w}': Preset('ReXNet', w)
        for w in ('0.9', '1.0', '1.3', '1.5', '2.0', '2.2', '3.0')
    },
    **{f'rexnet_lite_{w}': Preset('ReXNet', f'lite-{w}') for w in ('1.0', '1.3', '1.5', '2.0')},
}

SOURCE = Source(
    name='clovaai',
    mappers={'ReXNet': rexnet},
    presets=PRESETS,
    input=RGB_IMAGENET,
)

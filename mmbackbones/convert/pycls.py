"""pycls (facebookresearch/pycls) -> mmbackbones key mappings, as pure functions.

pycls's module naming (``pycls/models/anynet.py``, ``blocks.py``, ``effnet.py``):

* AnyNet / RegNet / ResNeXt (the model zoo's ResNeXt are AnyNets with the ``res_stem_in``
  stem): ``stem.{conv,bn}``; stages ``s<i>``, blocks ``b<j>`` (from 1); a residual block has
  the projection ``proj`` + ``bn`` and the transform ``f`` with ``a``, ``a_bn``, ``b``,
  ``b_bn``, ``c``, ``c_bn`` and SE ``se.f_ex.{0,2}``; a vanilla block has ``a``, ``a_bn``,
  ``b``, ``b_bn`` directly; ``head.fc`` is the classifier.
* EfficientNet: ``stem.{conv,bn}``; ``s<i>.b<j>.{exp,exp_bn,dwise,dwise_bn,lin_proj,
  lin_proj_bn}`` and ``se.f_ex.{0,2}``; ``head.{conv,conv_bn}`` the head conv, ``head.fc``.

Checkpoints wrap the weights as ``{'model_state': ...}``. pycls trains on OpenCV-decoded (BGR)
images normalised with the ImageNet statistics in BGR order; ``--rgb`` folds the stem conv
to RGB. BatchNorm eps is pycls's default 1e-5 everywhere (our EfficientNet defaults to 1e-3).
pycls's own ``resnet`` model type with ``RESNET.STRIDE_1X1=True`` (MSRA, stride on the 1x1)
has the same tensors as ours (stride on the 3x3) and cannot be told apart; the model zoo's
ResNeXt are AnyNets (stride on the 3x3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import timm as _timm
from .source import BGR_PYCLS, CLASSIFIER, PARAM, KeyMap, Preset, Source, ordinal, regex_mapper

_P = PARAM

anynet = regex_mapper(
    [
        (r'stem\.conv\.weight', 'layers.stem.conv.weight'),
        (rf'stem\.bn\.{_P}', r'layers.stem.bn.\1'),
        (r's(\d+)\.b(\d+)\.proj\.weight', r'layers.s\1_b\2.proj.conv.weight'),
        (rf's(\d+)\.b(\d+)\.bn\.{_P}', r'layers.s\1_b\2.proj.bn.\3'),
        (r's(\d+)\.b(\d+)\.f\.([abc])\.weight', r'layers.s\1_b\2.f.\3.conv.weight'),
        (rf's(\d+)\.b(\d+)\.f\.([abc])_bn\.{_P}', r'layers.s\1_b\2.f.\3.bn.\4'),
        (r's(\d+)\.b(\d+)\.f\.se\.f_ex\.0\.(weight|bias)', r'layers.s\1_b\2.f.se.fc1.\3'),
        (r's(\d+)\.b(\d+)\.f\.se\.f_ex\.2\.(weight|bias)', r'layers.s\1_b\2.f.se.fc2.\3'),
        # vanilla block: no residual, convs directly on the block
        (r's(\d+)\.b(\d+)\.([ab])\.weight', r'layers.s\1_b\2.\3.conv.weight'),
        (rf's(\d+)\.b(\d+)\.([ab])_bn\.{_P}', r'layers.s\1_b\2.\3.bn.\4'),
        (r'head\.fc\.(weight|bias)', CLASSIFIER),
    ]
)

_EFF = {
    'exp': 'expand.conv',
    'exp_bn': 'expand.bn',
    'dwise': 'dw.conv',
    'dwise_bn': 'dw.bn',
    'se.f_ex.0': 'se.fc1',
    'se.f_ex.2': 'se.fc2',
    'lin_proj': 'project.conv',
    'lin_proj_bn': 'project.bn',
}
_eff_rest = regex_mapper(
    [
        (r'stem\.conv\.weight', 'layers.stem.conv.weight'),
        (rf'stem\.bn\.{_P}', r'layers.stem.bn.\1'),
        (r'head\.conv\.weight', 'layers.head.conv.weight'),
        (rf'head\.conv_bn\.{_P}', r'layers.head.bn.\1'),
        (r'head\.fc\.(weight|bias)', CLASSIFIER),
    ]
)


def efficientnet(keys: Sequence[str]) -> KeyMap:
    index = ordinal(keys, r's(\d+)\.b(\d+)\.')
    out = _eff_rest(keys)
    for k in keys:
        m = re.fullmatch(rf's(\d+)\.b(\d+)\.(.+)\.{_P}', k)
        if m and m[3] in _EFF:
            out[k] = f'layers.b{index[int(m[1]), int(m[2])]}.{_EFF[m[3]]}.{m[4]}'
    return out


PRESETS: dict[str, Preset] = {
    **{f'RegNet{k.upper()}-{s.upper()}': _timm.regnet_preset(k, s)
       for k in 'xy' for s in _timm.REGNET_PARAMS[k] if s not in ('64gf', '128gf')},
    **{f'X-{n}': Preset('ResNeXt', n.replace('-', '_'))
       for n in ('50-32x4d', '101-32x4d', '152-32x4d')},
    **{f'EN-B{i}': Preset('EfficientNet', f'b{i}') for i in range(6)},
}  # fmt: skip

SOURCE = Source(
    name='pycls',
    mappers={'RegNet': anynet, 'ResNeXt': anynet, 'AnyNet': anynet, 'EfficientNet': efficientnet},
    presets=PRESETS,
    input=BGR_PYCLS,
    notes={
        'ResNeXt': "pycls's model-zoo ResNeXt (X-*) are AnyNets with the stride on the 3x3 "
        "conv, as ours; a checkpoint of pycls's older `resnet` model type with "
        'RESNET.STRIDE_1X1=True (stride on the 1x1) has the same tensors and would compute '
        'different features: do not convert those'
    },
)

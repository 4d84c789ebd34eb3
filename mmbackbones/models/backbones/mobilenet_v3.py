"""MobileNetV3: "Searching for MobileNetV3" (Howard et al., ICCV 2019).

MobileNetV3-Large and -Small (paper Tables 1 and 2, in the torchvision / timm form):

* Block (paper section 5): MobileNetV2 inverted residual, ``[1x1 expand -> BN -> act] ->
  kxk depthwise -> BN -> act -> [SE] -> 1x1 project -> BN`` with a residual when the nominal
  stride is 1 and the channels match. SE sits after the depthwise conv, squeezes to
  ``make_divisible(exp // 4, 8)`` channels with ReLU and gates with a hard sigmoid.
* Nonlinearity (section 5.2): h-swish only where the paper puts it (the stem, the second
  half of the blocks and the last stage); ReLU elsewhere.
* Stem: 3x3/2 conv with 16 filters -> BN -> h-swish (section 5.1).
* Last stage (section 5.1, "efficient last stage"): a 1x1 conv to 960 (Large) / 576
  (Small) channels, then global pooling and the 1x1 (here: linear) 1280 / 1024 layer.
  The conv before pooling is the "head" tap, built only when selected.
* Width multiplier: channels are rounded to multiples of 8, by torchvision's rule
  (default) or TF-slim's / timm's (``width_rule='timm'``, the paper's 0.75 figures).
* Reduced tail (the paper's SSDLite experiments, "†"): the channels between C4 (the
  expansion of the first stride-32 block) and C5 (the layer before pooling) are halved,
  as torchvision's ``reduced_tail=True``. ``reduced_tail='segmentation'`` halves C4 too,
  the segmentation models of the paper's TF code (deeplab's ``mobilenet_v3_*_seg``).
* ``feature_location='expansion'``: the stride-16 tap is C4, the expansion conv of
  bottleneck 13 (Large, 672 channels) or 9 (Small, 288), split off the block explicitly.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from mmbackbones.complexity import Cx, linear_cx
from mmbackbones.registry import MODELS

from ..layers import PADDINGS, build_act, make_divisible
from .base import BaseBackbone, BlockSpec

# Paper Tables 1 and 2 (torchvision's rows). Columns:
# (kernel, expansion channels, output channels, use SE, activation 'RE'|'HS', stride)
# The trailing comments give the nominal output stride; "C4" marks the first stride-32
# block, whose expansion conv is the SSDLite C4 tap (feature_location='expansion').
LARGE_BLOCKS = (
    (3, 16, 16, False, 'RE', 1),  # /2
    (3, 64, 24, False, 'RE', 2),  # /4
    (3, 72, 24, False, 'RE', 1),
    (5, 72, 40, True, 'RE', 2),  # /8
    (5, 120, 40, True, 'RE', 1),
    (5, 120, 40, True, 'RE', 1),
    (3, 240, 80, False, 'HS', 2),  # /16
    (3, 200, 80, False, 'HS', 1),
    (3, 184, 80, False, 'HS', 1),
    (3, 184, 80, False, 'HS', 1),
    (3, 480, 112, True, 'HS', 1),
    (3, 672, 112, True, 'HS', 1),
    (5, 672, 160, True, 'HS', 2),  # /32, C4 = bottleneck 13's expansion (672)
    (5, 960, 160, True, 'HS', 1),
    (5, 960, 160, True, 'HS', 1),
)
SMALL_BLOCKS = (
    (3, 16, 16, True, 'RE', 2),  # /4
    (3, 72, 24, False, 'RE', 2),  # /8
    (3, 88, 24, False, 'RE', 1),
    (5, 96, 40, True, 'HS', 2),  # /16
    (5, 240, 40, True, 'HS', 1),
    (5, 240, 40, True, 'HS', 1),
    (5, 120, 48, True, 'HS', 1),
    (5, 144, 48, True, 'HS', 1),
    (5, 288, 96, True, 'HS', 2),  # /32, C4 = bottleneck 9's expansion (288)
    (5, 576, 96, True, 'HS', 1),
    (5, 576, 96, True, 'HS', 1),
)

# The arch dict: keys and defaults (MobileNetV3.default_arch).
DEFAULT_ARCH: dict[str, Any] = dict(
    blocks=LARGE_BLOCKS,  # rows as above
    stem_channels=16,  # before the width multiplier
    head_channels=None,  # 1x1 conv before pooling; None = 6 x the last block's output
    classifier_channels=1280,  # hidden width of the classifier (before width / tail)
)
_ACTS = ('RE', 'HS')
WIDTH_RULES = ('torchvision', 'timm')
#: ``reduced_tail`` values: no, torchvision's / SSDLite's (C4 kept), the segmentation one
REDUCED_TAILS = (False, True, 'segmentation')


def mobilenet_v3_channels(
    arch: dict[str, Any],
    widen_factor: float = 1.0,
    reduced_tail: bool | str = False,
    width_rule: str = 'torchvision',
) -> tuple[int, list[tuple[int, int, int, int, bool, str, int]], int, int]:
    """The channel configuration of a block table at a width multiplier.

    Reduced tail (torchvision's ``reduce_divider=2``, the paper's "†"): every channel
    count after C4 is halved before the width multiplier: the output of the first
    stride-32 block (whose expansion *is* C4 and stays; ``'segmentation'`` halves it too),
    the expansion and output of every later block, the head conv and the classifier width.

    Width rules (they agree at ``widen_factor=1``):

    * ``'torchvision'``: every table entry becomes ``make_divisible(c * w, 8)``; the head
      conv is 6 x the last block's output; the classifier width is scaled too.
    * ``'timm'`` (TF-slim's rule as ported by timm, which reproduces the paper's published
      0.75 figures): a block's expansion is its scaled input times the table's ratio
      ``exp / in``; the head conv is ``make_divisible(960 * w, 8)`` (Small: 576); the
      classifier width stays 1280 / 1024; the stem stays 16 below ``w = 0.75``.

    Returns:
        ``(stem, blocks, head, classifier)`` with ``blocks`` as rows of
        ``(kernel, in, mid, out, use_se, act, stride)``.

    Example:
        >>> arch = MobileNetV3.resolve_arch('small')
        >>> stem, blocks, head, cls = mobilenet_v3_channels(arch, reduced_tail=True)
        >>> stem, [b[1:4] for b in blocks[-3:]], head, cls
        (16, [(48, 288, 48), (48, 288, 48), (48, 288, 48)], 288, 512)
    """
    if width_rule not in WIDTH_RULES:
        raise ValueError(
            f'MobileNetV3: width_rule must be one of {WIDTH_RULES}, got {width_rule!r}'
        )
    if not widen_factor > 0:
        raise ValueError(f'MobileNetV3: widen_factor must be > 0, got {widen_factor!r}')
    if reduced_tail not in REDUCED_TAILS:
        raise ValueError(
            f'MobileNetV3: reduced_tail must be one of {REDUCED_TAILS}, got {reduced_tail!r}'
        )
    rows = _check_blocks(arch['blocks'])
    divider = 2 if reduced_tail else 1
    if reduced_tail:
        reduction, first_tail = 2, None  # the stem has stride 2
        for i, row in enumerate(rows):
            reduction *= row[5]
            if reduction >= 32 and first_tail is None:
                first_tail = i
        if first_tail is None:
            raise ValueError('MobileNetV3: reduced_tail needs a stride-32 block')
        for i in range(first_tail, len(rows)):
            k, exp, out, use_se, act, stride = rows[i]
            keep_c4 = i == first_tail and reduced_tail != 'segmentation'
            exp = exp if keep_c4 else exp // divider
            rows[i] = (k, exp, out // divider, use_se, act, stride)

    def scale(c: float) -> int:
        return make_divisible(c * widen_factor, 8)

    timm_rule = width_rule == 'timm'
    raw_in = arch['stem_channels']
    stem = raw_in if timm_rule and widen_factor < 0.75 else scale(raw_in)
    in_ch, blocks = stem, []
    for k, exp, out, use_se, act, stride in rows:
        mid = make_divisible(in_ch * exp / raw_in, 8) if timm_rule else scale(exp)
        if exp == raw_in:  # no expansion conv, whatever the rounding
            mid = in_ch
        blocks.append((k, in_ch, mid, scale(out), use_se, act, stride))
        raw_in, in_ch = out, scale(out)
    head = arch['head_channels']
    if head is None:
        head = 6 * raw_in if timm_rule else 6 * in_ch
        head = scale(head) if timm_rule else head
    else:
        head = scale(int(head) // divider)
    classifier = int(arch['classifier_channels']) // divider
    classifier = classifier if timm_rule else scale(classifier)
    return stem, blocks, head, classifier


def _check_blocks(blocks: Any) -> list[tuple[int, int, int, bool, str, int]]:
    if isinstance(blocks, (str, bytes)) or not hasattr(blocks, '__iter__'):
        raise ValueError(f'MobileNetV3: arch["blocks"] must be a list of rows, got {blocks!r}')
    rows = []
    for row in blocks:
        if len(row) != 6 or row[4] not in _ACTS or row[5] not in (1, 2):
            raise ValueError(
                'MobileNetV3: each arch["blocks"] row must be (kernel, exp, out, use_se, '
                f"'RE'|'HS', stride 1|2), got {row!r}"
            )
        k, exp, out, use_se, act, stride = row
        rows.append((int(k), int(exp), int(out), bool(use_se), act, int(stride)))
    if not rows:
        raise ValueError('MobileNetV3: arch["blocks"] is empty')
    return rows


@MODELS.register_module()
class MobileNetV3(BaseBackbone):
    """MobileNetV3-Large / -Small backbone (Howard et al., ICCV 2019).

    Taps (``feature_info``) for ``'large'``: 0: 16@/2, 1: 24@/4, 2: 40@/8, 3: 112@/16,
    4: 160@/32, 5: 960 (head 1x1 conv, built only when selected). For ``'small'``:
    16@/2 (the stem), 16@/4, 24@/8, 48@/16, 96@/32, 576. With
    ``feature_location='expansion'`` tap 3 is C4 (Large 672, Small 288 channels); the
    SSDLite setting is ``out_indices=(3, 5)``.

    Stages (``frozen_stages``): 0 is the stem; a stage starts at the first block and at
    every strided block; the head conv belongs to the last stage (Large: 5 stages, Small: 4).

    Args:
        arch (str | dict): ``'large'`` or ``'small'``, or a dict overriding keys of the
            default (Large) arch: ``blocks`` (rows of ``(kernel, exp, out, use_se,
            'RE'|'HS', stride)``), ``stem_channels``, ``head_channels`` (None: 6 x the last
            block's output, as torchvision), ``classifier_channels``. Default: 'large'.
        widen_factor (float): Width multiplier. Default: 1.0.
        reduced_tail (bool | str): Halve the channels between C4 and C5 (SSDLite "†"), as
            torchvision's ``reduced_tail``; ``'segmentation'`` halves C4 (the first
            stride-32 block's expansion) too, the paper's LR-ASPP models. Default: False.
        width_rule (str): How ``widen_factor`` rounds channels: ``'torchvision'`` (every
            channel ``make_divisible(c * w, 8)``) or ``'timm'`` (TF-slim's rule, which
            gives the paper's 0.75 figures), see :func:`mobilenet_v3_channels`.
            Default: 'torchvision'.
        out_indices (Sequence[int]): Taps to return. Default: (1, 2, 3, 4), strides 4-32
            (the FPN / R-CNN setting, as ReXNet).
        norm_cfg (dict | None): Norm layers. Default: BN with eps 1e-3 and momentum 0.01
            (the paper's TF settings, as torchvision).
        act_cfg (dict | None): The h-swish activation (stem, 'HS' blocks, head conv and
            classifier); the 'RE' blocks and SE keep ReLU. Default: HSwish.
        init_cfg (dict | list[dict] | None): Default: Kaiming (fan_out) convs, BN weight 1.
        **kwargs: The contract's arguments (``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``output_stride``, ``feature_location``, ``padding``), see ``BaseBackbone``.

    Example:
        >>> import torch
        >>> from mmbackbones.models.backbones.mobilenet_v3 import MobileNetV3
        >>> m = MobileNetV3('large').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 24, 56, 56), (1, 40, 28, 28), (1, 112, 14, 14), (1, 160, 7, 7)]
        >>> m = MobileNetV3('large', feature_location='expansion', out_indices=(3, 5))
        >>> [tuple(o.shape) for o in m.eval()(torch.rand(1, 3, 320, 320))]
        [(1, 672, 20, 20), (1, 960, 10, 10)]
    """

    arch_settings = {
        'large': dict(blocks=LARGE_BLOCKS, classifier_channels=1280),
        'small': dict(blocks=SMALL_BLOCKS, classifier_channels=1024),
    }

    default_arch = DEFAULT_ARCH
    positive_arch_keys = ('stem_channels', 'head_channels', 'classifier_channels')
    paddings = PADDINGS  # 'tf_same' for TensorFlow-trained weights

    def __init__(
        self,
        arch: str | dict = 'large',
        widen_factor: float = 1.0,
        reduced_tail: bool | str = False,
        width_rule: str = 'torchvision',
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(out_indices=out_indices, init_cfg=init_cfg, **kwargs)
        self.arch = self.resolve_arch(arch)
        self.widen_factor = widen_factor
        self.reduced_tail = reduced_tail
        self.width_rule = width_rule
        self.norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.act_cfg = dict(type='HSwish', inplace=True) if act_cfg is None else act_cfg
        relu = dict(type='ReLU', inplace=True)
        se_gate = dict(type='Hardsigmoid', inplace=True)
        layout = self.layout(self.arch, widen_factor, reduced_tail, width_rule)
        self.classifier_channels = layout[-1].hidden_channels

        def block_kwargs(i: int, spec: BlockSpec) -> dict[str, Any]:
            act_cfg = self.act_cfg if spec.act == 'HS' else relu
            se_cfg = None
            if spec.se_channels:
                se_cfg = dict(reduced_channels=spec.se_channels, act_cfg=relu, gate_cfg=se_gate)
            return dict(
                norm_cfg=self.norm_cfg,
                expand_act_cfg=act_cfg,
                dw_act_cfg=act_cfg,  # the activation precedes SE (paper Fig. 4)
                se_cfg=se_cfg,
            )

        self.build_layout(layout, block_kwargs, self.norm_cfg, self.act_cfg)

    @classmethod
    def layout(
        cls,
        arch: str | dict,
        widen_factor: float = 1.0,
        reduced_tail: bool | str = False,
        width_rule: str = 'torchvision',
    ) -> list[BlockSpec]:
        """The stem, the blocks and the head of ``arch`` (see
        :func:`mobilenet_v3_channels` for the width rules and the reduced tail).

        A stage starts at the first block and at every strided block; the head conv
        belongs to the last stage. SE squeezes to ``make_divisible(exp // 4, 8)`` channels
        (paper section 5.3). The head's ``hidden_channels`` is the classifier's width.

        Example:
            >>> specs = MobileNetV3.layout('large', reduced_tail=True)
            >>> [(s.mid_channels, s.out_channels) for s in specs[-4:]]
            [(672, 80), (480, 80), (480, 80), (480, 480)]
        """
        a = cls.resolve_arch(arch)
        stem, blocks, head, classifier = mobilenet_v3_channels(
            a, widen_factor, reduced_tail, width_rule
        )
        specs = [BlockSpec('stem', 3, stem, stem, 3, 2, 0, act='HS')]
        stage = 0
        for b, (k, in_ch, mid, out, use_se, act, stride) in enumerate(blocks):
            if b == 0 or stride > 1:
                stage += 1
            se = make_divisible(mid // 4, 8) if use_se else 0
            specs.append(
                BlockSpec('block', in_ch, out, mid, k, stride, stage, se, shortcut='full', act=act)
            )
        specs.append(
            BlockSpec('head', blocks[-1][3], head, head, 1, 1, stage, act='HS',
                      hidden_channels=classifier)
        )  # fmt: skip
        return specs

    @classmethod
    def classifier_complexity(cls, cx: Cx, head: BlockSpec, num_classes: int) -> Cx:
        """Pool -> linear (hidden) -> h-swish -> linear, as :meth:`make_classifier`."""
        linear_cx(cx, head.out_channels, head.hidden_channels)
        return linear_cx(cx, head.hidden_channels, num_classes)

    def make_classifier(self, num_classes: int = 1000) -> nn.Module:
        """The paper's classifier (section 5.1; torchvision's and timm's layout): pool ->
        linear to 1280 (Large) / 1024 (Small), adjusted for width and reduced tail by
        :func:`mobilenet_v3_channels` -> h-swish -> dropout 0.2 -> linear."""
        hidden = self.classifier_channels
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(self.feature_info[-1]['num_chs'], hidden),
            build_act(self.act_cfg),
            nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )

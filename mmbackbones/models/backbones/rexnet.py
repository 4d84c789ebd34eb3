"""ReXNet: "Rethinking Channel Dimensions for Efficient Model Design" (Han et al., CVPR 2021).

The authors' architecture (clovaai/rexnet ``rexnetv1.py`` and ``rexnetv1_lite.py``):

* MobileNetV2 layout, 16 blocks in stages of [1, 2, 2, 3, 3, 5] with strides
  [1, 2, 2, 2, 1, 2]; expansion 1 for the first block and 6 after.
* Block output channels grow *linearly*: from 16, each block adds ``final_ch / 16``
  (180/16 = 11.25), scaled by the width multiplier and rounded with Python's ``round``.
* Block: [1x1 expand -> BN -> SiLU] -> 3x3 dw -> BN -> SE (with BN, 1/12) -> ReLU6 ->
  1x1 project -> BN, and a *partial* residual ``out[:, :c_in] += x`` at stride 1.
* Stem 3x3/2 conv (32 ch) -> BN -> SiLU; head 1x1 conv to ``int(1280 * w)`` -> BN -> SiLU.
* Lite: no SE, ReLU6 everywhere, ``final_ch`` 164 spread over 15 steps, channels
  divisible by 8, and a 1280 -> 1024 -> classes classifier.
"""

from __future__ import annotations

from math import ceil
from typing import Any

import torch.nn as nn
from mmcv.cnn import build_norm_layer

from mmbackbones.complexity import Cx, linear_cx, norm_cx
from mmbackbones.registry import MODELS

from ..layers import PADDINGS, make_divisible
from .base import BaseBackbone, BlockSpec

# The arch dict: keys and defaults (ReXNet.default_arch).
DEFAULT_ARCH: dict[str, Any] = dict(
    width_mult=1.0,  # channel multiplier ("x1.0")
    depth_mult=1.0,  # a stage has ceil(layers * depth_mult) blocks
    lite=False,  # ReXNet-lite: no SE, ReLU6 everywhere, channels divisible by 8
    use_se=True,
    se_ratio=12,  # SE squeeze = dw_channels // se_ratio
    input_ch=16,  # output channels of block 0 (before width_mult)
    final_ch=None,  # total linear channel growth; None = 180 (lite: 164)
    layers=(1, 2, 2, 3, 3, 5),
    strides=(1, 2, 2, 2, 1, 2),
    se_stages=(False, False, True, True, True, True),
    kernel_sizes=(3, 3, 3, 3, 3, 3),
    expansion=6,  # expansion of every block but the first (which has 1)
    channels=None,  # explicit per-block output channels (channel search); overrides growth
    # explicit per-block expansion widths (NetAdapt); None, or a None entry, = the block's
    # input width x expansion (1 for block 0); a block whose width equals its input has no
    # expansion conv
    mid_channels=None,
    head_ch=None,  # None = the authors' rule (int(1280 * w); lite: 1280 unless w > 1)
)


def rexnet_channels(arch: dict[str, Any]) -> tuple[int, list[int], list[int], int]:
    """The authors' channel configuration.

    Returns:
        ``(stem_channels, block_in_channels, block_out_channels, head_channels)``.

    Example:
        >>> stem, cin, cout, head = rexnet_channels(ReXNet.resolve_arch('1.0'))
        >>> stem, cout[0], cout[2], cout[4], cout[10], cout[15], head
        (32, 16, 38, 61, 128, 185, 1280)
    """
    w = arch['width_mult']
    layers = [ceil(n * arch['depth_mult']) for n in arch['layers']]
    num_blocks = sum(layers)
    if arch['lite']:
        final_ch = 164 if arch['final_ch'] is None else arch['final_ch']
        inplanes = arch['input_ch'] / w if w < 1.0 else arch['input_ch']
        stem = make_divisible(int(round((32 / w if w < 1.0 else 32) * w)), 8)
        outs = []
        for i in range(num_blocks):
            if i > 0:
                inplanes += final_ch / (num_blocks - 1)
            outs.append(make_divisible(int(round(inplanes * w)), 8))
        head = int(1280 * w) if w > 1 else 1280
    else:
        final_ch = 180 if arch['final_ch'] is None else arch['final_ch']
        inplanes = arch['input_ch'] / w if w < 1.0 else arch['input_ch']
        stem = int(round((32 / w if w < 1.0 else 32) * w))
        outs = []
        for i in range(num_blocks):
            if i > 0:
                inplanes += final_ch / num_blocks
            outs.append(int(round(inplanes * w)))
        head = int(1280 * w)
    if arch['channels'] is not None:
        outs = [int(c) for c in arch['channels']]
        if len(outs) != num_blocks:
            raise ValueError(
                f'ReXNet: arch["channels"] has {len(outs)} entries but the '
                f'layout {layers} has {num_blocks} blocks'
            )
    if arch['head_ch'] is not None:
        head = int(arch['head_ch'])
    return stem, [stem] + outs[:-1], outs, head


def rexnet_mid_channels(arch: dict[str, Any], in_channels: list[int]) -> list[int]:
    """Per-block expansion widths: ``arch['mid_channels']`` where given, else the input
    width times ``expansion`` (1 for the first block).

    Example:
        >>> a = ReXNet.resolve_arch('1.0')
        >>> _, cin, _, _ = rexnet_channels(a)
        >>> rexnet_mid_channels(a, cin)[:3]
        [32, 96, 162]
        >>> rexnet_mid_channels({**a, 'mid_channels': [None, 64] + [None] * 14}, cin)[:3]
        [32, 64, 162]
    """
    n = len(in_channels)
    mids = [c * (1 if b == 0 else arch['expansion']) for b, c in enumerate(in_channels)]
    given = arch.get('mid_channels')
    if given is None:
        return mids
    if len(given) != n:
        raise ValueError(
            f'ReXNet: arch["mid_channels"] has {len(given)} entries but the layout has '
            f'{n} blocks'
        )
    for b, m in enumerate(given):
        if m is not None:
            if int(m) != m or m < 1:
                raise ValueError(
                    f'ReXNet: arch["mid_channels"][{b}] must be a positive int or None, got {m!r}'
                )
            mids[b] = int(m)
    return mids


@MODELS.register_module()
class ReXNet(BaseBackbone):
    """ReXNet and ReXNet-lite backbone (Han et al., CVPR 2021).

    Taps (``feature_info``) for ``'1.0'``: 0: 16@/2, 1: 38@/4, 2: 61@/8, 3: 128@/16,
    4: 185@/32, 5: 1280 (head 1x1 conv, built only when selected).

    Args:
        arch (str | dict): A preset ('0.9', '1.0', '1.3', '1.5', '2.0', '2.2', '3.0',
            'lite-1.0', 'lite-1.3', 'lite-1.5', 'lite-2.0') or a dict overriding keys of
            the default arch (``width_mult``, ``depth_mult``, ``lite``, ``channels``, ...).
            Default: '1.0'.
        out_indices (Sequence[int]): Taps to return. Default: (1, 2, 3, 4), strides 4-32.
        norm_cfg (dict): Norm layers. Default: BN.
        act_cfg (dict | None): The "complex" activation after the stem, the expansion
            convs and the head; ``None`` = SiLU (lite: ReLU6).
        init_cfg (dict | list[dict] | None): Default: Kaiming (fan_out) convs, BN = 1.
        widen_factor (float): Width multiplier on top of the arch's ``width_mult`` (the
            name every family shares). Default: 1.0.
        **kwargs: The contract's arguments (``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``output_stride``, ``feature_location``, ``padding``), see ``BaseBackbone``.

    Example:
        >>> import torch
        >>> from mmbackbones.models import ReXNet
        >>> m = ReXNet('1.0').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 38, 56, 56), (1, 61, 28, 28), (1, 128, 14, 14), (1, 185, 7, 7)]
    """

    arch_settings = {
        **{
            k: dict(width_mult=float(k)) for k in ('0.9', '1.0', '1.3', '1.5', '2.0', '2.2', '3.0')
        },
        **{
            f'lite-{k}': dict(width_mult=float(k), lite=True, use_se=False)
            for k in ('1.0', '1.3', '1.5', '2.0')
        },
    }
    default_arch = DEFAULT_ARCH
    positive_arch_keys = ('width_mult', 'depth_mult', 'se_ratio', 'input_ch', 'expansion')
    paddings = PADDINGS  # 'tf_same' for TensorFlow-trained weights

    def __init__(
        self,
        arch: str | dict = '1.0',
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
        widen_factor: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(out_indices=out_indices, init_cfg=init_cfg, **kwargs)
        self.arch = self.resolve_arch(arch)
        self.widen_factor = widen_factor
        lite = self.arch['lite']
        self.norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        relu6 = dict(type='ReLU6', inplace=True)
        if act_cfg is None:
            act_cfg = relu6 if lite else dict(type='SiLU', inplace=True)
        self.act_cfg = act_cfg

        def block_kwargs(i: int, spec: BlockSpec) -> dict[str, Any]:
            se_cfg = None
            if spec.se_channels:
                se_cfg = dict(
                    reduced_channels=spec.se_channels,
                    norm_cfg=self.norm_cfg,
                    act_cfg=dict(type='ReLU', inplace=True),
                )
            return dict(
                norm_cfg=self.norm_cfg,
                expand_act_cfg=act_cfg,
                # lite: ReLU6 right after the dw conv; v1: dw -> BN -> SE -> ReLU6.
                dw_act_cfg=relu6 if lite else None,
                se_cfg=se_cfg,
                post_se_act_cfg=None if lite else relu6,
            )

        layout = self.layout(self.arch, widen_factor=widen_factor)
        self.build_layout(layout, block_kwargs, self.norm_cfg, act_cfg)

    @classmethod
    def layout(cls, arch: str | dict, widen_factor: float = 1.0) -> list[BlockSpec]:
        """The stem, the 16 (x ``depth_mult``) blocks and the head of ``arch``.

        Example:
            >>> [s.out_channels for s in ReXNet.layout('1.0')][-3:]
            [174, 185, 1280]
        """
        a = cls.resolve_arch(arch)
        if widen_factor != 1.0:
            if not widen_factor > 0:
                raise ValueError(f'ReXNet: widen_factor must be > 0, got {widen_factor!r}')
            a['width_mult'] = a['width_mult'] * widen_factor
        stem, ins, outs, head = rexnet_channels(a)
        mids = rexnet_mid_channels(a, ins)
        depths = [ceil(n * a['depth_mult']) for n in a['layers']]
        specs = [BlockSpec('stem', 3, stem, stem, 3, 2, 0)]
        b = 0
        for stage, (n, first_stride) in enumerate(zip(depths, a['strides']), start=1):
            use_se = a['use_se'] and a['se_stages'][stage - 1]
            for j in range(n):
                se = mids[b] // a['se_ratio'] if use_se else 0
                if use_se and se < 1:
                    raise ValueError(
                        f'ReXNet: block {b} has SE but its expansion width {mids[b]} is '
                        f'below se_ratio {a["se_ratio"]}'
                    )
                specs.append(
                    BlockSpec(
                        'block', ins[b], outs[b], mids[b], a['kernel_sizes'][stage - 1],
                        first_stride if j == 0 else 1, stage, se_channels=se,
                        se_norm=use_se, shortcut='partial',
                    )
                )  # fmt: skip
                b += 1
        hidden = 1024 if a['lite'] else 0  # the lite classifier's conv-BN-ReLU6
        specs.append(
            BlockSpec('head', outs[-1], head, head, 1, 1, len(depths), hidden_channels=hidden)
        )
        return specs

    @classmethod
    def classifier_complexity(cls, cx: Cx, head: BlockSpec, num_classes: int) -> Cx:
        """Pool -> 1x1 conv (lite: 1024-wide conv -> BN first), as :meth:`make_classifier`."""
        c = head.out_channels
        if head.hidden_channels:
            norm_cx(linear_cx(cx, c, head.hidden_channels), head.hidden_channels)
            c = head.hidden_channels
        return linear_cx(cx, c, num_classes)

    def make_classifier(self, num_classes: int = 1000) -> nn.Module:
        """The authors' classifier: pool -> dropout 0.2 -> 1x1 conv (lite: a 1024-wide
        conv-BN-ReLU6 first)."""
        c = self.feature_info[-1]['num_chs']
        if self.arch['lite']:
            return nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(c, 1024, 1),
                build_norm_layer(self.norm_cfg, 1024)[1],
                nn.ReLU6(inplace=True),
                nn.Dropout(0.2),
                nn.Conv2d(1024, num_classes, 1),
                nn.Flatten(1),
            )
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Dropout(0.2), nn.Conv2d(c, num_classes, 1), nn.Flatten(1)
        )

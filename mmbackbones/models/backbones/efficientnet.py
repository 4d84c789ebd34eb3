"""EfficientNet: "Rethinking Model Scaling for Convolutional Neural Networks" (Tan & Le,
ICML 2019).

What is implemented here:

* The NAS-found baseline B0 (paper Table 1) as data: a 3x3/2 stem with 32 channels, seven
  stages of MBConv blocks (inverted residual + squeeze-and-excitation + swish) and a 1x1
  "head" conv with 1280 channels.
* **Compound scaling** (paper Section 3.3, Eq. 3) as pure functions: depth ``d = alpha**phi``,
  width ``w = beta**phi`` and resolution ``r = gamma**phi`` with ``alpha=1.2``, ``beta=1.1``,
  ``gamma=1.15``. A stage with ``n`` blocks gets ``ceil(n * d)``; a layer with ``c``
  channels gets ``make_divisible(c * w, 8)`` (nearest multiple of 8, never more than 10%
  down), the authors' ``round_repeats`` / ``round_filters``.
* The published B0-B7 ``(width, depth, resolution, dropout)`` table as data; the
  authors picked those pairs by hand near ``alpha**phi`` / ``beta**phi`` (see
  :func:`compound_scaling`).
* MBConv: [1x1 expand -> BN -> swish] -> kxk depthwise -> BN -> swish -> SE -> 1x1 project
  -> BN, plus the identity shortcut where stride is 1 and channels match. SE squeezes to
  ``max(1, int(block_input_channels * 0.25))`` channels with swish inside and a sigmoid
  gate. Stochastic depth ("drop connect") on the residual branch grows linearly with the
  block index, ``drop_path_rate * i / num_blocks`` (the authors', timm's and torchvision's
  schedule).
* **EfficientNet-Lite** (the authors' ``efficientnet/lite`` builder, for mobile
  accelerators and quantization): the same stages without SE, ReLU6 instead of swish, and
  neither the stem (32), the head (1280) nor the repeats of the first and last stage
  scaled; presets ``lite0``-``lite4`` (timm's ``efficientnet_lite*``).
* ``padding='tf_same'`` (the contract's option) reproduces TensorFlow's padding, which the
  authors' weights (timm's ``tf_*`` ports, ``efficientnet_pytorch`` files) were trained with.
"""

from __future__ import annotations

from math import ceil
from typing import Any

import torch.nn as nn

from mmbackbones.registry import MODELS

from ..layers import PADDINGS, make_divisible
from .base import BaseBackbone, BlockSpec

# Compound-scaling coefficients found by grid search on B0 (paper Section 4):
# alpha * beta**2 * gamma**2 ~= 2, so each step of phi roughly doubles the FLOPs.
ALPHA = 1.2  # depth
BETA = 1.1  # width
GAMMA = 1.15  # resolution
BASE_RESOLUTION = 224

# The B0 baseline (paper Table 1), one row per MBConv stage; the first block of a stage
# takes its stride, the others have stride 1.
# expand ratio, kernel, stride, out channels, repeats
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)

# The published family (authors' efficientnet_builder.py, paper Table 2):
# width, depth, resolution, dropout
EFFICIENTNET_PRESETS: dict[str, tuple[float, float, int, float]] = {
    'b0': (1.0, 1.0, 224, 0.2),
    'b1': (1.0, 1.1, 240, 0.2),
    'b2': (1.1, 1.2, 260, 0.3),
    'b3': (1.2, 1.4, 300, 0.3),
    'b4': (1.4, 1.8, 380, 0.4),
    'b5': (1.6, 2.2, 456, 0.4),
    'b6': (1.8, 2.6, 528, 0.5),
    'b7': (2.0, 3.1, 600, 0.5),
}
# EfficientNet-Lite (authors' efficientnet_lite_builder.py): same columns.
LITE_PRESETS: dict[str, tuple[float, float, int, float]] = {
    'lite0': (1.0, 1.0, 224, 0.2),
    'lite1': (1.0, 1.1, 240, 0.2),
    'lite2': (1.1, 1.2, 260, 0.3),
    'lite3': (1.2, 1.4, 280, 0.3),
    'lite4': (1.4, 1.8, 300, 0.3),
}
# what makes a Lite model (efficientnet_lite_builder.py): no SE ("not well supported on
# many lite devices"), ReLU6 ("for easier quantization"), stem and head not scaled
LITE = dict(se_ratio=0.0, act='ReLU6', fix_stem_head=True)

# The arch dict: keys and defaults (EfficientNet.default_arch).
DEFAULT_ARCH: dict[str, Any] = dict(
    phi=None,  # compound coefficient; sets width, depth, resolution (exclusive with them)
    width=1.0,  # width multiplier (beta**phi)
    depth=1.0,  # depth multiplier (alpha**phi)
    resolution=BASE_RESOLUTION,  # the training/eval resolution (metadata, not a layer)
    dropout=0.2,  # dropout before the classifier (make_classifier)
    stages=B0_STAGES,  # base stage table, before scaling (columns as B0_STAGES)
    stem_channels=32,  # before width scaling
    head_channels=1280,  # the final 1x1 conv, before width scaling
    se_ratio=0.25,  # SE squeeze = max(1, int(block input channels * se_ratio)); 0: no SE
    divisor=8,  # channels are rounded to multiples of this
    act='SiLU',  # activation type of stem, blocks, SE and head (act_cfg=None); Lite: ReLU6
    # Lite: stem and head channels and the repeats of the first and last stage unscaled
    fix_stem_head=False,
)


def compound_scaling(
    phi: float,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base_resolution: int = BASE_RESOLUTION,
) -> dict[str, Any]:
    """Depth, width and resolution multipliers for compound coefficient ``phi`` (Eq. 3).

    The published B1-B7 are *near* integer steps of ``phi`` but not on them: the authors
    rounded and hand-tuned the pairs (B1 scales depth only; ``phi=1`` gives B2's
    ``(1.1, 1.2)`` exactly, ``phi=2`` gives ``(1.21, 1.44)`` against B3's ``(1.2, 1.4)``).

    Returns:
        ``dict(width=beta**phi, depth=alpha**phi, resolution=round(224 * gamma**phi))``.

    Example:
        >>> s = compound_scaling(2)
        >>> round(s['width'], 3), round(s['depth'], 3), s['resolution']
        (1.21, 1.44, 296)
    """
    return dict(
        width=beta**phi, depth=alpha**phi, resolution=int(round(base_resolution * gamma**phi))
    )


def scale_width(channels: float, width: float, divisor: int = 8) -> int:
    """The authors' ``round_filters``: ``channels * width`` to the nearest multiple of
    ``divisor``, never rounded down by more than 10%.

    Example:
        >>> scale_width(32, 1.1), scale_width(1280, 1.8), scale_width(40, 1.4)
        (32, 2304, 56)
    """
    return make_divisible(channels * width, divisor)


def scale_depth(repeats: int, depth: float) -> int:
    """The authors' ``round_repeats``: ``ceil(repeats * depth)``.

    Example:
        >>> [scale_depth(n, 1.4) for n in (1, 2, 2, 3, 3, 4, 1)]
        [2, 3, 3, 5, 5, 6, 2]
    """
    return int(ceil(repeats * depth))


@MODELS.register_module()
class EfficientNet(BaseBackbone):
    """EfficientNet B0-B7 and any compound coefficient (Tan & Le, ICML 2019).

    Taps (``feature_info``) for ``'b0'``: 0: 16@/2, 1: 24@/4, 2: 40@/8, 3: 112@/16,
    4: 320@/32, 5: 1280 (head 1x1 conv, built only when selected). For ``'b3'``: 24, 32,
    48, 136, 384, 1536. With ``feature_location='expansion'`` tap 3 is the expansion conv
    of the first stride-32 block (b0: 672 channels).

    Stages (``frozen_stages``): 0 the stem, 1-7 the MBConv stages of :data:`B0_STAGES`;
    the head conv belongs to stage 7.

    Args:
        arch (str | dict): A preset ``'b0'`` ... ``'b7'`` (the published table
            :data:`EFFICIENTNET_PRESETS`), ``'lite0'`` ... ``'lite4'`` (EfficientNet-Lite,
            :data:`LITE_PRESETS`) or a dict with any of the keys:
            ``phi`` (compound coefficient: ``width=1.1**phi``, ``depth=1.2**phi``,
            ``resolution=224*1.15**phi``; cannot be combined with ``width``/``depth``),
            ``width`` and ``depth`` (explicit multipliers, default 1.0), ``resolution``
            (metadata), ``dropout`` (classifier dropout, default 0.2), ``stages`` (base
            stage table, rows ``(expand, kernel, stride, channels, repeats)``),
            ``stem_channels`` (32), ``head_channels`` (1280), ``se_ratio`` (0.25; 0 for
            no SE), ``divisor`` (8), ``act`` (the activation type, 'SiLU') and
            ``fix_stem_head`` (Lite: stem, head and the first and last stage's repeats are
            not scaled; False). Default: 'b0'.
        out_indices (Sequence[int]): Taps to return. Default: (1, 2, 3, 4), strides 4-32.
        norm_cfg (dict | None): Norm layers. ``None`` = BN with eps 1e-3 and momentum 0.01,
            the paper's TF settings (TF's decay 0.99 is PyTorch's momentum 0.01).
        act_cfg (dict | None): Activation of the stem, the blocks (SE included) and the head;
            ``None`` = the arch's ``act``: SiLU (swish), Lite: ReLU6.
        drop_path_rate (float): Stochastic depth of the last block; block ``i`` of ``n``
            drops its residual branch with ``drop_path_rate * i / n``. Default: 0.2.
        init_cfg (dict | list[dict] | None): mmengine init config. ``None`` = Kaiming
            fan-out for convs, ones for norms.
        **kwargs: The contract's arguments (``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``output_stride``, ``feature_location``, ``padding``), see ``BaseBackbone``.

    Example:
        >>> import torch
        >>> from mmbackbones.models.backbones.efficientnet import EfficientNet
        >>> m = EfficientNet('b0').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 24, 56, 56), (1, 40, 28, 28), (1, 112, 14, 14), (1, 320, 7, 7)]
        >>> EfficientNet(dict(phi=1), out_indices=(4, 5)).out_channels
        [352, 1408]
    """

    arch_settings = {
        **{
            name: dict(width=w, depth=d, resolution=r, dropout=p)
            for name, (w, d, r, p) in EFFICIENTNET_PRESETS.items()
        },
        **{
            name: dict(width=w, depth=d, resolution=r, dropout=p, **LITE)
            for name, (w, d, r, p) in LITE_PRESETS.items()
        },
    }

    default_arch = DEFAULT_ARCH
    positive_arch_keys = ('width', 'depth', 'divisor', 'stem_channels', 'head_channels')
    paddings = PADDINGS  # 'tf_same' for TensorFlow-trained weights

    def __init__(
        self,
        arch: str | dict = 'b0',
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        drop_path_rate: float = 0.2,
        init_cfg: dict | list[dict] | None = None,
        widen_factor: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(out_indices=out_indices, init_cfg=init_cfg, **kwargs)
        self.arch = self.resolve_arch(arch)
        self.widen_factor = widen_factor
        self.norm_cfg = dict(type='BN', eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.act_cfg = dict(type=self.arch['act'], inplace=True) if act_cfg is None else act_cfg
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(
                f'EfficientNet: drop_path_rate must be in [0, 1), got {drop_path_rate!r}'
            )
        self.drop_path_rate = drop_path_rate
        layout = self.layout(self.arch, widen_factor)
        num_blocks = sum(s.kind == 'block' for s in layout)

        def block_kwargs(i: int, spec: BlockSpec) -> dict[str, Any]:
            se_cfg = None
            if spec.se_channels:
                se_cfg = dict(
                    reduced_channels=spec.se_channels,
                    act_cfg=self.act_cfg,
                    gate_cfg=dict(type='Sigmoid'),
                )
            return dict(
                norm_cfg=self.norm_cfg,
                expand_act_cfg=self.act_cfg,
                dw_act_cfg=self.act_cfg,
                se_cfg=se_cfg,
                drop_path_rate=drop_path_rate * i / num_blocks,
            )

        self.build_layout(layout, block_kwargs, self.norm_cfg, self.act_cfg)

    @classmethod
    def resolve_arch(cls, arch: str | dict) -> dict[str, Any]:
        """The full arch dict of a preset name or a custom dict, with compound scaling
        of a ``phi`` dict applied and sanity checks (no layers are built).

        Example:
            >>> a = EfficientNet.resolve_arch(dict(phi=1))
            >>> round(a['width'], 3), round(a['depth'], 3), a['resolution'], a['dropout']
            (1.1, 1.2, 258, 0.2)
        """
        if isinstance(arch, dict) and arch.get('phi') is not None:
            both = sorted({'width', 'depth', 'resolution'} & set(arch))
            if both:
                raise ValueError(
                    f'EfficientNet: arch gives phi and {both}; phi sets width, '
                    f'depth and resolution (alpha=1.2, beta=1.1, gamma=1.15), '
                    f'give either phi or explicit multipliers'
                )
        resolved = super().resolve_arch(arch)
        if resolved['phi'] is not None:
            resolved.update(compound_scaling(resolved['phi']))
            resolved['phi'] = None  # applied: the dict now holds the multipliers
        stages = resolved['stages']
        if not stages or any(len(row) != 5 for row in stages):
            raise ValueError(
                f'EfficientNet: arch["stages"] must be a non-empty list of '
                f'(expand, kernel, stride, channels, repeats) rows, got {stages!r}'
            )
        return resolved

    @classmethod
    def layout(cls, arch: str | dict, widen_factor: float = 1.0) -> list[BlockSpec]:
        """The arch's base stage table with its width (x ``widen_factor``) and depth
        multipliers applied: the stem, the MBConv blocks and the head conv (with
        ``fix_stem_head``, Lite's rule, the stem, the head and the first and last stage's
        repeats keep their base values).

        Example:
            >>> specs = EfficientNet.layout('b0')
            >>> len(specs), [s.out_channels for s in specs[:5]], specs[-1].out_channels
            (18, [32, 16, 24, 24, 40], 1280)
            >>> specs = EfficientNet.layout('lite4')
            >>> len(specs), [s.out_channels for s in specs[:3]], specs[-1].out_channels
            (32, [32, 24, 32], 1280)
        """
        a = cls.resolve_arch(arch)
        if not widen_factor > 0:
            raise ValueError(f'EfficientNet: widen_factor must be > 0, got {widen_factor!r}')
        w, d, div = a['width'] * widen_factor, a['depth'], a['divisor']
        fixed = a['fix_stem_head']
        stem = a['stem_channels'] if fixed else scale_width(a['stem_channels'], w, div)
        specs = [BlockSpec('stem', 3, stem, stem, 3, 2, 0)]
        in_ch = stem
        last = len(a['stages'])
        for stage, (expand, k, stride, out, repeats) in enumerate(a['stages'], start=1):
            out_ch = scale_width(out, w, div)
            if not (fixed and stage in (1, last)):
                repeats = scale_depth(repeats, d)
            for j in range(repeats):
                mid = make_divisible(in_ch * expand, div) if expand != 1 else in_ch
                se = max(1, int(in_ch * a['se_ratio'])) if a['se_ratio'] else 0
                specs.append(
                    BlockSpec(
                        'block', in_ch, out_ch, mid, k, stride if j == 0 else 1, stage, se,
                        shortcut='full',
                    )
                )  # fmt: skip
                in_ch = out_ch
        head = a['head_channels'] if fixed else scale_width(a['head_channels'], w, div)
        specs.append(BlockSpec('head', in_ch, head, head, 1, 1, specs[-1].stage))
        return specs

    def make_classifier(self, num_classes: int = 1000) -> nn.Module:
        """The paper's classifier: pool -> dropout (the preset's rate) -> linear."""
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Dropout(self.arch['dropout']),
            nn.Linear(self.feature_info[-1]['num_chs'], num_classes),
        )

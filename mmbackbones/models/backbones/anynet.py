"""AnyNet (pycls): a stem, then stages of identical blocks, as per-stage lists.

Papers:

* Radosavovic et al., "On Network Design Spaces for Visual Recognition" (ICCV 2019): the
  AnyNet-style parameterised families (Vanilla, ResNet, ResNeXt) sampled as design spaces.
* Radosavovic et al., "Designing Network Design Spaces" (CVPR 2020): AnyNetX, the
  per-stage (depth, width, bottleneck multiplier, group width) network that RegNet's
  generator feeds (``regnet.py``).

Following pycls (facebookresearch/pycls ``anynet.py``, ``regnet.py``, ``blocks.py``), the
architecture is data: an AnyNet arch dict holds a stem, a block type and per-stage lists
(depth, width, stride, bottleneck multiplier, group width, SE ratio). RegNet
(``regnet.py``) and ResNeXt (``resnext.py``) are *translations* into that dict
(:meth:`AnyNet.to_anynet`), so all three build through the same code, and every stem and
block (``models/layers/residual.py``) has a static ``complexity`` method, so that
:func:`anynet_complexity` scores an arch with pure arithmetic, without building it.

Stems (``stem_type``; pycls name in brackets):

* ``'imagenet'`` (``simple_stem_in``): 3x3 stride-2 conv, BN, ReLU; ``stem_w`` 32.
* ``'resnet'`` (``res_stem_in``): 7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool;
  ``stem_w`` 64 (ResNet/ResNeXt).
* ``'cifar'`` (``res_stem_cifar``): 3x3 stride-1 conv, BN, ReLU; ``stem_w`` 16 (the NDS
  design-space study on 32x32 CIFAR inputs).

Blocks (``block_type``): ``'vanilla'``, ``'res_basic'``, ``'res_bottleneck'`` (see
``models/layers/residual.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn as nn

from mmbackbones.complexity import Cx, conv_cx, linear_cx, maxpool_cx, norm_cx
from mmbackbones.registry import MODELS

from ..layers import BLOCK_ALIASES, BLOCKS, ConvNormAct, ResBottleneckBlock, ResidualBlock
from .base import BaseBackbone, LayerSpec, StrideSchedule

# ---------------------------------------------------------------------------------------
# Stems, as data: (kernel, stride, max-pool after it, default width)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StemCfg:
    kernel: int
    stride: int
    maxpool: bool
    default_w: int


STEMS: dict[str, StemCfg] = {
    'imagenet': StemCfg(3, 2, False, 32),  # pycls simple_stem_in (RegNet)
    'resnet': StemCfg(7, 2, True, 64),  # pycls res_stem_in (ResNet/ResNeXt)
    'cifar': StemCfg(3, 1, False, 16),  # pycls res_stem_cifar (NDS on CIFAR)
}
_STEM_ALIASES = {'simple_stem_in': 'imagenet', 'res_stem_in': 'resnet', 'res_stem_cifar': 'cifar'}


# ---------------------------------------------------------------------------------------
# The AnyNet arch: defaults, validation, complexity
# ---------------------------------------------------------------------------------------

_ANYNET_DEFAULT_ARCH: dict[str, Any] = dict(
    stem_type='imagenet',  # 'imagenet' | 'resnet' | 'cifar' (see module docstring)
    stem_w=None,  # stem channels; None = the stem's default (32 / 64 / 16)
    block_type='res_bottleneck',  # 'vanilla' | 'res_basic' | 'res_bottleneck'
    depths=None,  # per stage: number of blocks (required)
    widths=None,  # per stage: output channels (required)
    strides=None,  # per stage; None = 2 everywhere, 1 for the first stage after a
    #               'resnet' (already /4) or 'cifar' stem
    bot_muls=None,  # per stage (res_bottleneck only); None = 1.0
    group_ws=None,  # per stage (res_bottleneck only): channels per group; None = dense
    se_ratio=0.0,  # scalar or per stage (res_bottleneck only): SE width / block input
)


@dataclass(frozen=True)
class StageCfg:
    """One resolved AnyNet stage (what pycls's ``AnyStage`` receives)."""

    depth: int
    width: int
    stride: int
    bot_mul: float | None
    group_w: int | None
    se_ratio: float


def _per_stage(arch: dict, key: str, n: int, default: Any) -> list:
    value = arch[key]
    if value is None:
        return [default] * n
    if key == 'se_ratio' and isinstance(value, (int, float)):
        return [value] * n
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise ValueError(
            f'AnyNet: arch[{key!r}] must be a list with one entry per stage '
            f'({n}, as depths), got {value!r}'
        )
    return list(value)


def resolve_anynet_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """Validate an AnyNet arch dict and complete it with the defaults.

    Returns a new dict with canonical names (``stem_type``, ``block_type``), an int
    ``stem_w`` and per-stage lists everywhere (``se_ratio`` included). Anything a block
    cannot be built from raises ``ValueError`` naming the stage.

    Example:
        >>> a = resolve_anynet_arch(dict(depths=[1, 2], widths=[32, 64], group_ws=[8, 8]))
        >>> a['stem_w'], a['strides'], a['bot_muls'], a['se_ratio']
        (32, [2, 2], [1.0, 1.0], [0.0, 0.0])
    """
    unknown = sorted(set(arch) - set(_ANYNET_DEFAULT_ARCH))
    if unknown:
        raise ValueError(
            f'AnyNet: unknown arch keys {unknown}; valid keys are '
            f'{sorted(_ANYNET_DEFAULT_ARCH)}'
        )
    a = {**_ANYNET_DEFAULT_ARCH, **arch}
    stem_type = _STEM_ALIASES.get(a['stem_type'], a['stem_type'])
    if stem_type not in STEMS:
        raise ValueError(
            f'AnyNet: unknown stem_type {a["stem_type"]!r}; valid types are {sorted(STEMS)}'
        )
    block_type = BLOCK_ALIASES.get(a['block_type'], a['block_type'])
    if block_type not in BLOCKS:
        raise ValueError(
            f'AnyNet: unknown block_type {a["block_type"]!r}; valid types are {sorted(BLOCKS)}'
        )
    if a['depths'] is None or a['widths'] is None:
        raise ValueError('AnyNet: arch needs per-stage lists "depths" and "widths"')
    n = len(a['depths'])
    if n == 0:
        raise ValueError('AnyNet: arch needs at least one stage')
    stem_w = STEMS[stem_type].default_w if a['stem_w'] is None else a['stem_w']
    first_stride = 1 if stem_type in ('resnet', 'cifar') else 2
    depths = [int(d) for d in _per_stage(a, 'depths', n, None)]
    widths = [int(w) for w in _per_stage(a, 'widths', n, None)]
    strides = a['strides']
    strides = (
        [first_stride] + [2] * (n - 1)
        if strides is None
        else [int(s) for s in _per_stage(a, 'strides', n, None)]
    )
    bottleneck = block_type == 'res_bottleneck'
    if not bottleneck:
        for key, trivial in (('bot_muls', None), ('group_ws', None), ('se_ratio', 0.0)):
            if any(v != trivial for v in _per_stage(a, key, n, trivial)):
                raise ValueError(
                    f'AnyNet: arch[{key!r}] applies only to '
                    f"block_type='res_bottleneck', got {a[key]!r} for "
                    f'{block_type!r}'
                )
    bot_muls = _per_stage(a, 'bot_muls', n, 1.0) if bottleneck else [None] * n
    group_ws = _per_stage(a, 'group_ws', n, None) if bottleneck else [None] * n
    se_ratios = [float(r) for r in _per_stage(a, 'se_ratio', n, 0.0)]
    if not isinstance(stem_w, int) or stem_w < 1:
        raise ValueError(f'AnyNet: stem_w must be a positive int, got {stem_w!r}')
    for i in range(n):
        where = f'AnyNet: stage {i + 1}'
        if depths[i] < 1 or widths[i] < 1:
            raise ValueError(
                f'{where}: depth and width must be >= 1, got depth '
                f'{depths[i]}, width {widths[i]}'
            )
        if strides[i] not in (1, 2):
            raise ValueError(f'{where}: stride must be 1 or 2, got {strides[i]}')
        if se_ratios[i] < 0:
            raise ValueError(f'{where}: se_ratio must be >= 0, got {se_ratios[i]}')
        if bottleneck:
            if bot_muls[i] is None or bot_muls[i] <= 0:
                raise ValueError(f'{where}: bot_mul must be > 0, got {bot_muls[i]}')
            w_b = int(round(widths[i] * bot_muls[i]))
            g = group_ws[i]
            if w_b < 1:
                raise ValueError(
                    f'{where}: bottleneck width round({widths[i]} * {bot_muls[i]}) is 0'
                )
            if g is not None and (int(g) != g or g < 1 or w_b % g):
                raise ValueError(
                    f'{where}: group width {g} must divide the bottleneck width {w_b} '
                    f'(= round({widths[i]} * {bot_muls[i]})); adjust_block_compatibility() '
                    'makes widths and group widths compatible'
                )
            group_ws[i] = None if g is None else int(g)
    return dict(
        stem_type=stem_type,
        stem_w=stem_w,
        block_type=block_type,
        depths=depths,
        widths=widths,
        strides=strides,
        bot_muls=bot_muls,
        group_ws=group_ws,
        se_ratio=se_ratios,
    )


def anynet_stages(arch: dict[str, Any]) -> list[StageCfg]:
    """Per-stage configs of a *resolved* arch (see :func:`resolve_anynet_arch`)."""
    return [
        StageCfg(*s)
        for s in zip(
            arch['depths'],
            arch['widths'],
            arch['strides'],
            arch['bot_muls'],
            arch['group_ws'],
            arch['se_ratio'],
        )
    ]


# ---------------------------------------------------------------------------------------
# The backbone
# ---------------------------------------------------------------------------------------


def _nds_cifar(block_type: str, depth: int) -> dict[str, Any]:
    """pycls's CIFAR baselines of the NDS paper: 16-wide stem, three stages of ``depth``."""
    return dict(
        stem_type='cifar',
        stem_w=16,
        block_type=block_type,
        depths=[depth] * 3,
        widths=[16, 32, 64],
        strides=[1, 2, 2],
    )


@MODELS.register_module()
class AnyNet(BaseBackbone):
    """AnyNet (pycls): a stem, then stages of identical blocks, as per-stage lists.

    Stage 0 is the stem (with its max-pool for ``stem_type='resnet'``), stage k the k-th
    list entry. Taps (``feature_info``) are the last layer at each reduction: for ImageNet
    stems 0: stem@/2, 1-4: the four stages @/4../32; for the CIFAR stem the stage outputs
    @/1, /2, /4. This family has no expansion layer, so ``feature_location='expansion'``
    raises ``ValueError``. The classifier (``make_classifier``) is the base class's
    global average pool -> linear, pycls's ``AnyHead``.

    Args:
        arch (str | dict): A preset name (``'nds_r56'``, ``'nds_v56'``, ``'nds_r110'``:
            pycls's CIFAR ResNet/Vanilla baselines) or an arch dict with keys
            ``stem_type``, ``stem_w``, ``block_type``, ``depths``, ``widths``,
            ``strides``, ``bot_muls``, ``group_ws``, ``se_ratio`` (see
            :func:`resolve_anynet_arch`).
        out_indices (Sequence[int] | None): Taps to return; ``None`` = every stage output
            (taps 1-4 for ImageNet stems, 0-2 for the CIFAR stem). Default: None.
        norm_cfg (dict | None): Norm config. Default: BN.
        act_cfg (dict | None): Activation config. Default: ReLU.
        init_cfg (dict | list[dict] | None): Default: Kaiming (fan_out) convs, BN = 1.
        **kwargs: The contract's arguments (``frozen_stages``, ``norm_eval``, ``with_cp``,
            ``output_stride``), see ``BaseBackbone``.

    Example:
        >>> import torch
        >>> arch = dict(stem_type='imagenet', block_type='res_bottleneck',
        ...             depths=[1, 1, 2, 1], widths=[32, 64, 128, 256], group_ws=[8] * 4)
        >>> m = AnyNet(arch).eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 32, 56, 56), (1, 64, 28, 28), (1, 128, 14, 14), (1, 256, 7, 7)]
    """

    arch_settings: ClassVar[dict[str, Any]] = {
        # pycls configs/archive/cifar/anynet/{R-56,V-56,R-110}_nds_1gpu.yaml
        'nds_r56': _nds_cifar('res_basic', 9),
        'nds_v56': _nds_cifar('vanilla', 9),
        'nds_r110': _nds_cifar('res_basic', 18),
    }
    #: Keys (and defaults) of this family's arch dict.
    default_arch: ClassVar[dict[str, Any]] = _ANYNET_DEFAULT_ARCH

    def __init__(
        self,
        arch: str | dict,
        out_indices: Sequence[int] | None = None,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            out_indices=() if out_indices is None else out_indices, init_cfg=init_cfg, **kwargs
        )
        if self.feature_location != 'bottleneck':
            raise ValueError(
                f"{type(self).__name__}: feature_location='expansion' is not "
                'supported: AnyNet/RegNet/ResNeXt blocks have no expansion '
                "layer (use 'bottleneck')"
            )
        self.arch = self.resolve_arch(arch)
        self.anynet_arch = resolve_anynet_arch(self._family_to_anynet(self.arch))
        self.norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        self.act_cfg = dict(type='ReLU', inplace=True) if act_cfg is None else act_cfg
        specs = self._layer_specs(self.anynet_arch)
        if out_indices is None:
            self._requested_out_indices = self._stage_output_taps(specs)
        self._build(specs)

    # ------------------------------------------------------------ arch translation
    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        """This family's (resolved) arch dict -> an AnyNet arch dict."""
        return arch

    @classmethod
    def to_anynet(cls, arch: str | dict) -> dict[str, Any]:
        """The resolved AnyNet arch of a preset name or arch dict of this family.

        Example:
            >>> from mmbackbones.models import ResNeXt
            >>> ResNeXt.to_anynet('50_32x4d')['group_ws']
            [4, 8, 16, 32]
        """
        return resolve_anynet_arch(cls._family_to_anynet(cls.resolve_arch(arch)))

    @classmethod
    def layout(cls, arch: str | dict) -> list[StageCfg]:
        """The per-stage configs of a preset name or arch dict of this family (the stem
        is the resolved arch's ``stem_type`` / ``stem_w``, see :meth:`to_anynet`).

        Example:
            >>> from mmbackbones.models import RegNet
            >>> [(s.depth, s.width, s.group_w) for s in RegNet.layout('regnetx_400mf')]
            [(1, 32, 16), (2, 64, 16), (7, 160, 16), (12, 384, 16)]
        """
        return anynet_stages(cls.to_anynet(arch))

    @classmethod
    def features_complexity(
        cls, cx: Cx, sched: StrideSchedule, arch: str | dict, in_channels: int, **kwargs: Any
    ) -> int:
        """The stem and the stages of ``arch`` (pycls's ``complexity`` functions, each
        stage's identical blocks counted once and scaled); returns the last width, which
        the classifier (global pool + linear) reads.

        Of the two conventions, ``'pycls'`` gives the figures of pycls's model zoo and of
        REFERENCE.md; ``pycls - counted`` is exactly ``flops: sum over SE blocks of
        (w_se + w_b), plus num_classes`` and ``acts: stem_w * H/4 * W/4`` for the
        ``'resnet'`` stem.

        Example:
            >>> from mmbackbones.models import RegNet
            >>> cx = RegNet.complexity('regnetx_400mf')
            >>> cx.flops, cx.params, cx.acts
            (397678568, 5157512, 3143272)
        """
        a = cls.to_anynet(arch)
        stem = STEMS[a['stem_type']]
        conv_cx(cx, in_channels, a['stem_w'], stem.kernel, sched.step(stem.stride)[0])
        norm_cx(cx, a['stem_w'])
        if stem.maxpool:
            maxpool_cx(cx, a['stem_w'], sched.step(2)[0])
        block = BLOCKS[a['block_type']]
        w_in = a['stem_w']
        for st in anynet_stages(a):
            kw = dict(bot_mul=st.bot_mul, group_w=st.group_w, se_ratio=st.se_ratio)
            stride = sched.step(st.stride)[0]
            block.complexity(cx, w_in, st.width, stride, nominal_stride=st.stride, **kw)
            if st.depth > 1:  # the other blocks of a stage are identical: count one, scale
                f0, p0, a0 = cx.flops, cx.params, cx.acts
                block.complexity(cx, st.width, st.width, 1, **kw)
                k = st.depth - 2
                cx.flops += k * (cx.flops - f0)
                cx.params += k * (cx.params - p0)
                cx.acts += k * (cx.acts - a0)
            w_in = st.width
        return w_in

    @classmethod
    def classifier_complexity(cls, cx: Cx, head: Any, num_classes: int) -> Cx:
        """pycls's ``AnyHead``: global average pooling and a linear layer."""
        return linear_cx(cx, head, num_classes)

    # ----------------------------------------------------------------- construction
    def _layer_specs(self, a: dict[str, Any]) -> list[LayerSpec]:
        sched = StrideSchedule(self.output_stride)
        stem = STEMS[a['stem_type']]
        specs = [
            LayerSpec(
                'stem',
                ConvNormAct(
                    3,
                    a['stem_w'],
                    stem.kernel,
                    sched.step(stem.stride)[0],
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg,
                ),
                a['stem_w'],
                sched.nominal,
                stage=0,
                checkpoint=False,
            )
        ]
        if stem.maxpool:
            stride = sched.step(2)[0]
            specs.append(
                LayerSpec(
                    'pool',
                    nn.MaxPool2d(3, stride, 1),
                    a['stem_w'],
                    sched.nominal,
                    stage=0,
                    checkpoint=False,
                )
            )
        block_cls = BLOCKS[a['block_type']]
        w_in = a['stem_w']
        for i, st in enumerate(anynet_stages(a), start=1):
            for j in range(st.depth):
                nominal = st.stride if j == 0 else 1
                stride, dilation = sched.step(nominal)
                kw: dict[str, Any] = dict(norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
                if issubclass(block_cls, ResidualBlock):  # projection at the nominal stride
                    kw['nominal_stride'] = nominal
                if block_cls is ResBottleneckBlock:
                    kw.update(bot_mul=st.bot_mul, group_w=st.group_w, se_ratio=st.se_ratio)
                block = block_cls(w_in, st.width, stride, dilation, **kw)
                specs.append(LayerSpec(f's{i}_b{j + 1}', block, st.width, sched.nominal, stage=i))
                w_in = st.width
        return specs

    @staticmethod
    def _stage_output_taps(specs: list[LayerSpec]) -> tuple[int, ...]:
        """Indices (into the taps ``_build`` will compute) of the taps inside stages."""
        taps = [
            i
            for i, s in enumerate(specs)
            if i == len(specs) - 1 or specs[i + 1].reduction != s.reduction
        ]
        return tuple(k for k, i in enumerate(taps) if specs[i].stage >= 1)


#: Params, FLOPs and activations of an AnyNet arch dict, analytically (partial dicts are
#: completed with the defaults; ``RegNet.complexity`` / ``ResNeXt.complexity`` read those
#: families' archs): :meth:`AnyNet.complexity`.
anynet_complexity = AnyNet.complexity

__all__ = ['AnyNet', 'StageCfg', 'anynet_complexity', 'anynet_stages', 'resolve_anynet_arch']

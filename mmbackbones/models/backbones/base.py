"""The backbone contract shared by every family (DESIGN.md, "The backbone contract").

A family describes its network as a flat, ordered list of :class:`LayerSpec` (stem, blocks,
optional final 1x1 "head" conv), each with its output channels, its *nominal* reduction
(the stride it would have at ``output_stride=32``) and the stage it belongs to. Everything
else is decided here, once, for all families:

* **taps** (``feature_info``): the last layer at each distinct nominal reduction
  (2, 4, 8, 16, 32 for ImageNet stems), in depth order, plus the head conv if the family
  has one. ``out_indices`` index this list; negative indices count from the end.
* **pruning**: layers after the deepest selected tap are never registered, and the head
  conv only when its tap is selected, so unused parameters neither inflate counts nor
  break DDP.
* ``output_stride`` (8/16/32) via :class:`StrideSchedule`, turning later strides into
  dilation; taps keep their index and report their actual reduction.
* ``feature_location='expansion'``: families split the expansion conv off the first
  stride-32 block (:meth:`BaseBackbone.split_here`), which then becomes the stride-16 tap.
* ``padding`` (the mobile families, :attr:`BaseBackbone.paddings`): ``'symmetric'`` or
  TensorFlow's ``'tf_same'`` (``models/layers/padding.py``), for weights trained in TF.
* ``frozen_stages`` (-1 none, 0 stem, k stem + first k stages), ``norm_eval`` over every
  ``_BatchNorm`` (SyncBN included) and ``with_cp`` (activation checkpointing per block),
  re-applied in :meth:`train`.
* ``forward`` returns a tuple of the selected taps.

The three inverted-residual families (ReXNet, MobileNetV3, EfficientNet) publish their
structure as data: ``layout(arch, **kw)`` returns a list of :class:`BlockSpec` (stem,
blocks, head), from which :meth:`BaseBackbone.build_layout` builds the layers (the
``feature_location`` split included) and :meth:`BaseBackbone.complexity` scores the
network analytically; AnyNet, RegNet and ResNeXt publish per-stage configs instead
(``anynet.py``). Every family has ``default_arch``, ``resolve_arch(arch)``,
``layout(arch, **kw)`` and ``complexity(arch, shape, num_classes)``.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmbackbones.complexity import Complexity, Cx, conv_cx, linear_cx, norm_cx

from ..layers import ConvNormAct, InvertedResidual, check_padding

FEATURE_LOCATIONS = ('bottleneck', 'expansion')
OUTPUT_STRIDES = (8, 16, 32)


def _kind(value: Any) -> str | None:
    """What an arch value is, to compare a custom dict with the defaults (``None``: no
    default type to hold it to). Numbers and lists are one kind: several families take a
    number or one per stage (``se_ratio``)."""
    if isinstance(value, bool):
        return 'true or false'
    if isinstance(value, (numbers.Real, list, tuple)):  # numpy scalars too
        return 'a number or a list'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, dict):
        return 'a dict'
    return None


@dataclass
class LayerSpec:
    """One entry of a family's flat layer list.

    Attributes:
        name: Child name inside ``backbone.layers`` (no dots), e.g. ``'stem'``, ``'b3'``.
        module: The layer.
        out_channels: Output channels.
        reduction: Nominal output reduction (as if ``output_stride=32``).
        stage: 0 for the stem, k for the k-th stage (``frozen_stages`` counts these).
        is_head: The final 1x1 expansion conv of the mobile families (its own tap).
        checkpoint: Whether ``with_cp`` checkpoints this layer (blocks, not the stem).
    """

    name: str
    module: nn.Module
    out_channels: int
    reduction: int
    stage: int
    is_head: bool = False
    checkpoint: bool = True


@dataclass(frozen=True)
class BlockSpec:
    """One layer of an inverted-residual family's layout (what ``layout(arch)`` returns).

    A layout is ``[stem, block, ..., block, head]``: the stem is a 3x3 conv, each block an
    :class:`~mmbackbones.models.layers.InvertedResidual`, the head the final 1x1 conv. The
    family's constructor arguments that are not structure (norm and activation configs,
    stochastic depth) are applied by the family when it builds the layers.

    Attributes:
        kind: ``'stem'``, ``'block'`` or ``'head'``.
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Expanded (depthwise) channels of a block; the block has an expansion
            conv exactly when ``mid_channels != in_channels``. Stem and head: ``out``.
        kernel_size: Kernel size (the depthwise conv's for a block).
        stride: Nominal stride (as at ``output_stride=32``).
        stage: 0 for the stem, k for the k-th stage (``frozen_stages``).
        se_channels: Squeeze width of the block's SE; 0 for no SE.
        se_norm: A BatchNorm after the SE squeeze (ReXNet).
        shortcut: ``'full'`` (``out + x``), ``'partial'`` (ReXNet's ``out[:, :c_in] += x``)
            or ``'none'``; applied only where the shapes allow it (:attr:`has_shortcut`).
        act: The family's activation key of the block (MobileNetV3: ``'RE'`` / ``'HS'``);
            ``''`` = the family's activation.
        hidden_channels: Head only: the hidden width of the family's ImageNet classifier
            (0: pool -> linear).

    Example:
        >>> from mmbackbones.models import ReXNet
        >>> stem, b0, b1 = ReXNet.layout('1.0')[:3]
        >>> (stem.out_channels, b0.mid_channels, b1.in_channels, b1.mid_channels,
        ...  b1.out_channels, b1.stride)
        (32, 32, 16, 96, 27, 2)
    """

    kind: str
    in_channels: int
    out_channels: int
    mid_channels: int
    kernel_size: int
    stride: int
    stage: int
    se_channels: int = 0
    se_norm: bool = False
    shortcut: str = 'none'
    act: str = ''
    hidden_channels: int = 0

    @property
    def with_expand(self) -> bool:
        """Whether the block has a 1x1 expansion conv."""
        return self.kind == 'block' and self.mid_channels != self.in_channels

    @property
    def has_shortcut(self) -> bool:
        """Whether the block adds its input (the nominal stride and widths allow it)."""
        if self.kind != 'block' or self.stride != 1:
            return False
        if self.shortcut == 'full':
            return self.in_channels == self.out_channels
        return self.shortcut == 'partial' and self.in_channels <= self.out_channels


def remap_expansion_keys(
    keys: Iterable[str], layer_names: Collection[str], prefix: str = ''
) -> dict[str, str]:
    """The renames that carry weights across ``feature_location`` layouts.

    With ``'expansion'`` the split expansion conv of block N is the layer ``bN_expand``;
    without, it is ``bN.expand``. One converted ImageNet file serves both: given the
    target's layer names (the children of ``layers``), return ``{old key: new key}`` for
    the keys under ``prefix + 'layers.'`` that must move.

    Example:
        >>> remap_expansion_keys(['layers.b12.expand.conv.weight'], {'b12_expand', 'b12'})
        {'layers.b12.expand.conv.weight': 'layers.b12_expand.conv.weight'}
        >>> remap_expansion_keys(['layers.b12_expand.bn.bias'], {'b12'})
        {'layers.b12_expand.bn.bias': 'layers.b12.expand.bn.bias'}
    """
    head = prefix + 'layers.'
    out = {}
    for key in keys:
        if not key.startswith(head):
            continue
        name, _, sub = key[len(head) :].partition('.')
        if f'{name}_expand' in layer_names and sub.startswith('expand.'):
            out[key] = f'{head}{name}_expand.{sub[len("expand.") :]}'
        elif name.endswith('_expand') and name not in layer_names and name[:-7] in layer_names:
            out[key] = f'{head}{name[:-7]}.expand.{sub}'
    return out


class StrideSchedule:
    """Turns nominal strides into (stride, dilation) pairs for a given ``output_stride``.

    Once the actual reduction would exceed ``output_stride``, a layer keeps stride 1 and
    its dilation is multiplied by the stride it gave up (the torchvision/mmseg
    convention); every later layer keeps that dilation.

    Example:
        >>> s = StrideSchedule(16)
        >>> [s.step(k) for k in (2, 2, 2, 2, 1, 2, 1)]
        [(2, 1), (2, 1), (2, 1), (2, 1), (1, 1), (1, 2), (1, 2)]
        >>> s.nominal, s.actual
        (32, 16)
    """

    def __init__(self, output_stride: int = 32) -> None:
        self.output_stride = output_stride
        self.nominal = 1
        self.actual = 1
        self.dilation = 1

    def step(self, stride: int) -> tuple[int, int]:
        self.nominal *= stride
        if self.actual * stride > self.output_stride:
            self.dilation *= stride
            return 1, self.dilation
        self.actual *= stride
        return stride, self.dilation


class BaseBackbone(BaseModule):
    """Base class of every mmbackbones backbone: the shared contract.

    Subclasses set :attr:`arch_settings` (preset name -> arch) and call
    :meth:`_build` with their :class:`LayerSpec` list at the end of ``__init__``.

    Args:
        out_indices (Sequence[int]): Indices into :attr:`feature_info` of the taps to
            return, in depth order. Negative indices count from the end.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and the first k
            stages. Frozen layers are in eval mode with ``requires_grad=False``.
        norm_eval (bool): Keep every BatchNorm (SyncBN included) in eval mode in training.
        with_cp (bool): Activation checkpointing per block (saves memory, costs time).
        output_stride (int): 8, 16 or 32; the later strides become dilation.
        feature_location (str): ``'bottleneck'``: the stride-16 tap is the last stride-16
            block's output (mmdet SSDLite). ``'expansion'``: it is the expansion layer of
            the first stride-32 block (MobileNetV3 paper, torchvision SSDLite).
        padding (str): Convolution padding, one of the family's :attr:`paddings`:
            ``'symmetric'`` (PyTorch's) or, in the mobile families, ``'tf_same'``
            (TensorFlow's ``'SAME'``: what weights trained in TensorFlow need, e.g. timm's
            ``tf_*`` ports and the ``efficientnet_pytorch`` files). Default: 'symmetric'.
        init_cfg (dict | list[dict] | None): mmengine initialisation config; ``None`` =
            :attr:`default_init_cfg`.
        pretrained (str | None): Not an argument to use: mmseg's ``EncoderDecoder`` copies
            a config's ``model.pretrained`` into the backbone. ``None`` is accepted; one of
            our converted weight files becomes the ``Pretrained`` init (deprecated, as in
            mmseg's own backbones); anything else, e.g. the ResNet checkpoint of mmseg's
            base configs, stops with one line that says what to change.
    """

    #: preset name -> arch dict (partial, merged over :attr:`default_arch`)
    arch_settings: ClassVar[dict[str, Any]] = {}
    #: the ``padding`` modes the family builds (the mobile families add ``'tf_same'``)
    paddings: ClassVar[tuple[str, ...]] = ('symmetric',)
    #: every key of the family's arch dict, with its default
    default_arch: ClassVar[dict[str, Any]] = {}
    #: arch keys whose value, a number, must be > 0 (multipliers, ratios, widths)
    positive_arch_keys: ClassVar[tuple[str, ...]] = ()
    #: ``init_cfg`` when none is given: Kaiming (fan-out) convs, norms with weight 1
    default_init_cfg: ClassVar[list[dict]] = [
        dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu'),
        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
    ]

    def __init__(
        self,
        out_indices: Sequence[int],
        frozen_stages: int = -1,
        norm_eval: bool = False,
        with_cp: bool = False,
        output_stride: int = 32,
        feature_location: str = 'bottleneck',
        init_cfg: dict | list[dict] | None = None,
        pretrained: str | None = None,
        padding: str = 'symmetric',
    ) -> None:
        init_cfg = self._pretrained_to_init_cfg(pretrained, init_cfg)
        if init_cfg is None:
            init_cfg = copy.deepcopy(self.default_init_cfg)
        super().__init__(init_cfg=init_cfg)
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(
                f'output_stride must be one of {OUTPUT_STRIDES}, ' f'got {output_stride!r}'
            )
        if feature_location not in FEATURE_LOCATIONS:
            raise ValueError(
                f'feature_location must be one of {FEATURE_LOCATIONS}, '
                f'got {feature_location!r}'
            )
        self.padding = check_padding(padding, type(self).__name__, self.paddings)
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        self._requested_out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.output_stride = output_stride
        self.feature_location = feature_location

    @classmethod
    def _pretrained_to_init_cfg(
        cls, pretrained: str | None, init_cfg: dict | list[dict] | None
    ) -> dict | list[dict] | None:
        """The ``init_cfg`` that mmseg's ``pretrained`` injection means (see Args)."""
        if pretrained is None:
            return init_cfg
        from mmbackbones.checkpoint import converted_meta

        fix = (
            'set model.pretrained=None and put our weights in model.backbone.init_cfg='
            "dict(type='Pretrained', checkpoint=...)"
        )
        if not isinstance(pretrained, str) or converted_meta(pretrained) is None:
            raise ValueError(
                f'{cls.__name__}: got pretrained={pretrained!r}, the model.pretrained of the '
                "base config (mmseg's EncoderDecoder passes it to the backbone); it is not a "
                f'weight file of ours (tools/convert_weights.py writes those): {fix}'
            )
        if init_cfg is not None:
            raise ValueError(
                f'{cls.__name__}: both pretrained={pretrained!r} and init_cfg={init_cfg!r} '
                f'are set; {fix}'
            )
        warnings.warn(
            f'DeprecationWarning: {cls.__name__}: pretrained is deprecated, please use '
            f"init_cfg=dict(type='Pretrained', checkpoint={pretrained!r}) instead",
            stacklevel=3,
        )
        return dict(type='Pretrained', checkpoint=pretrained)

    # ----------------------------------------------------------------- arch helpers
    @classmethod
    def resolve_arch(cls, arch: str | dict) -> dict[str, Any]:
        """Return the full arch dict for a preset name or a (partial) custom dict.

        A preset is looked up in :attr:`arch_settings` (a number names the preset it
        reads as, :meth:`preset_of_number`); a dict is merged over :attr:`default_arch`.
        Unknown names or keys raise ``ValueError`` listing what is valid. Families add
        their own checks.
        """
        default_keys = cls.default_arch
        arch = cls.preset_of_number(arch)
        if isinstance(arch, str):
            if arch not in cls.arch_settings:
                raise ValueError(
                    f'{cls.__name__}: unknown arch {arch!r}; valid presets are '
                    f'{sorted(cls.arch_settings)} or a dict with keys '
                    f'{sorted(default_keys)}'
                )
            arch = cls.arch_settings[arch]
        if not isinstance(arch, dict):
            raise ValueError(
                f'{cls.__name__}: arch {arch!r} ({type(arch).__name__}) is neither a preset '
                f'name {sorted(cls.arch_settings)} nor a dict with keys {sorted(default_keys)}'
            )
        unknown = sorted(set(arch) - set(default_keys))
        if unknown:
            raise ValueError(
                f'{cls.__name__}: unknown arch keys {unknown}; valid keys are '
                f'{sorted(default_keys)}'
            )
        for key, value in arch.items():
            kind = _kind(default_keys[key])
            if kind is not None and value is not None and _kind(value) != kind:
                raise ValueError(
                    f'{cls.__name__}: arch[{key!r}] must be {kind} (default '
                    f'{default_keys[key]!r}), got {value!r}'
                )
            if key in cls.positive_arch_keys and value is not None and not value > 0:
                raise ValueError(f'{cls.__name__}: arch[{key!r}] must be > 0, got {value!r}')
        return {**default_keys, **arch}

    @classmethod
    def preset_of_number(cls, arch: Any) -> Any:
        """The preset name that a number stands for, else ``arch`` unchanged.

        mmengine parses ``--cfg-options model.backbone.arch=1.3`` as the float 1.3 and
        ``arch=1`` as the int 1; they name the preset whose name reads as that number.

        Example:
            >>> from mmbackbones.models import ReXNet
            >>> [ReXNet.preset_of_number(a) for a in (1.3, 1, 1.7, 'lite-1.0')]
            ['1.3', '1.0', 1.7, 'lite-1.0']
        """
        if isinstance(arch, bool) or not isinstance(arch, (int, float)):
            return arch
        for name in cls.arch_settings:
            try:
                if float(name) == arch:
                    return name
            except ValueError:  # a name that is not a number ('lite-1.0', 'large')
                continue
        return arch

    @classmethod
    def layout(cls, arch: str | dict, **kwargs: Any) -> list[BlockSpec]:
        """The family's structure for ``arch`` as data (see :class:`BlockSpec`)."""
        raise NotImplementedError(f'{cls.__name__} does not define layout()')

    @classmethod
    def complexity(
        cls,
        arch: str | dict,
        shape: int | tuple[int, int] = (224, 224),
        num_classes: int | None = 1000,
        *,
        convention: str = 'pycls',
        output_stride: int = 32,
        in_channels: int = 3,
        **kwargs: Any,
    ) -> Complexity:
        """Params, FLOPs (multiply-adds) and activations of ``arch``, without building it.

        Walks :meth:`layout` (``kwargs`` go to it, e.g. ``widen_factor``) with the
        primitives of :mod:`mmbackbones.complexity`: the stem, every block, the head conv
        and, with ``num_classes``, the family's ImageNet classifier
        (:meth:`classifier_complexity`). Equals :func:`~mmbackbones.complexity.measure`
        on the built model in the ``'counted'`` convention (tests check this).

        Args:
            arch (str | dict): Preset name or arch dict.
            shape (int | tuple[int, int]): Input height and width. Default: (224, 224).
            num_classes (int | None): Classifier outputs; ``None`` for the backbone
                alone (stem to head conv). Default: 1000.
            convention (str): ``'pycls'`` or ``'counted'``. Default: ``'pycls'``.
            output_stride (int): 8, 16 or 32, as the backbone's argument. Default: 32.
            in_channels (int): Input channels. Default: 3.

        Returns:
            Complexity: ``(params, flops, acts)``.
        """
        h, w = (shape, shape) if isinstance(shape, int) else shape
        cx = Cx(h, w, convention)
        head = cls.features_complexity(
            cx, StrideSchedule(output_stride), arch, in_channels, **kwargs
        )
        if num_classes:
            cls.classifier_complexity(cx, head, num_classes)
        return cx.result()

    @classmethod
    def features_complexity(
        cls, cx: Cx, sched: StrideSchedule, arch: str | dict, in_channels: int, **kwargs: Any
    ) -> Any:
        """Add the feature extractor of ``arch`` (stem to head conv) to ``cx``; returns
        what :meth:`classifier_complexity` reads (here the head's :class:`BlockSpec`)."""
        specs = cls.layout(arch, **kwargs)
        for spec in specs:
            stride = sched.step(spec.stride)[0]
            if spec.kind == 'block':
                InvertedResidual.complexity(
                    cx, spec.in_channels, spec.out_channels, spec.mid_channels,
                    spec.kernel_size, stride, spec.se_channels, spec.se_norm,
                )  # fmt: skip
            else:
                c_in = in_channels if spec.kind == 'stem' else spec.in_channels
                conv_cx(cx, c_in, spec.out_channels, spec.kernel_size, stride)
                norm_cx(cx, spec.out_channels)
        return specs[-1]

    @classmethod
    def classifier_complexity(cls, cx: Cx, head: Any, num_classes: int) -> Cx:
        """Complexity of :meth:`make_classifier` on the features' output (default: global
        average pooling and a linear layer on ``head.out_channels``)."""
        return linear_cx(cx, head.out_channels, num_classes)

    def split_here(self, schedule: StrideSchedule, stride: int) -> bool:
        """Whether the block about to take nominal ``stride`` should be split for
        ``feature_location='expansion'`` (it is the first block entering stride 32)."""
        return self.feature_location == 'expansion' and stride > 1 and schedule.nominal == 16

    def build_layout(
        self,
        layout: Sequence[BlockSpec],
        block_kwargs: Callable[[int, BlockSpec], dict[str, Any]],
        norm_cfg: dict,
        act_cfg: dict | None,
    ) -> None:
        """Build an inverted-residual family's layers from its :meth:`layout` and finish
        with :meth:`_build`.

        The stem and the head are :class:`ConvNormAct` with ``norm_cfg`` and ``act_cfg``;
        block ``i`` is an ``InvertedResidual`` with ``block_kwargs(i, spec)`` (norm,
        activations, SE config, shortcut, drop path: what is not structure). With
        ``feature_location='expansion'`` the expansion conv of the first stride-32 block
        is built as a layer of its own (``b<i>_expand``, the stride-16 tap) in front of
        a block without one.
        """
        sched = StrideSchedule(self.output_stride)
        specs: list[LayerSpec] = []
        i = -1  # block index
        for spec in layout:
            if spec.kind != 'block':
                stride = sched.step(spec.stride)[0]
                c_in = spec.in_channels
                conv = ConvNormAct(
                    c_in, spec.out_channels, spec.kernel_size, stride=stride,
                    norm_cfg=norm_cfg, act_cfg=act_cfg, padding=self.padding,
                )  # fmt: skip
                head = spec.kind == 'head'
                specs.append(
                    LayerSpec(
                        spec.kind, conv, spec.out_channels, sched.nominal, spec.stage,
                        is_head=head, checkpoint=head,
                    )
                )  # fmt: skip
                continue
            i += 1
            kw = dict(block_kwargs(i, spec))
            split = self.split_here(sched, spec.stride) and spec.with_expand
            stride, dilation = sched.step(spec.stride)
            if split:
                expand = ConvNormAct(
                    spec.in_channels, spec.mid_channels, 1,
                    norm_cfg=kw.get('norm_cfg'), act_cfg=kw.get('expand_act_cfg'),
                )  # fmt: skip
                reduction = sched.nominal // spec.stride
                specs.append(
                    LayerSpec(f'b{i}_expand', expand, spec.mid_channels, reduction, spec.stage)
                )
            block = InvertedResidual(
                spec.in_channels,
                spec.out_channels,
                spec.mid_channels,
                kernel_size=spec.kernel_size,
                stride=stride,
                dilation=dilation,
                # the nominal stride decides the shortcut: a block computes the same
                # function at every output stride (no residual appears when dilated)
                nominal_stride=spec.stride,
                with_expand=spec.with_expand and not split,
                shortcut=spec.shortcut,
                padding=self.padding,
                **kw,
            )
            specs.append(LayerSpec(f'b{i}', block, spec.out_channels, sched.nominal, spec.stage))
        self._build(specs)

    # ---------------------------------------------------------------- construction
    def _build(self, specs: list[LayerSpec]) -> None:
        """Compute taps, validate arguments, register the needed layers, freeze."""
        taps: list[int] = []
        for i, spec in enumerate(specs):
            if spec.is_head:
                taps.append(i)
                continue
            nxt = next((s for s in specs[i + 1 :] if not s.is_head), None)
            if nxt is None or nxt.reduction != spec.reduction:
                taps.append(i)
        self.feature_info = [
            dict(
                num_chs=specs[i].out_channels,
                reduction=min(specs[i].reduction, self.output_stride),
                module=f'layers.{specs[i].name}',
            )
            for i in taps
        ]
        num_taps = len(taps)
        self.num_stages = max(s.stage for s in specs)

        out_indices = []
        for idx in self._requested_out_indices:
            if not isinstance(idx, int) or not -num_taps <= idx < num_taps:
                raise ValueError(
                    f'{type(self).__name__}: invalid out_indices {self._requested_out_indices}'
                    f'; each index must be in [{-num_taps}, {num_taps - 1}]: '
                    f'{self._describe_taps()}'
                )
            out_indices.append(idx % num_taps)
        if not out_indices or len(set(out_indices)) != len(out_indices):
            raise ValueError(
                f'{type(self).__name__}: out_indices must be non-empty and '
                f'unique, got {self._requested_out_indices}; '
                f'taps: {self._describe_taps()}'
            )
        self.out_indices = tuple(sorted(out_indices))
        if not isinstance(self.frozen_stages, int) or not (
            -1 <= self.frozen_stages <= self.num_stages
        ):
            raise ValueError(
                f'{type(self).__name__}: frozen_stages must be an int in '
                f'[-1, {self.num_stages}] (-1: nothing, 0: stem, k: stem + first k stages), '
                f'got {self.frozen_stages!r}; stages: {self._describe_stages(specs)}'
            )

        selected = [taps[i] for i in self.out_indices]
        last = max(selected)
        keep = [i for i in range(last + 1) if not specs[i].is_head or i in selected]
        self.layers = nn.Sequential(OrderedDict((specs[i].name, specs[i].module) for i in keep))
        self._layer_stage = [specs[i].stage for i in keep]
        self._layer_cp = [specs[i].checkpoint for i in keep]
        pos = {spec_idx: k for k, spec_idx in enumerate(keep)}
        self._tap_layers = frozenset(pos[i] for i in selected)
        self._freeze_stages()
        self._register_load_state_dict_pre_hook(self._remap_expansion_keys)

    def _remap_expansion_keys(self, state_dict: dict, prefix: str, *args: Any) -> None:
        """Load weights across ``feature_location`` layouts (:func:`remap_expansion_keys`),
        so one converted ImageNet file serves both."""
        names = {n for n, _ in self.layers.named_children()}
        for old, new in remap_expansion_keys(list(state_dict), names, prefix).items():
            state_dict[new] = state_dict.pop(old)

    def _describe_taps(self) -> str:
        return ', '.join(
            f'{i}: {f["num_chs"]}ch@/{f["reduction"]} ({f["module"]})'
            for i, f in enumerate(self.feature_info)
        )

    @staticmethod
    def _describe_stages(specs: list[LayerSpec]) -> str:
        stages: dict[int, list[str]] = {}
        for s in specs:
            stages.setdefault(s.stage, []).append(s.name)
        return '; '.join(
            f'{k}: {v[0]}' + (f'..{v[-1]}' if len(v) > 1 else '')
            for k, v in sorted(stages.items())
        )

    # ------------------------------------------------------------------- properties
    @property
    def out_channels(self) -> list[int]:
        """Channels of the selected taps, in output order."""
        return [self.feature_info[i]['num_chs'] for i in self.out_indices]

    @property
    def out_strides(self) -> list[int]:
        """Actual strides of the selected taps, in output order."""
        return [self.feature_info[i]['reduction'] for i in self.out_indices]

    # ------------------------------------------------------------ training state
    def _freeze_stages(self) -> None:
        for layer, stage in zip(self.layers, self._layer_stage):
            if stage <= self.frozen_stages:
                layer.eval()
                for p in layer.parameters():
                    p.requires_grad = False

    def init_weights(self) -> None:
        """mmengine's init; a ``Pretrained`` init is first checked against the weights'
        training settings (family, arch, BN eps): a mismatch is an error naming the config
        keys to change (:func:`mmbackbones.convert.uri_check.check_backbone`); then the
        weights are loaded strictly: a file that does not fit is an error, what it skipped
        one log line (:func:`mmbackbones.loading.load_pretrained`)."""
        from mmbackbones.convert.uri_check import check_backbone
        from mmbackbones.loading import init_weights_strictly

        check_backbone(self)
        init_weights_strictly(self, super().init_weights)

    def train(self, mode: bool = True) -> BaseBackbone:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = []
        for i, layer in enumerate(self.layers):
            if self.with_cp and self._layer_cp[i] and self.training and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
            if i in self._tap_layers:
                outs.append(x)
        return tuple(outs)

    # --------------------------------------------------------------- classifier
    def make_classifier(self, num_classes: int = 1000) -> nn.Module:
        """The paper's ImageNet classifier on top of the last tap (used for the
        published params/FLOPs comparison and for design-space training).

        The default is global average pooling and a linear layer; families override it.
        """
        return nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(self.feature_info[-1]['num_chs'], num_classes),
        )

"""A weight source, described as data: what the source modules (timm, torchvision, clovaai,
pycls) build, and the pure key-mapping helpers they build it with.

A source module describes a weight source as one :class:`Source`: one pure key-mapping
function per backbone family (source key -> our key, or :class:`Drop` with the reason) and
the table of models the source publishes (:class:`Preset`). :mod:`.core` applies them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch

#: BatchNorm state entries.
BN_PARAMS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
#: A regex group matching one BatchNorm (or conv) state entry name.
PARAM = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


class ConversionError(ValueError):
    """A weight file that cannot be converted as asked; the message is a single line."""

    def __init__(self, msg: str) -> None:
        super().__init__(' '.join(str(msg).split()))


@dataclass(frozen=True)
class Drop:
    """A source tensor that is deliberately not converted, and why.

    Attributes:
        reason: Why, in words.
        classifier: Part of the ImageNet classifier (after the backbone's last tap): what
            ``--classifier`` converts into our ``ImageClassifier``'s head.
    """

    reason: str
    classifier: bool = False


#: The ImageNet classifier of every source: never part of the backbone.
CLASSIFIER = Drop('classifier (ImageNet head), not part of the backbone', classifier=True)

#: A key mapping: source key -> our key (``layers.<...>``) or :class:`Drop`.
KeyMap = dict[str, Union[str, Drop]]
#: A family's key-mapping function: pure, from the source's keys alone.
Mapper = Callable[[Sequence[str]], KeyMap]


@dataclass(frozen=True)
class Input:
    """The input convention a set of weights expects (pixel values 0-255)."""

    color: str  # 'RGB' | 'BGR'
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def flipped(self) -> Input:
        """The same statistics for the other colour order."""
        return Input('RGB' if self.color == 'BGR' else 'BGR', self.mean[::-1], self.std[::-1])

    def data_preprocessor(self) -> dict[str, Any]:
        """mmdet/mmseg ``data_preprocessor`` keys (mmcv decodes images as BGR)."""
        return dict(mean=list(self.mean), std=list(self.std), bgr_to_rgb=self.color == 'RGB')


#: torchvision / timm / clovaai: RGB, ImageNet mean and std (x255).
RGB_IMAGENET = Input('RGB', (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
#: pycls: images decoded by OpenCV (BGR), the same statistics in BGR order.
BGR_PYCLS = Input('BGR', (103.53, 116.28, 123.675), (57.375, 57.12, 58.395))
#: Inception-style ``x / 127.5 - 1`` (timm's ``tf_*`` Lite / MobileNetV3 ports, AdvProp).
RGB_INCEPTION = Input('RGB', (127.5, 127.5, 127.5), (127.5, 127.5, 127.5))


@dataclass(frozen=True)
class EvalTransform:
    """The ImageNet evaluation transform a set of weights was measured with: resize the
    shorter side to ``resize``, centre-crop ``size`` x ``size`` (``--classifier``'s meta).

    Attributes:
        size: The input (crop) size.
        resize: The shorter side before the crop.
        interpolation: ``'bilinear'`` or ``'bicubic'``.
    """

    size: int
    resize: int
    interpolation: str = 'bilinear'

    @classmethod
    def from_crop_pct(
        cls, size: int, crop_pct: float = 0.875, interpolation: str = 'bilinear'
    ) -> EvalTransform:
        """timm's convention: ``resize = floor(size / crop_pct)``.

        Example:
            >>> EvalTransform.from_crop_pct(224)
            EvalTransform(size=224, resize=256, interpolation='bilinear')
        """
        return cls(size, int(size / crop_pct), interpolation)


@dataclass(frozen=True)
class Preset:
    """A model a source publishes, as one of our backbones.

    Attributes:
        family: Our class name, e.g. ``'ReXNet'``.
        arch: Our preset name or arch dict.
        kwargs: Further backbone arguments (e.g. ``widen_factor``).
        bn_eps: The BatchNorm eps the weights were trained with.
        input: The input convention, where it differs from the source's.
    """

    family: str
    arch: str | dict
    kwargs: dict = field(default_factory=dict)
    bn_eps: float = 1e-5
    input: Input | None = None


@dataclass(frozen=True)
class Source:
    """A weight source, as data.

    Attributes:
        name: ``--source`` name.
        mappers: Family -> key-mapping function.
        presets: Published model name -> :class:`Preset`.
        input: The input convention of the source's weights.
        refused: ``(regex on model names, reason)``: published models we must not convert.
        needs_model: Family -> why ``--model`` is required (weights that cannot be told
            apart from the tensors alone).
        default_bn_eps: Family -> BN eps of the source's weights where no preset says.
        notes: Family -> a caveat printed with every conversion of that family.
        eval_transform: ``(model name or None, preset or None) -> EvalTransform`` of the
            published weights (``--classifier``); ``None``: the ImageNet convention at
            the arch's resolution (:func:`default_eval_transform`).
    """

    name: str
    mappers: Mapping[str, Mapper]
    presets: Mapping[str, Preset]
    input: Input
    refused: tuple[tuple[str, str], ...] = ()
    needs_model: Mapping[str, str] = field(default_factory=dict)
    default_bn_eps: Mapping[str, float] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    eval_transform: Callable[[str | None, Preset | None], EvalTransform] | None = None

    def find(self, model: str) -> tuple[str, Preset] | None:
        """The preset of a model name (a timm-style ``.tag`` suffix is ignored)."""
        for name in (model, model.split('.')[0]):
            if name in self.presets:
                return name, self.presets[name]
        return None

    def refusal(self, model: str) -> str | None:
        """Why a published model must not be converted, or ``None``."""
        for pattern, reason in self.refused:
            if re.fullmatch(pattern, model.split('.')[0]):
                return reason
        return None


def arch_resolution(preset: Preset | None, default: int = 224) -> int:
    """The training resolution an arch states (EfficientNet's ``resolution``), else
    ``default``."""
    if preset is None:
        return default
    arch = preset.arch
    if isinstance(arch, str):
        from .target import backbone_class

        arch = backbone_class(preset.family).arch_settings.get(arch, {})
    return int(arch.get('resolution', default)) if isinstance(arch, dict) else default


def default_eval_transform(model: str | None, preset: Preset | None) -> EvalTransform:
    """The common ImageNet evaluation: the arch's resolution (224 unless it says), resize
    to ``size / 0.875``, bilinear."""
    return EvalTransform.from_crop_pct(arch_resolution(preset))


# ------------------------------------------------------------------------ mapping helpers
def regex_mapper(rules: Sequence[tuple[str, str | Drop | Callable[[re.Match], str]]]) -> Mapper:
    """A mapper from ``(regex, replacement)`` rules tried in order (``re.fullmatch``).

    A replacement is a ``re.Match.expand`` template, a :class:`Drop`, or a callable of the
    match. Keys no rule matches are left out of the result (the caller reports them).

    Example:
        >>> m = regex_mapper([(r'conv1\\.weight', 'layers.stem.conv.weight'),
        ...                   (r'fc\\.\\w+', Drop('classifier'))])
        >>> m(['conv1.weight', 'fc.bias', 'extra'])['fc.bias']
        Drop(reason='classifier', classifier=False)
        >>> m(['conv1.weight', 'fc.bias', 'extra'])['conv1.weight']
        'layers.stem.conv.weight'
        >>> 'extra' in m(['conv1.weight', 'fc.bias', 'extra'])
        False
    """
    compiled = [(re.compile(p), r) for p, r in rules]

    def mapper(keys: Sequence[str]) -> KeyMap:
        out: KeyMap = {}
        for k in keys:
            for pattern, rep in compiled:
                m = pattern.fullmatch(k)
                if m:
                    if isinstance(rep, Drop):
                        out[k] = rep
                    elif callable(rep):
                        out[k] = rep(m)
                    else:
                        out[k] = m.expand(rep)
                    break
        return out

    return mapper


def ordinal(keys: Sequence[str], pattern: str) -> dict[tuple[int, ...], int]:
    """Number the distinct integer groups of ``pattern`` (``re.match``) in numeric order.

    Example:
        >>> keys = ['blocks.1.0.x', 'blocks.0.0.y', 'blocks.1.1.z']
        >>> ordinal(keys, r'blocks\\.(\\d+)\\.(\\d+)\\.')
        {(0, 0): 0, (1, 0): 1, (1, 1): 2}
    """
    rx = re.compile(pattern)
    ids = {tuple(int(g) for g in m.groups()) for k in keys if (m := rx.match(k))}
    return {i: n for n, i in enumerate(sorted(ids))}


def conv_bn_roles(convs: Sequence[int], bns: Sequence[int]) -> dict[int, str] | None:
    """Roles of the positional children of an inverted-residual block (torchvision,
    clovaai): its convs in order are [expand,] dw, project, each BN follows its conv.

    Returns ``position -> 'expand' | 'dw' | 'project'`` (BN positions too), or ``None`` if
    the layout is not an inverted residual.

    Example:
        >>> conv_bn_roles([0, 3, 7], [1, 4, 8])
        {0: 'expand', 3: 'dw', 7: 'project', 1: 'expand', 4: 'dw', 8: 'project'}
    """
    roles = {3: ('expand', 'dw', 'project'), 2: ('dw', 'project')}.get(len(convs))
    if roles is None:
        return None
    out = dict(zip(convs, roles))
    for bn in bns:
        prev = [c for c in convs if c < bn]
        if not prev:
            return None
        out[bn] = out[prev[-1]]
    return out


def apply_key_map(
    state_dict: Mapping[str, torch.Tensor], key_map: KeyMap
) -> tuple[dict[str, torch.Tensor], list[tuple[str, tuple[int, ...], str]], list[str]]:
    """``(ours, dropped, unmapped)``; two source keys onto one of ours is an error."""
    ours: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    dropped, unmapped = [], []
    for k, v in state_dict.items():
        dst = key_map.get(k)
        if dst is None:
            unmapped.append(k)
        elif isinstance(dst, Drop):
            dropped.append((k, tuple(v.shape), dst.reason))
        elif dst in ours:
            raise ConversionError(f'source keys {origin[dst]!r} and {k!r} both map to {dst!r}')
        else:
            ours[dst], origin[dst] = v, k
    return ours, dropped, unmapped

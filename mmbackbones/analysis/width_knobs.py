"""Per-family width knobs for NetAdapt: which widths of an arch dict may shrink, and how.

NetAdapt (Yang et al., ECCV 2018) shrinks one layer at a time; MobileNetV3 (Howard et al.,
ICCV 2019, section 4.2) applies it to the expansion width of a block and to the output
width of a block, keeping residual connections valid. The knobs of each supported family
live here, in one table (:data:`FAMILIES`):

* **MobileNetV3** (arch ``blocks`` rows ``(kernel, exp, out, use_se, act, stride)``):
  ``bN.exp``: the expansion width of block N (blocks without an expansion conv, whose
  ``exp`` equals their input width, have none); ``<group>.out``: the output width of a
  *residual group*: the stem and blocks joined by full residuals (stride 1, in == out)
  shrink together, so every shortcut stays; a block without expansion conv that reads
  the group follows it; ``head``: the 1x1 conv before pooling. SE widths follow (1/4 of
  the expansion, rounded to 8, by the family's own rule).
* **ReXNet** (arch ``channels``, per-block output widths, and ``head_ch``): ``bN.out``,
  never below the block's input width where the block has its partial residual
  (``out[:, :c_in] += x`` needs ``c_in <= c_out``); the expansion follows the input
  width (``expansion`` x), SE follows the expansion; ``head``.
* **EfficientNet** (arch ``stages`` rows ``(expand, kernel, stride, channels, repeats)``):
  the arch dict holds per-*stage* widths and expansion *ratios* only (a block's expansion
  width is ``make_divisible(in * expand)``, not expressible per block), so the knobs are
  per stage: ``<group>.out``: the output width of a *residual group*: the stem and the
  stages whose blocks are joined by full residuals (every block after a stage's first one
  has ``in == out``; a stage's first block joins the previous group where it has stride 1
  and ``in == out``) shrink together; the expansion and SE widths of the blocks reading it
  follow by the family's own rules (``expand`` x, ``se_ratio`` x the input); ``head``: the
  1x1 conv before pooling. Candidate widths that would add or drop a shortcut or an
  expansion conv are skipped.

Widths shrink to multiples of 8 (minimum 8). Candidate widths that would change a block's
structure by accident (e.g. make an expansion width equal to the input width, which drops
the expansion conv) are skipped.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from math import ceil
from typing import Any, ClassVar

DIVISOR = 8


@dataclass(frozen=True)
class Knob:
    """One width that NetAdapt may shrink.

    Attributes:
        name: Readable id, e.g. ``'b3.exp'``, ``'b4-b5.out'``, ``'head'``.
        kind: ``'exp'``, ``'out'`` or ``'head'``.
        width: The current width.
        min_width: The smallest width the constraints allow.
        positions: The blocks it changes (``-1`` is the stem).
    """

    name: str
    kind: str
    width: int
    min_width: int
    positions: tuple[int, ...] = ()


def _smaller_multiples(width: int, lo: int) -> list[int]:
    """Multiples of :data:`DIVISOR` below ``width`` and >= ``lo``, largest first."""
    top = (width - 1) // DIVISOR * DIVISOR
    return list(range(top, max(lo, DIVISOR) - 1, -DIVISOR))


class WidthKnobs(ABC):
    """The knobs of one family. Subclasses implement the four abstract methods below.

    Arch dicts handled here are *explicit*: every width is written out, so that the
    backbone builds them verbatim (``widen_factor`` 1, no rounding surprises).
    """

    family: ClassVar[str] = ''

    @abstractmethod
    def start_arch(self, arch: str | dict, widen_factor: float = 1.0) -> dict[str, Any]:
        """The explicit arch dict of a preset name / partial dict at a width multiplier."""

    @abstractmethod
    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        """Every knob of ``arch`` that has at least one smaller valid width."""

    @abstractmethod
    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        """Valid smaller widths for ``knob``, largest first."""

    @abstractmethod
    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        """A copy of ``arch`` with ``knob`` set to ``width``."""

    def backbone_cfg(self, arch: dict[str, Any]) -> dict[str, Any]:
        """The backbone config that builds ``arch`` (``arch`` is copied)."""
        return dict(type=f'mmbackbones.{self.family}', arch=copy.deepcopy(arch))


class MobileNetV3Knobs(WidthKnobs):
    """Knobs of :class:`MobileNetV3` (see the module docstring).

    Example:
        >>> k = MobileNetV3Knobs()
        >>> arch = k.start_arch('small')
        >>> [x.name for x in k.knobs(arch)][:4]
        ['stem.out', 'b0.out', 'b1-b2.out', 'b3-b5.out']
        >>> arch = k.apply(arch, Knob('b4.exp', 'exp', 240, 8, (4,)), 200)
        >>> arch['blocks'][4]
        [5, 200, 40, True, 'HS', 1]
    """

    family = 'MobileNetV3'

    def start_arch(self, arch: str | dict, widen_factor: float = 1.0) -> dict[str, Any]:
        from mmbackbones.models.backbones.mobilenet_v3 import (
            _DEFAULT_ARCH,
            MobileNetV3,
            mobilenet_v3_channels,
        )

        full = MobileNetV3.resolve_arch(arch, _DEFAULT_ARCH)
        stem, blocks, head, classifier = mobilenet_v3_channels(full, widen_factor)
        return dict(
            blocks=[[k, mid, out, se, act, s] for k, _, mid, out, se, act, s in blocks],
            stem_channels=stem,
            head_channels=head,
            classifier_channels=classifier,
        )

    @staticmethod
    def _widths(arch: dict) -> list[int]:
        """Output widths by position: ``[stem, b0, b1, ...]``; block i reads index i."""
        return [int(arch['stem_channels'])] + [int(r[2]) for r in arch['blocks']]

    def _groups(self, arch: dict) -> list[list[int]]:
        """Positions (-1 = stem) joined by full residuals, in order."""
        widths = self._widths(arch)
        groups: list[list[int]] = [[-1]]
        for i, row in enumerate(arch['blocks']):
            if row[5] == 1 and widths[i] == widths[i + 1]:  # residual: in == out
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    @staticmethod
    def _has_expand(arch: dict, i: int, widths: list[int]) -> bool:
        return int(arch['blocks'][i][1]) != widths[i]

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        widths = self._widths(arch)
        out = []
        for g in self._groups(arch):
            ends = ['stem' if p < 0 else f'b{p}' for p in (g[0], g[-1])]
            name = ends[0] if len(g) == 1 else '-'.join(ends)
            out.append(Knob(f'{name}.out', 'out', widths[g[-1] + 1], DIVISOR, tuple(g)))
        for i, row in enumerate(arch['blocks']):
            if self._has_expand(arch, i, widths):
                out.append(Knob(f'b{i}.exp', 'exp', int(row[1]), DIVISOR, (i,)))
        out.append(Knob('head', 'head', int(arch['head_channels']), DIVISOR))
        return [k for k in out if self.candidates(arch, k)]

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        ws = _smaller_multiples(knob.width, knob.min_width)
        widths = self._widths(arch)
        blocks = arch['blocks']
        if knob.kind == 'exp':
            (i,) = knob.positions
            return [w for w in ws if w != widths[i]]  # exp == in would drop the expansion
        if knob.kind == 'out':
            # blocks reading the group that keep their own expansion width must not end up
            # with exp == in (their expansion conv would vanish)
            fixed = {
                int(blocks[j][1])
                for j in range(len(blocks))
                if j - 1 in knob.positions and self._has_expand(arch, j, widths)
            }
            return [w for w in ws if w not in fixed]
        return ws

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        new['blocks'] = [list(r) for r in new['blocks']]
        widths = self._widths(arch)
        if knob.kind == 'exp':
            new['blocks'][knob.positions[0]][1] = width
        elif knob.kind == 'out':
            for p in knob.positions:
                if p < 0:
                    new['stem_channels'] = width
                else:
                    new['blocks'][p][2] = width
            for j in range(len(arch['blocks'])):  # blocks without expansion follow
                if j - 1 in knob.positions and not self._has_expand(arch, j, widths):
                    new['blocks'][j][1] = width
        elif knob.kind == 'head':
            new['head_channels'] = width
        else:
            raise ValueError(f'MobileNetV3: unknown knob kind {knob.kind!r}')
        return new


class ReXNetKnobs(WidthKnobs):
    """Knobs of :class:`ReXNet` (see the module docstring).

    Example:
        >>> k = ReXNetKnobs()
        >>> arch = k.start_arch('1.0')
        >>> arch['channels'][:4], arch['head_ch']
        ([16, 27, 38, 50], 1280)
        >>> [x for x in k.knobs(arch) if x.name == 'b2.out']  # partial residual: >= 27
        [Knob(name='b2.out', kind='out', width=38, min_width=27, positions=(2,))]
    """

    family = 'ReXNet'

    def start_arch(self, arch: str | dict, widen_factor: float = 1.0) -> dict[str, Any]:
        from mmbackbones.models.backbones.rexnet import _DEFAULT_ARCH, ReXNet, rexnet_channels

        full = dict(ReXNet.resolve_arch(arch, _DEFAULT_ARCH))
        full['width_mult'] = float(full['width_mult']) * widen_factor
        _, _, outs, head = rexnet_channels(full)
        full['channels'] = list(outs)
        full['head_ch'] = int(head)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in full.items()}

    @staticmethod
    def _strides(arch: dict) -> list[int]:
        layers = [ceil(n * arch['depth_mult']) for n in arch['layers']]
        return [s if j == 0 else 1 for n, s in zip(layers, arch['strides']) for j in range(n)]

    @staticmethod
    def _in_widths(arch: dict) -> list[int]:
        from mmbackbones.models.backbones.rexnet import _DEFAULT_ARCH, rexnet_channels

        stem, _, _, _ = rexnet_channels({**_DEFAULT_ARCH, **arch})
        return [stem] + [int(c) for c in arch['channels'][:-1]]

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        ins, strides = self._in_widths(arch), self._strides(arch)
        out = []
        for i, c in enumerate(arch['channels']):
            residual = strides[i] == 1 and ins[i] <= c  # keep the partial shortcut
            lo = max(DIVISOR, ins[i]) if residual else DIVISOR
            out.append(Knob(f'b{i}.out', 'out', int(c), lo, (i,)))
        out.append(Knob('head', 'head', int(arch['head_ch']), DIVISOR))
        return [k for k in out if self.candidates(arch, k)]

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        return _smaller_multiples(knob.width, knob.min_width)

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        if knob.kind == 'out':
            new['channels'] = list(new['channels'])
            new['channels'][knob.positions[0]] = width
        elif knob.kind == 'head':
            new['head_ch'] = width
        else:
            raise ValueError(f'ReXNet: unknown knob kind {knob.kind!r}')
        return new


class EfficientNetKnobs(WidthKnobs):
    """Knobs of :class:`EfficientNet` (see the module docstring).

    The explicit arch has ``width=1`` and ``depth=1``: the stage table holds the scaled
    widths and repeats, so the backbone builds them verbatim.

    Example:
        >>> k = EfficientNetKnobs()
        >>> arch = k.start_arch('b0')
        >>> [r[3] for r in arch['stages']], arch['stem_channels'], arch['head_channels']
        ([16, 24, 40, 80, 112, 192, 320], 32, 1280)
        >>> [x.name for x in k.knobs(arch)][:3]
        ['stem.out', 's1.out', 's2.out']
        >>> arch = k.apply(arch, Knob('s3.out', 'out', 40, 8, (2,)), 32)
        >>> [r[3] for r in arch['stages']][:4]
        [16, 24, 32, 80]
    """

    family = 'EfficientNet'

    def start_arch(self, arch: str | dict, widen_factor: float = 1.0) -> dict[str, Any]:
        from mmbackbones.models.backbones.efficientnet import (
            EfficientNet,
            scale_depth,
            scale_width,
        )

        full = EfficientNet.resolve_scaled_arch(arch)
        w, d, div = float(full['width']) * widen_factor, float(full['depth']), full['divisor']
        stages = [
            [e, k, s, scale_width(c, w, div), scale_depth(n, d)]
            for e, k, s, c, n in full['stages']
        ]
        if any(r[4] < 1 for r in stages):
            raise ValueError(
                f'NetAdapt: EfficientNet stages with no blocks are not supported: {stages!r}'
            )
        return dict(
            width=1.0,
            depth=1.0,
            resolution=full['resolution'],
            dropout=full['dropout'],
            stages=stages,
            stem_channels=scale_width(full['stem_channels'], w, div),
            head_channels=scale_width(full['head_channels'], w, div),
            se_ratio=full['se_ratio'],
            divisor=div,
        )

    @staticmethod
    def _widths(arch: dict) -> list[int]:
        """Output widths by position: ``[stem, s1, s2, ...]``; stage i reads index i."""
        return [int(arch['stem_channels'])] + [int(r[3]) for r in arch['stages']]

    def _groups(self, arch: dict) -> list[list[int]]:
        """Positions (-1 = stem, i = stage i + 1) joined by full residuals, in order."""
        widths = self._widths(arch)
        groups: list[list[int]] = [[-1]]
        for i, row in enumerate(arch['stages']):
            if row[2] == 1 and widths[i] == widths[i + 1]:  # the first block's residual
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    @staticmethod
    def _structure(arch: dict) -> list[tuple[bool, bool]]:
        """Per block: (has an expansion conv, has a shortcut), as the backbone decides."""
        from mmbackbones.models.backbones.efficientnet import (
            EfficientNet,
            efficientnet_layout,
        )

        _, blocks, _ = efficientnet_layout(EfficientNet.resolve_scaled_arch(arch))
        return [
            (b.mid_channels != b.in_channels, b.stride == 1 and b.in_channels == b.out_channels)
            for b in blocks
        ]

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        widths = self._widths(arch)
        out = []
        for g in self._groups(arch):
            ends = ['stem' if p < 0 else f's{p + 1}' for p in (g[0], g[-1])]
            name = ends[0] if len(g) == 1 else '-'.join(ends)
            out.append(Knob(f'{name}.out', 'out', widths[g[-1] + 1], DIVISOR, tuple(g)))
        out.append(Knob('head', 'head', int(arch['head_channels']), DIVISOR))
        return [k for k in out if self.candidates(arch, k)]

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        from mmbackbones.models.layers import make_divisible

        div = int(arch.get('divisor', DIVISOR))
        ws = [
            w
            for w in _smaller_multiples(knob.width, knob.min_width)
            if make_divisible(w, div) == w  # built verbatim
        ]
        if knob.kind != 'out':
            return ws
        ref = self._structure(arch)  # no shortcut / expansion conv may appear or vanish
        return [w for w in ws if self._structure(self.apply(arch, knob, w)) == ref]

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        new['stages'] = [list(r) for r in new['stages']]
        if knob.kind == 'out':
            for p in knob.positions:
                if p < 0:
                    new['stem_channels'] = width
                else:
                    new['stages'][p][3] = width
        elif knob.kind == 'head':
            new['head_channels'] = width
        else:
            raise ValueError(f'EfficientNet: unknown knob kind {knob.kind!r}')
        return new


FAMILIES: dict[str, WidthKnobs] = {
    k.family: k for k in (MobileNetV3Knobs(), ReXNetKnobs(), EfficientNetKnobs())
}


def get_knobs(family: str) -> WidthKnobs:
    """The :class:`WidthKnobs` of a backbone family.

    Raises:
        ValueError: for a family without knobs, listing the supported ones.

    Example:
        >>> get_knobs('ReXNet').family
        'ReXNet'
    """
    name = family.split('.')[-1]
    if name not in FAMILIES:
        raise ValueError(
            f'NetAdapt: backbone family {family!r} is not supported; supported families are '
            f'{sorted(FAMILIES)} (AnyNet/RegNet/ResNeXt have no width knobs yet)'
        )
    return FAMILIES[name]

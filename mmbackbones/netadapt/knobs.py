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
* **ReXNet** (arch ``channels``, per-block output widths, ``mid_channels``, per-block
  expansion widths, and ``head_ch``): ``bN.out``, never below the block's input width
  where the block has its partial residual (``out[:, :c_in] += x`` needs
  ``c_in <= c_out``); ``bN.exp``: the expansion width of block N (block 0, without an
  expansion conv, has none). An expansion that was never adapted follows the input width
  (``expansion`` x); one that was keeps its width. SE follows the expansion; ``head``.
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

* **AnyNet** (and **RegNet** / **ResNeXt**, whose arches translate to AnyNet's; the
  adapted arch is an explicit ``AnyNet`` arch dict: per-stage ``widths``, ``bot_muls``,
  ``group_ws``): ``<group>.out``: the output width of a *residual group*: the stem and
  the stages whose first block has an identity shortcut (stride 1, ``in == out``)
  shrink together; a stage's other blocks always have identity shortcuts, so a stage
  shrinks as a whole. The bottleneck width stays (``bot_mul`` is rewritten). ``sN.bot``
  (``res_bottleneck`` blocks): the bottleneck width of stage N, in steps of whole groups
  of the 3x3 grouped conv (``lcm(group_w, 8)`` channels: groups are pruned, the group
  width stays, at least 2 groups remain). SE widths follow the block input
  (``se_ratio`` x). Candidate widths that would add or drop a projection shortcut are
  skipped.

Widths shrink to multiples of 8 (minimum 8). Candidate widths that would change a block's
structure by accident (e.g. make an expansion width equal to the input width, which drops
the expansion conv) are skipped.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from math import lcm
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mmbackbones.models.backbones.base import BlockSpec

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


def _residual_groups(joins: list[bool]) -> list[list[int]]:
    """Positions (-1 = stem, then 0, 1, ...) grouped in order: position ``i`` joins the
    group before it where ``joins[i]`` (an identity shortcut ties their widths)."""
    groups: list[list[int]] = [[-1]]
    for i, join in enumerate(joins):
        if join:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _group_out_knobs(
    groups: list[list[int]], widths: list[int], prefix: str, offset: int = 0
) -> list[Knob]:
    """One ``'out'`` knob per residual group: positions ``p`` (-1 = stem) are named
    ``f'{prefix}{p + offset}'``, a group by its first and last member; ``widths[p + 1]``
    is position ``p``'s output width."""

    def label(p: int) -> str:
        return 'stem' if p < 0 else f'{prefix}{p + offset}'

    out = []
    for g in groups:
        name = label(g[0]) if len(g) == 1 else f'{label(g[0])}-{label(g[-1])}'
        out.append(Knob(f'{name}.out', 'out', widths[g[-1] + 1], DIVISOR, tuple(g)))
    return out


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
        from mmbackbones.models import MobileNetV3

        specs = MobileNetV3.layout(arch, widen_factor)
        return dict(
            blocks=[
                [b.kernel_size, b.mid_channels, b.out_channels, b.se_channels > 0, b.act, b.stride]
                for b in specs[1:-1]
            ],
            stem_channels=specs[0].out_channels,
            head_channels=specs[-1].out_channels,
            classifier_channels=specs[-1].hidden_channels,
        )

    @staticmethod
    def _blocks(arch: dict) -> list[BlockSpec]:
        from mmbackbones.models import MobileNetV3

        return MobileNetV3.layout(arch)[1:-1]

    @staticmethod
    def _widths(arch: dict) -> list[int]:
        """Output widths by position: ``[stem, b0, b1, ...]``; block i reads index i."""
        return [int(arch['stem_channels'])] + [int(r[2]) for r in arch['blocks']]

    def _groups(self, arch: dict) -> list[list[int]]:
        """Positions (-1 = stem) joined by full residuals, in order."""
        return _residual_groups([b.has_shortcut for b in self._blocks(arch)])

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        widths = self._widths(arch)
        out = _group_out_knobs(self._groups(arch), widths, 'b')
        for i, b in enumerate(self._blocks(arch)):
            if b.with_expand:
                out.append(Knob(f'b{i}.exp', 'exp', b.mid_channels, DIVISOR, (i,)))
        out.append(Knob('head', 'head', int(arch['head_channels']), DIVISOR))
        return [k for k in out if self.candidates(arch, k)]

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        ws = _smaller_multiples(knob.width, knob.min_width)
        blocks = self._blocks(arch)
        if knob.kind == 'exp':
            (i,) = knob.positions
            return [w for w in ws if w != blocks[i].in_channels]  # exp == in: no expansion
        if knob.kind == 'out':
            # blocks reading the group that keep their own expansion width must not end up
            # with exp == in (their expansion conv would vanish)
            fixed = {
                b.mid_channels
                for j, b in enumerate(blocks)
                if j - 1 in knob.positions and b.with_expand
            }
            return [w for w in ws if w not in fixed]
        return ws

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        new['blocks'] = [list(r) for r in new['blocks']]
        blocks = self._blocks(arch)
        if knob.kind == 'exp':
            new['blocks'][knob.positions[0]][1] = width
        elif knob.kind == 'out':
            for p in knob.positions:
                if p < 0:
                    new['stem_channels'] = width
                else:
                    new['blocks'][p][2] = width
            for j, b in enumerate(blocks):  # blocks without expansion follow
                if j - 1 in knob.positions and not b.with_expand:
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
        from mmbackbones.models import ReXNet

        full = ReXNet.resolve_arch(arch)
        specs = ReXNet.layout(full, widen_factor)
        full['width_mult'] = float(full['width_mult']) * widen_factor
        full['channels'] = [b.out_channels for b in specs[1:-1]]
        full['head_ch'] = specs[-1].out_channels
        return {k: list(v) if isinstance(v, tuple) else v for k, v in full.items()}

    @staticmethod
    def _blocks(arch: dict) -> list[BlockSpec]:
        from mmbackbones.models import ReXNet

        return ReXNet.layout(arch)[1:-1]

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        from mmbackbones.models import ReXNet

        blocks = self._blocks(arch)
        out = []
        for i, b in enumerate(blocks):
            # keep the partial shortcut: out[:, :c_in] += x needs c_in <= c_out
            lo = max(DIVISOR, b.in_channels) if b.has_shortcut else DIVISOR
            out.append(Knob(f'b{i}.out', 'out', b.out_channels, lo, (i,)))
        se_ratio = ReXNet.resolve_arch(arch)['se_ratio']
        for i, b in enumerate(blocks):
            if b.with_expand:
                lo = max(DIVISOR, se_ratio) if b.se_channels else DIVISOR  # SE keeps >= 1
                out.append(Knob(f'b{i}.exp', 'exp', b.mid_channels, lo, (i,)))
        out.append(Knob('head', 'head', int(arch['head_ch']), DIVISOR))
        return [k for k in out if self.candidates(arch, k)]

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        ws = _smaller_multiples(knob.width, knob.min_width)
        if knob.kind == 'head':
            return ws
        (i,) = knob.positions
        if knob.kind == 'exp':  # mid == in would drop the expansion conv
            return [w for w in ws if w != self._blocks(arch)[i].in_channels]
        given = arch.get('mid_channels')
        nxt = given[i + 1] if given is not None and i + 1 < len(given) else None
        return [w for w in ws if w != nxt]  # an adapted next expansion must stay a conv

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        if knob.kind == 'out':
            new['channels'] = list(new['channels'])
            new['channels'][knob.positions[0]] = width
        elif knob.kind == 'exp':
            mids = new.get('mid_channels') or [None] * len(new['channels'])
            new['mid_channels'] = list(mids)
            new['mid_channels'][knob.positions[0]] = width
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
        from mmbackbones.models import EfficientNet

        full = EfficientNet.resolve_arch(arch)
        specs = EfficientNet.layout(full, widen_factor)
        stages = []
        for st, (e, k, s, _, _) in enumerate(full['stages'], start=1):
            blocks = [b for b in specs if b.kind == 'block' and b.stage == st]
            if not blocks:
                raise ValueError(
                    f'NetAdapt: EfficientNet stages with no blocks are not supported '
                    f'(stage {st} of {full["stages"]!r})'
                )
            stages.append([e, k, s, blocks[0].out_channels, len(blocks)])
        return dict(
            width=1.0,
            depth=1.0,
            resolution=full['resolution'],
            dropout=full['dropout'],
            stages=stages,
            stem_channels=specs[0].out_channels,
            head_channels=specs[-1].out_channels,
            se_ratio=full['se_ratio'],
            divisor=full['divisor'],
        )

    @staticmethod
    def _widths(arch: dict) -> list[int]:
        """Output widths by position: ``[stem, s1, s2, ...]``; stage i reads index i."""
        return [int(arch['stem_channels'])] + [int(r[3]) for r in arch['stages']]

    def _groups(self, arch: dict) -> list[list[int]]:
        """Positions (-1 = stem, i = stage i + 1) joined by full residuals, in order: a
        stage joins the group before it where its first block has a shortcut."""
        from mmbackbones.models import EfficientNet

        blocks = EfficientNet.layout(arch)[1:-1]
        firsts = [
            next(b for b in blocks if b.stage == st) for st in range(1, len(arch['stages']) + 1)
        ]
        return _residual_groups([b.has_shortcut for b in firsts])

    @staticmethod
    def _structure(arch: dict) -> list[tuple[bool, bool]]:
        """Per block: (has an expansion conv, has a shortcut), as the backbone decides."""
        from mmbackbones.models import EfficientNet

        return [(b.with_expand, b.has_shortcut) for b in EfficientNet.layout(arch)[1:-1]]

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        widths = self._widths(arch)
        out = _group_out_knobs(self._groups(arch), widths, 's', offset=1)
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


class AnyNetKnobs(WidthKnobs):
    """Knobs of :class:`AnyNet`, and of RegNet / ResNeXt through their AnyNet arch (see
    the module docstring).

    Args:
        source (str): The family whose presets / arch dicts :meth:`start_arch` reads:
            ``'AnyNet'``, ``'RegNet'`` or ``'ResNeXt'``. The adapted arch is always an
            explicit ``AnyNet`` arch dict.

    Example:
        >>> k = AnyNetKnobs('ResNeXt')
        >>> arch = k.start_arch('50_32x4d')
        >>> arch['widths'], arch['group_ws']
        ([256, 512, 1024, 2048], [4, 8, 16, 32])
        >>> ' '.join(x.name for x in k.knobs(arch))
        'stem.out s1.out s2.out s3.out s4.out s1.bot s2.bot s3.bot s4.bot'
        >>> k.candidates(arch, k.knobs(arch)[5])[:3]  # s1: 128 = 32 groups of 4, 2 at a time
        [120, 112, 104]
    """

    family = 'AnyNet'

    def __init__(self, source: str = 'AnyNet') -> None:
        self.source = source

    def start_arch(self, arch: str | dict, widen_factor: float = 1.0) -> dict[str, Any]:
        from mmbackbones.models import family_class

        if widen_factor != 1.0:
            raise ValueError(
                f'NetAdapt: {self.source} has no width multiplier; use widen_factor=1.0 '
                f'(got {widen_factor}) and an arch with the widths to start from'
            )
        full = family_class(self.source).to_anynet(arch)
        if full['block_type'] == 'res_bottleneck':  # exact bottleneck widths, written out
            full['bot_muls'] = [
                self._bot(w, b) / w for w, b in zip(full['widths'], full['bot_muls'])
            ]
        return full

    @staticmethod
    def _bot(width: int, bot_mul: float) -> int:
        return int(round(width * bot_mul))

    @staticmethod
    def _widths(arch: dict) -> list[int]:
        """Output widths by position: ``[stem, s1, s2, ...]``; stage i reads index i."""
        return [int(arch['stem_w'])] + [int(w) for w in arch['widths']]

    def _projections(self, arch: dict) -> list[bool]:
        """Per stage: whether its first block has a projection shortcut."""
        if arch['block_type'] == 'vanilla':
            return [False] * len(arch['widths'])
        w = self._widths(arch)
        return [s != 1 or w[i] != w[i + 1] for i, s in enumerate(arch['strides'])]

    def _groups(self, arch: dict) -> list[list[int]]:
        residual = arch['block_type'] != 'vanilla'
        return _residual_groups([residual and not p for p in self._projections(arch)])

    def knobs(self, arch: dict[str, Any]) -> list[Knob]:
        widths = self._widths(arch)
        out = _group_out_knobs(self._groups(arch), widths, 's', offset=1)
        if arch['block_type'] == 'res_bottleneck':
            for i, (w, b) in enumerate(zip(arch['widths'], arch['bot_muls'])):
                out.append(Knob(f's{i + 1}.bot', 'bot', self._bot(w, b), DIVISOR, (i,)))
        return [k for k in out if self.candidates(arch, k)]

    def _step(self, arch: dict, i: int) -> int:
        g = arch['group_ws'][i]
        return lcm(int(g), DIVISOR) if g else DIVISOR

    def candidates(self, arch: dict[str, Any], knob: Knob) -> list[int]:
        if knob.kind == 'bot':
            (i,) = knob.positions
            step = self._step(arch, i)
            g = arch['group_ws'][i]
            lo = max(step, 2 * g) if g else step  # a grouped conv keeps >= 2 groups
            return list(range((knob.width - 1) // step * step, lo - 1, -step))
        ref = self._projections(arch)
        ws = _smaller_multiples(knob.width, knob.min_width)
        return [w for w in ws if self._projections(self.apply(arch, knob, w)) == ref]

    def apply(self, arch: dict[str, Any], knob: Knob, width: int) -> dict[str, Any]:
        new = copy.deepcopy(arch)
        bottleneck = arch['block_type'] == 'res_bottleneck'
        if knob.kind == 'out':
            for p in knob.positions:
                if p < 0:
                    new['stem_w'] = width
                    continue
                if bottleneck:  # the bottleneck width stays
                    new['bot_muls'][p] = self._bot(arch['widths'][p], arch['bot_muls'][p]) / width
                new['widths'][p] = width
        elif knob.kind == 'bot':
            (p,) = knob.positions
            new['bot_muls'][p] = width / arch['widths'][p]
        else:
            raise ValueError(f'AnyNet: unknown knob kind {knob.kind!r}')
        return new


FAMILIES: dict[str, WidthKnobs] = {
    'MobileNetV3': MobileNetV3Knobs(),
    'ReXNet': ReXNetKnobs(),
    'EfficientNet': EfficientNetKnobs(),
    'AnyNet': AnyNetKnobs('AnyNet'),
    'RegNet': AnyNetKnobs('RegNet'),
    'ResNeXt': AnyNetKnobs('ResNeXt'),
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
            f'{sorted(FAMILIES)}'
        )
    return FAMILIES[name]

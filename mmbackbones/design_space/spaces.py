"""Design spaces as data: a name, parameter ranges and a function ``design -> arch``.

The four spaces of Radosavovic et al., "On Network Design Spaces for Visual Recognition"
(ICCV 2019), REFERENCE.md "Network design spaces": a CIFAR stem (16 channels, 3x3,
stride 1), three stages (strides 1, 2, 2) and a pool + linear head on 32x32 inputs. A range
``"a,b,n"`` is ``n`` values spaced evenly in log space from ``a`` to ``b``, rounded to
integers, drawn independently per stage:

=========  ========  ==========  ================  ======  ============
space      depth     width       bottleneck ratio  groups  models
=========  ========  ==========  ================  ======  ============
Vanilla    1,24,9    16,256,12   -                 -       1,259,712
ResNet     1,24,9    16,256,12   -                 -       1,259,712
ResNeXt-A  1,16,5    16,256,5    1,4,3             1,4,3   11,390,625
ResNeXt-B  1,16,5    64,1024,5   1,4,3             1,16,5  52,734,375
=========  ========  ==========  ================  ======  ============

``size`` is the number of grid points (the published totals). Rounding ``1,24,9`` gives
``[1, 1, 2, 3, 5, 7, 11, 16, 24]``: depth 1 appears twice, so it is drawn with twice the
probability and the number of *distinct* architectures (``distinct_size``) of Vanilla and
ResNet is ``(8 * 12) ** 3 = 884,736``. A bottleneck ratio ``b`` means ``w_b = w / b``
(``bot_mul = 1 / b``) and ``g`` groups means group width ``w_b / g``.

Also, from Radosavovic et al., "Designing Network Design Spaces" (CVPR 2020):

* ``anynetx``: 4 stages, ``d_i <= 16``, ``w_i`` a multiple of 8 up to 1024, ``b_i in
  {1, 2, 4}``, group width ``g_i in {1, 2, 4, 8, 16, 32}`` (powers of two, as pycls's
  sweeps), made compatible with :func:`adjust_block_compatibility`.
* ``regnet``: ``d in [1, 63]``, ``w0`` a multiple of 8 in [8, 248] and ``wa`` in [8, 256)
  (log-uniform), ``1.5 <= wm <= 3`` (log-uniform, quantum 0.001), ``b``, ``g`` as AnyNetX.

Both use the ImageNet stem (32 channels, 3x3 stride 2) as in the paper; complexity is
reported at this toolkit's 32x32 training resolution.

``rexnet``: channel configurations of ReXNet (Han et al., CVPR 2021) over the fixed
16-block layout: block widths are the piecewise-linear interpolation between four knots
at blocks 0, 5, 10, 15, each knot a multiple of 8 in [16, 320] (sorted, so widths never
shrink), rounded to integers. Records carry ``family: 'ReXNet'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbackbones.models.backbones.regnet import RegNet, adjust_block_compatibility
from mmbackbones.models.backbones.rexnet import ReXNet

#: Input resolution and number of classes the sampled models are scored (and trained) at.
INPUT_SIZE = 32
NUM_CLASSES = 10


def log_ints(a: float, b: float, n: int) -> tuple[int, ...]:
    """``"a,b,n"``: n values evenly spaced in log space from a to b, rounded (duplicates kept).

    Example:
        >>> log_ints(16, 256, 5)
        (16, 32, 64, 128, 256)
    """
    return tuple(int(v) for v in np.rint(np.logspace(np.log10(a), np.log10(b), n)))


def pow2(a: int, b: int) -> tuple[int, ...]:
    """Powers of two from a to b inclusive."""
    return tuple(2**k for k in range(int(np.log2(a)), int(np.log2(b)) + 1))


def uniform_ints(a: int, b: int, step: int = 1) -> tuple[int, ...]:
    """Integers a, a + step, ..., up to b inclusive."""
    return tuple(range(a, b + 1, step))


@dataclass(frozen=True)
class Param:
    """One design parameter.

    ``values`` is a quantised choice list (drawn uniformly) or, for ``kind='log_uniform'``,
    ``(lo, hi)`` of a continuous log-uniform draw rounded to a multiple of ``q``.
    ``per_stage`` parameters are drawn independently for each of ``stages`` stages.
    """

    name: str
    values: tuple
    per_stage: bool = True
    kind: str = 'choice'  # 'choice' | 'log_uniform'
    q: float = 1.0

    def draw(self, rng: np.random.Generator, stages: int) -> Any:
        k = stages if self.per_stage else 1
        if self.kind == 'choice':
            out = [self.values[i] for i in rng.integers(0, len(self.values), k)]
        else:
            lo, hi = self.values
            x = np.exp(rng.uniform(np.log(lo), np.log(hi), k))
            out = [float(np.round(np.round(v / self.q) * self.q, 6)) for v in x]
            out = [min(max(v, lo), hi) for v in out]
        return out if self.per_stage else out[0]


@dataclass(frozen=True)
class DesignSpace:
    """A design space: parameters, how many stages, and ``design -> (family, arch)``."""

    name: str
    family: str
    params: tuple[Param, ...]
    stages: int
    to_arch: Callable[[dict], dict] = field(repr=False)
    description: str = ''

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One design (parameter values), uniformly from the space."""
        return {p.name: p.draw(rng, self.stages) for p in self.params}

    @property
    def size(self) -> int | None:
        """Number of grid points (``None`` if a parameter is continuous)."""
        if any(p.kind != 'choice' for p in self.params):
            return None
        return int(
            np.prod([len(p.values) ** (self.stages if p.per_stage else 1) for p in self.params])
        )

    @property
    def distinct_size(self) -> int | None:
        """Number of distinct parameter tuples (duplicate grid values counted once)."""
        if any(p.kind != 'choice' for p in self.params):
            return None
        return int(
            np.prod(
                [len(set(p.values)) ** (self.stages if p.per_stage else 1) for p in self.params]
            )
        )

    def ranges(self) -> dict[str, tuple]:
        return {p.name: p.values for p in self.params}


def arch_key(family: str, arch: dict) -> str:
    """A canonical string of an arch (de-duplication and resume key)."""
    return family + ':' + json.dumps(arch, sort_keys=True, separators=(',', ':'))


# ------------------------------------------------------------------ NDS (ICCV 2019)


def _nds_arch(block_type: str) -> Callable[[dict], dict]:
    def to_arch(d: dict) -> dict:
        arch = dict(
            stem_type='cifar',
            stem_w=16,
            block_type=block_type,
            depths=list(d['depth']),
            widths=list(d['width']),
            strides=[1, 2, 2],
        )
        if block_type == 'res_bottleneck':
            arch['bot_muls'] = [1.0 / b for b in d['bot_ratio']]
            arch['group_ws'] = [
                w // b // g for w, b, g in zip(d['width'], d['bot_ratio'], d['groups'])
            ]
        return arch

    return to_arch


def _nds(name: str, block: str, depth, width, bot=None, groups=None) -> DesignSpace:
    params = [Param('depth', log_ints(*depth)), Param('width', log_ints(*width))]
    if bot is not None:
        params += [Param('bot_ratio', log_ints(*bot)), Param('groups', log_ints(*groups))]
    return DesignSpace(name, 'AnyNet', tuple(params), 3, _nds_arch(block), 'NDS ' + name)


# ------------------------------------------------------------------ RegNet paper (CVPR 2020)

_B = (1, 2, 4)
_G = pow2(1, 32)


def _anynetx_arch(d: dict) -> dict:
    bot_muls = [1.0 / b for b in d['bot_ratio']]
    widths, bot_muls, group_ws = adjust_block_compatibility(d['width'], bot_muls, d['group_w'])
    return dict(
        stem_type='imagenet',
        stem_w=32,
        block_type='res_bottleneck',
        depths=list(d['depth']),
        widths=widths,
        bot_muls=bot_muls,
        group_ws=group_ws,
    )


def _regnet_arch(d: dict) -> dict:
    arch = dict(
        w0=d['w0'],
        wa=d['wa'],
        wm=d['wm'],
        depth=d['depth'],
        bot_mul=1.0 / d['bot_ratio'],
        group_w=d['group_w'],
    )
    a = RegNet.to_anynet(arch)
    del a['se_ratio']
    return a


# ------------------------------------------------------------------ ReXNet channels

#: the number of blocks of ReXNet's layout (16), read from the family
REXNET_BLOCKS = sum(b.kind == 'block' for b in ReXNet.layout('1.0'))
REXNET_KNOTS = (0, 5, 10, 15)


def rexnet_widths(knots: list[int]) -> list[int]:
    """Piecewise-linear block widths through ``knots`` at blocks :data:`REXNET_KNOTS`."""
    x = np.arange(REXNET_BLOCKS)
    return [int(v) for v in np.rint(np.interp(x, REXNET_KNOTS, knots))]


def _rexnet_arch(d: dict) -> dict:
    return dict(width_mult=1.0, channels=rexnet_widths(sorted(d['knot_width'])))


SPACES: dict[str, DesignSpace] = {
    s.name: s
    for s in (
        _nds('vanilla', 'vanilla', (1, 24, 9), (16, 256, 12)),
        _nds('resnet', 'res_basic', (1, 24, 9), (16, 256, 12)),
        _nds('resnext_a', 'res_bottleneck', (1, 16, 5), (16, 256, 5), (1, 4, 3), (1, 4, 3)),
        _nds('resnext_b', 'res_bottleneck', (1, 16, 5), (64, 1024, 5), (1, 4, 3), (1, 16, 5)),
        DesignSpace(
            'anynetx',
            'AnyNet',
            (
                Param('depth', uniform_ints(1, 16)),
                Param('width', uniform_ints(8, 1024, 8)),
                Param('bot_ratio', _B),
                Param('group_w', _G),
            ),
            4,
            _anynetx_arch,
            'AnyNetX (RegNet paper)',
        ),
        DesignSpace(
            'regnet',
            'AnyNet',
            (
                Param('depth', uniform_ints(1, 63), per_stage=False),
                Param('w0', uniform_ints(8, 248, 8), per_stage=False),
                Param('wa', (8.0, 256.0), per_stage=False, kind='log_uniform', q=0.1),
                Param('wm', (1.5, 3.0), per_stage=False, kind='log_uniform', q=0.001),
                Param('bot_ratio', _B, per_stage=False),
                Param('group_w', _G, per_stage=False),
            ),
            1,
            _regnet_arch,
            'RegNet (RegNet paper)',
        ),
        DesignSpace(
            'rexnet',
            'ReXNet',
            (Param('knot_width', uniform_ints(16, 320, 8)),),
            len(REXNET_KNOTS),
            _rexnet_arch,
            'ReXNet channel configurations (16 blocks, piecewise linear)',
        ),
    )
}
#: Aliases with the paper's spelling.
ALIASES = {
    'Vanilla': 'vanilla',
    'ResNet': 'resnet',
    'ResNeXt-A': 'resnext_a',
    'ResNeXt-B': 'resnext_b',
    'AnyNetX': 'anynetx',
    'RegNet': 'regnet',
    'ReXNet': 'rexnet',
}


def get_space(name: str) -> DesignSpace:
    """The design space ``name`` (a key of :data:`SPACES` or an alias such as 'ResNeXt-A').

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = ALIASES.get(name, name).lower().replace('-', '_')
    if key not in SPACES:
        raise ValueError(
            f'unknown design space {name!r}; known: {sorted(SPACES)} '
            f'(aliases {sorted(ALIASES)})'
        )
    return SPACES[key]

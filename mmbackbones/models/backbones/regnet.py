"""RegNet: "Designing Network Design Spaces" (Radosavovic et al., CVPR 2020).

A four-number generator (``w0``, ``wa``, ``wm``, ``depth``) gives per-stage widths and
depths (:func:`generate_regnet`), pycls's LCM rule makes widths and group widths
compatible (:func:`adjust_block_compatibility`), and the result is an AnyNet
(``anynet.py``) with the ``'imagenet'`` 3x3 stem and residual bottleneck blocks
(pycls ``regnet.py``). RegNetY adds SE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, ClassVar

from mmbackbones.registry import MODELS

from .anynet import AnyNet

# ---------------------------------------------------------------------------------------
# The generator and pycls's width/group compatibility rule
# ---------------------------------------------------------------------------------------


def generate_regnet(
    w0: int, wa: float, wm: float, depth: int, q: int = 8
) -> tuple[list[int], list[int]]:
    """Per-stage widths and depths of a RegNet (Radosavovic et al. 2020, Sec. 3.3).

    Block ``j`` gets the linear width ``u_j = w0 + wa * j``, which is snapped to the
    nearest power of ``wm`` in log space from ``w0`` (``w0 * wm ** round(log_wm(u_j /
    w0))``) and quantized to a multiple of ``q``. Consecutive blocks of equal width form
    a stage.

    Args:
        w0 (int): Initial width (a multiple of ``q``).
        wa (float): Slope of the linear width parameterisation (>= 0).
        wm (float): Width multiplier between stages (> 1).
        depth (int): Total number of blocks.
        q (int): Width quantum. Default: 8.

    Returns:
        tuple[list[int], list[int]]: ``(widths, depths)`` per stage (before
        :func:`adjust_block_compatibility`).

    Example:
        >>> generate_regnet(24, 24.48, 2.54, 22)  # RegNetX-400MF, before rounding to 16
        ([24, 64, 152, 392], [1, 2, 7, 12])
    """
    if not (wa >= 0 and w0 > 0 and wm > 1 and depth >= 1 and w0 % q == 0):
        raise ValueError(
            f'RegNet: need wa >= 0, w0 > 0, wm > 1, depth >= 1 and w0 % q == 0'
            f', got w0={w0}, wa={wa}, wm={wm}, depth={depth}, q={q}'
        )
    log_wm = math.log(wm)
    widths: list[int] = []
    depths: list[int] = []
    for j in range(depth):
        k = round(math.log((w0 + wa * j) / w0) / log_wm)
        w = int(round(w0 * wm**k / q)) * q
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    return widths, depths


def adjust_block_compatibility(
    widths: Sequence[int], bot_muls: Sequence[float], group_ws: Sequence[int]
) -> tuple[list[int], list[float], list[int]]:
    """Make widths, bottleneck multipliers and group widths compatible (pycls's rule).

    The bottleneck width ``v = w * b`` must be a multiple of the group width ``g``
    (capped at ``v``) *and* give back an integer stage width ``v / b``. With ``b > 1``
    both hold only for multiples of ``lcm(g, b)`` (for a fractional ``b = p / r``, of
    ``lcm(g, p)``), so ``v`` is rounded to the nearest such multiple. Rounding to a
    multiple of ``g`` alone (mmdet) can leave ``round(w * b) % g != 0``.

    Returns:
        tuple: ``(widths, bot_muls, group_ws)``.

    Example:
        >>> adjust_block_compatibility([56], [4.0], [6])  # lcm(6, 4) = 12: 224 -> 228
        ([57], [4.0], [6])
    """
    if not len(widths) == len(bot_muls) == len(group_ws):
        raise ValueError(
            'adjust_block_compatibility: widths, bot_muls and group_ws must '
            'have the same length'
        )
    if not all(w > 0 and b > 0 and g > 0 for w, b, g in zip(widths, bot_muls, group_ws)):
        raise ValueError(
            'adjust_block_compatibility: widths, bot_muls and group_ws must '
            f'be positive, got {widths}, {bot_muls}, {group_ws}'
        )
    out_w, out_g = [], []
    for w, b, g in zip(widths, bot_muls, group_ws):
        v = int(max(1, w * b))
        g = int(min(g, v))
        m = math.lcm(g, Fraction(b).limit_denominator(1000).numerator) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        out_w.append(int(v / b))
        out_g.append(g)
    return out_w, list(bot_muls), out_g


def regnet_to_anynet(arch: dict[str, Any]) -> dict[str, Any]:
    """The AnyNet arch of a RegNet arch dict (pycls ``RegNet.get_params``)."""
    widths, depths = generate_regnet(arch['w0'], arch['wa'], arch['wm'], arch['depth'], arch['q'])
    n = len(widths)
    widths, bot_muls, group_ws = adjust_block_compatibility(
        widths, [arch['bot_mul']] * n, [arch['group_w']] * n
    )
    return dict(
        stem_type='imagenet',
        stem_w=arch['stem_w'],
        block_type='res_bottleneck',
        depths=depths,
        widths=widths,
        strides=[2] * n,
        bot_muls=bot_muls,
        group_ws=group_ws,
        se_ratio=arch['se_ratio'],
    )


# The arch dict: keys and defaults (RegNet.default_arch).
REGNET_DEFAULT_ARCH: dict[str, Any] = dict(
    w0=None,  # initial width (multiple of q)
    wa=None,  # slope of the linear widths
    wm=None,  # width multiplier between stages (log-space quantization)
    depth=None,  # total number of blocks
    group_w=None,  # group width of the 3x3 convs
    bot_mul=1.0,  # bottleneck multiplier (1 for RegNetX/Y)
    se_ratio=0.0,  # SE width / block input width (RegNetY: 0.25)
    stem_w=32,  # 'imagenet' (pycls simple_stem_in) stem width
    q=8,  # width quantum of the generator
)


def _regnet(
    w0: int, wa: float, wm: float, group_w: int, depth: int, se_ratio: float = 0.0
) -> dict[str, Any]:
    return dict(w0=w0, wa=wa, wm=wm, group_w=group_w, depth=depth, se_ratio=se_ratio)


@MODELS.register_module()
class RegNet(AnyNet):
    """RegNetX / RegNetY (Radosavovic et al., CVPR 2020) on the AnyNet machinery.

    :func:`generate_regnet` turns (w0, wa, wm, depth) into per-stage widths and depths,
    :func:`adjust_block_compatibility` makes widths and group widths compatible (pycls's
    LCM rule), and the result is an AnyNet with the ``'imagenet'`` 3x3 stem (32 channels)
    and residual bottleneck blocks, stride 2 per stage; RegNetY adds SE (0.25 of the
    block input width) after the 3x3.

    Taps: 0: stem@/2, 1-4: the four stages @/4, /8, /16, /32 (the default).

    Args:
        arch (str | dict): A preset (``'regnetx_400mf'``, ``'regnetx_800mf'``,
            ``'regnetx_1.6gf'``, ``'regnetx_3.2gf'``, ``'regnetx_4.0gf'``,
            ``'regnetx_6.4gf'``, ``'regnetx_8.0gf'``, ``'regnetx_12gf'`` and the
            ``'regnety_*'`` counterparts) or a dict with keys ``w0``, ``wa``, ``wm``,
            ``depth``, ``group_w``, ``bot_mul`` (1.0), ``se_ratio`` (0.0), ``stem_w``
            (32), ``q`` (8). Default: ``'regnetx_400mf'``.
        out_indices (Sequence[int] | None): Taps to return; ``None`` = the stage outputs.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``init_cfg`` and the contract's arguments,
            see :class:`AnyNet`.

    Example:
        >>> import torch
        >>> m = RegNet('regnetx_3.2gf').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 96, 56, 56), (1, 192, 28, 28), (1, 432, 14, 14), (1, 1008, 7, 7)]
    """

    # Columns: w0, wa, wm, group_w, depth (pycls dds_baselines; REFERENCE.md / timm)
    arch_settings: ClassVar[dict[str, Any]] = {
        'regnetx_400mf': _regnet(24, 24.48, 2.54, 16, 22),
        'regnetx_800mf': _regnet(56, 35.73, 2.28, 16, 16),
        'regnetx_1.6gf': _regnet(80, 34.01, 2.25, 24, 18),
        'regnetx_3.2gf': _regnet(88, 26.31, 2.25, 48, 25),
        'regnetx_4.0gf': _regnet(96, 38.65, 2.43, 40, 23),
        'regnetx_6.4gf': _regnet(184, 60.83, 2.07, 56, 17),
        'regnetx_8.0gf': _regnet(80, 49.56, 2.88, 120, 23),
        'regnetx_12gf': _regnet(168, 73.36, 2.37, 112, 19),
        'regnety_400mf': _regnet(48, 27.89, 2.09, 8, 16, se_ratio=0.25),
        'regnety_800mf': _regnet(56, 38.84, 2.4, 16, 14, se_ratio=0.25),
        'regnety_1.6gf': _regnet(48, 20.71, 2.65, 24, 27, se_ratio=0.25),
        'regnety_3.2gf': _regnet(80, 42.63, 2.66, 24, 21, se_ratio=0.25),
        'regnety_4.0gf': _regnet(96, 31.41, 2.24, 64, 22, se_ratio=0.25),
        'regnety_6.4gf': _regnet(112, 33.22, 2.27, 72, 25, se_ratio=0.25),
        'regnety_8.0gf': _regnet(192, 76.82, 2.19, 56, 17, se_ratio=0.25),
        'regnety_12gf': _regnet(168, 73.36, 2.37, 112, 19, se_ratio=0.25),
    }
    default_arch: ClassVar[dict[str, Any]] = REGNET_DEFAULT_ARCH
    positive_arch_keys = ('group_w', 'bot_mul', 'stem_w', 'q')

    def __init__(
        self,
        arch: str | dict = 'regnetx_400mf',
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, out_indices=out_indices, **kwargs)

    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ('w0', 'wa', 'wm', 'depth', 'group_w') if arch[k] is None]
        if missing:
            raise ValueError(
                f'RegNet: arch dict is missing {missing}; valid keys are '
                f'{sorted(REGNET_DEFAULT_ARCH)}'
            )
        return regnet_to_anynet(arch)


__all__ = ['RegNet', 'adjust_block_compatibility', 'generate_regnet', 'regnet_to_anynet']

"""ResNeXt: "Aggregated Residual Transformations for Deep Neural Networks" (Xie et al.,
CVPR 2017), on the AnyNet machinery (``anynet.py``).

The bottleneck's 3x3 is a grouped convolution of cardinality C and width ``C * d``
(doubled per stage); :func:`resnext_to_anynet` translates the (depths, C, d) arch into
AnyNet's per-stage lists with the ResNet stem (7x7 + max-pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from mmbackbones.registry import MODELS

from .anynet import AnyNet


def resnext_to_anynet(arch: dict[str, Any]) -> dict[str, Any]:
    """The AnyNet arch of a ResNeXt arch dict: C x d bottlenecks, both doubled per stage.

    Stage ``i`` (from 0) has bottleneck width ``C * d * 2**i`` (grouped 3x3 of cardinality
    ``C``, group width ``d * 2**i``) and output width ``widths[i]`` (``256 * 2**i``), so
    ``bot_mul = C * d * 2**i / widths[i]`` (pycls ``X-50-32x4d``: 0.5, group widths
    4/8/16/32).
    """
    c, d = arch['cardinality'], arch['base_width']
    n = len(arch['depths'])
    widths = list(arch['widths'])
    if len(widths) != n:
        raise ValueError(
            f'ResNeXt: widths {widths} and depths {arch["depths"]} must have '
            'one entry per stage'
        )
    w_bs = [c * d * 2**i for i in range(n)]
    return dict(
        stem_type='resnet',
        stem_w=arch['stem_w'],
        block_type='res_bottleneck',
        depths=list(arch['depths']),
        widths=widths,
        strides=[1] + [2] * (n - 1),
        bot_muls=[w_b / w for w_b, w in zip(w_bs, widths)],
        group_ws=[d * 2**i for i in range(n)],
        se_ratio=0.0,
    )


# The arch dict: keys and defaults (ResNeXt.default_arch).
RESNEXT_DEFAULT_ARCH: dict[str, Any] = dict(
    depths=None,  # blocks per stage, e.g. (3, 4, 6, 3) for ResNeXt-50
    cardinality=32,  # C: groups of the 3x3 conv
    base_width=4,  # d: channels per group in the first stage (doubled every stage)
    widths=(256, 512, 1024, 2048),  # stage output widths (expansion 4)
    stem_w=64,  # 7x7 stem width
)


@MODELS.register_module()
class ResNeXt(AnyNet):
    """ResNeXt (Xie et al., CVPR 2017) on the AnyNet machinery.

    The torchvision/pycls layout: 7x7 stride-2 stem (64) + 3x3 stride-2 max-pool, then
    bottleneck blocks whose 3x3 is a grouped conv of cardinality C and width ``C * d``
    (doubled per stage), stride on the 3x3, expansion 4 (outputs 256/512/1024/2048), a
    1x1 projection shortcut when the shape changes. It is the arch translation
    :func:`resnext_to_anynet`; ``cardinality=1, base_width=64`` gives ResNet.

    Taps: 0: stem@/2 (before the max-pool), 1-4: the four stages @/4../32 (the default).

    Args:
        arch (str | dict): A preset (``'50_32x4d'``, ``'101_32x4d'``, ``'101_64x4d'``,
            ``'152_32x4d'``, ``'101_32x8d'``) or a dict with keys ``depths``,
            ``cardinality`` (32), ``base_width`` (4), ``widths`` ((256, 512, 1024, 2048)),
            ``stem_w`` (64). Default: ``'50_32x4d'``.
        out_indices (Sequence[int] | None): Taps to return; ``None`` = the stage outputs.
        **kwargs: ``norm_cfg``, ``act_cfg``, ``init_cfg`` and the contract's arguments,
            see :class:`AnyNet`.

    Example:
        >>> import torch
        >>> m = ResNeXt('50_32x4d').eval()
        >>> [tuple(o.shape) for o in m(torch.rand(1, 3, 224, 224))]
        [(1, 256, 56, 56), (1, 512, 28, 28), (1, 1024, 14, 14), (1, 2048, 7, 7)]
    """

    # Columns: blocks per stage, cardinality C, bottleneck width d (the name's "CxDd")
    arch_settings: ClassVar[dict[str, Any]] = {
        '50_32x4d': dict(depths=(3, 4, 6, 3), cardinality=32, base_width=4),
        '101_32x4d': dict(depths=(3, 4, 23, 3), cardinality=32, base_width=4),
        '101_64x4d': dict(depths=(3, 4, 23, 3), cardinality=64, base_width=4),
        '152_32x4d': dict(depths=(3, 8, 36, 3), cardinality=32, base_width=4),
        '101_32x8d': dict(depths=(3, 4, 23, 3), cardinality=32, base_width=8),
    }
    default_arch: ClassVar[dict[str, Any]] = RESNEXT_DEFAULT_ARCH
    positive_arch_keys = ('cardinality', 'base_width', 'stem_w')

    def __init__(
        self,
        arch: str | dict = '50_32x4d',
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, out_indices=out_indices, **kwargs)

    @classmethod
    def _family_to_anynet(cls, arch: dict[str, Any]) -> dict[str, Any]:
        if arch['depths'] is None:
            raise ValueError(
                f'ResNeXt: arch dict needs "depths"; valid keys are '
                f'{sorted(RESNEXT_DEFAULT_ARCH)}'
            )
        return resnext_to_anynet(arch)


__all__ = ['ResNeXt', 'resnext_to_anynet']

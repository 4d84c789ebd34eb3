"""Drop one of our backbones into an mmdet/mmseg config: the config rewriter behind
``tools/dropin.py``.

The written config inherits the host config unchanged (``_base_``) and overrides only what
must change, each key with a comment saying why:

* ``custom_imports`` (registers ``mmbackbones.*``) and the backbone (``_delete_=True``,
  the scoped type, ``arch``, ``out_indices``, ``output_stride`` for dilated hosts, the
  ``Pretrained`` init of ``weights``);
* every channel count that reads the backbone: the neck's ``in_channels`` (list: one per
  output; int: the last output, as mmdet's DilatedEncoder and CTResNetNeck read it) or,
  for an mmseg model without neck, each decode/auxiliary head's ``in_channels`` at its
  ``in_index`` and DeepLabV3+'s ``c1_in_channels`` (output ``c1_in_index``, 0 when unset:
  mmseg's head reads ``inputs[0]``). Values are mapped by output position (the host's
  i-th output -> ours i-th), and each host value is checked against the host backbone's
  channel at that position first;
* mmseg's model-level ``pretrained`` (set to ``None``), the data preprocessor's
  mean/std/colour order (those our weights expect) and, optionally, SyncBN -> BN.

**How the taps are chosen.** The host backbone is built (on the meta device, or on the CPU
when a layer cannot run there) and run on a 256x256 input: its outputs give the channels
and strides the neck/heads consume. Our taps (``feature_info``) are the last layer at each
nominal reduction; the 1x1 head conv of the mobile families is never used (the stride-32
level is the last block, C5, as in our own configs). Each host output gets the tap at its
stride. A dilated host (a conv with dilation > 1 and a deepest stride under 32, like
mmseg's ``-d8`` ResNetV1c) sets our ``output_stride`` to that stride; several of its
outputs then share a stride and take our deepest taps at it, in depth order.

Example:
    >>> from mmbackbones.dropin import plan_dropin
    >>> plan = plan_dropin('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'ReXNet', '1.0')
    >>> plan.host_backbone.strides, plan.out_indices, plan.out_channels
    ([4, 8, 16, 32], (1, 2, 3, 4), [38, 61, 128, 185])
"""

from __future__ import annotations

import os.path as osp
import tempfile
from typing import Any

import torch
import torch.nn as nn

from .host import measure_host_backbone, resolve_host
from .plan import choose_taps, plan_dropin
from .types import IMPORT, PROBE_SIZE, Change, DropIn, DropInError, HostBackbone

__all__ = [
    'IMPORT',
    'PROBE_SIZE',
    'Change',
    'DropIn',
    'DropInError',
    'HostBackbone',
    'check_dropin',
    'choose_taps',
    'dropin_config',
    'dropin_overrides',
    'measure_host_backbone',
    'plan_dropin',
    'resolve_host',
]


# ----------------------------------------------------------------- entry points
def dropin_overrides(
    host: str, backbone: str, arch: str | dict | None = None, **options: Any
) -> dict[str, Any]:
    """The keys :func:`dropin_config` writes, as a nested dict to merge into the host
    config (``cfg.merge_from_dict(overrides)``, which honours ``_delete_``).

    Args:
        host (str): The host config, as :func:`plan_dropin`.
        backbone (str): Our family.
        arch (str | dict | None): Its arch.
        **options: ``weights``, ``no_syncbn``, as :func:`plan_dropin`.

    Example:
        >>> o = dropin_overrides('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'ReXNet', '1.0')
        >>> o['model']['backbone']['out_indices'], o['model']['neck']
        ((1, 2, 3, 4), {'in_channels': [38, 61, 128, 185]})
    """
    return plan_dropin(host, backbone, arch, **options).overrides


def dropin_config(
    host: str,
    backbone: str,
    arch: str | dict | None = None,
    weights: str | None = None,
    no_syncbn: bool = False,
    out: str | None = None,
    check: bool = False,
) -> str:
    """The text of a config that inherits ``host`` and drops our ``backbone`` in.

    Args:
        host, backbone, arch, weights, no_syncbn: as :func:`plan_dropin`.
        out (str | None): Write the config there too (folders are created).
        check (bool): Build the written config's model and run one forward on a
            ``PROBE_SIZE`` image (:func:`check_dropin`). Default: False.

    Returns:
        str: The config file's text.

    Example:
        >>> text = dropin_config('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', 'ReXNet')
        >>> for line in text.splitlines():
        ...     if line.lstrip().startswith(('_base_', 'out_indices', 'neck')):
        ...         print(line)
        _base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
                out_indices=(1, 2, 3, 4),
            neck=dict(in_channels=[38, 61, 128, 185]),
    """
    plan = plan_dropin(host, backbone, arch, weights=weights, no_syncbn=no_syncbn, out=out)
    text = plan.write(out) if out is not None else plan.text()
    if check:
        check_dropin(out if out is not None else text, plan)
    return text


def check_dropin(config: str, plan: DropIn | None = None) -> list[tuple[int, int]]:
    """Build a written drop-in config's model (no weights loaded, SyncBN as BN) and run one
    forward on a ``PROBE_SIZE`` x ``PROBE_SIZE`` image: the backbone and neck (mmdet), the
    backbone and every decode/auxiliary head (mmseg).

    Args:
        config (str): The config file, or its text.
        plan (DropIn | None): Also check the backbone's outputs against the plan.

    Returns:
        list[tuple[int, int]]: ``(channels, stride)`` of each backbone output.

    Raises:
        DropInError: the outputs differ from the plan's, or a module refused them.
    """
    from mmbackbones.apis import init_model

    if not osp.isfile(config):
        with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
            f.write(config)
        config = f.name
    model = init_model(config)
    x = torch.rand(1, 3, PROBE_SIZE, PROBE_SIZE)
    with torch.no_grad():
        outs = model.backbone(x)
        got = [(int(o.shape[1]), PROBE_SIZE // o.shape[-1]) for o in outs]
        if plan is not None and got != list(zip(plan.out_channels, plan.out_strides)):
            raise DropInError(
                f'the built backbone gives {got} (channels, stride), the plan '
                f'{list(zip(plan.out_channels, plan.out_strides))}'
            )
        try:
            feats = model.neck(outs) if getattr(model, 'neck', None) is not None else outs
            heads = getattr(model, 'decode_head', None)
            prev = None  # a cascade (mmseg's OCRNet): each head also takes the previous one's
            for head in heads if isinstance(heads, nn.ModuleList) else [heads]:
                if head is not None:
                    prev = head(feats) if prev is None else head(feats, prev)
            heads = getattr(model, 'auxiliary_head', None)
            for head in heads if isinstance(heads, nn.ModuleList) else [heads]:
                if head is not None:
                    head(feats)
        except RuntimeError as e:
            raise DropInError(f'the rewritten model does not run: {e}') from None
    return got

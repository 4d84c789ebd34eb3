"""Choosing our taps and the keys to change: :func:`plan_dropin`."""

from __future__ import annotations

import inspect
import os.path as osp
import shlex
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from mmbackbones.apis import host_of
from mmbackbones.utils.nested import walk_config

from .host import measure_host_backbone, resolve_host
from .render import _apply, _count, _Tree
from .types import IMPORT, Change, DropIn, DropInError, HostBackbone


# ---------------------------------------------------------------------- our taps
def _our_taps(cls: type, arch: Any, kwargs: dict, output_stride: int) -> list[dict]:
    """``feature_info`` of ``cls(arch)`` at ``output_stride`` (built on the meta device),
    each tap with ``head``: whether it is the 1x1 head conv (a second tap at the nominal
    reduction of the one before: base.py's tap rule)."""
    with torch.device('meta'):
        nominal = cls(arch=arch, out_indices=(0,), **kwargs).feature_info
        actual = cls(arch=arch, out_indices=(0,), output_stride=output_stride, **kwargs)
    return [
        dict(tap, head=i > 0 and nominal[i - 1]['reduction'] == nominal[i]['reduction'])
        for i, tap in enumerate(actual.feature_info)
    ]


def choose_taps(
    nominal: Sequence[int], host_strides: Sequence[int], dilated: bool, name: str = 'ours'
) -> tuple[tuple[int, ...], int]:
    """The ``out_indices`` and ``output_stride`` that give the host's output strides.

    Args:
        nominal (Sequence[int]): Our taps' reductions at ``output_stride=32`` (in tap
            order, the head conv's included: it repeats the previous reduction and is
            never chosen).
        host_strides (Sequence[int]): The host backbone's output strides, in order.
        dilated (bool): The host backbone is dilated: its deepest stride (8 or 16)
            becomes our ``output_stride`` and its outputs at that stride take our deepest
            taps there. Otherwise our ``output_stride`` is 32.
        name (str): Our backbone, for the messages.

    Returns:
        tuple: ``(out_indices, output_stride)``; our i-th output has the host's i-th
        stride.

    Raises:
        DropInError: a stride we have no tap at (e.g. 64, or 2 for a family without
            one), strides out of order, or a dilated host at an output stride we lack.

    Example:
        >>> choose_taps([2, 4, 8, 16, 32, 32], [4, 8, 16, 32], dilated=False)
        ((1, 2, 3, 4), 32)
        >>> choose_taps([2, 4, 8, 16, 32, 32], [4, 8, 8, 8], dilated=True)
        ((1, 2, 3, 4), 8)
        >>> choose_taps([2, 4, 8, 16, 32, 32], [32], dilated=False)
        ((4,), 32)
    """
    host = list(host_strides)
    need = ', '.join(map(str, host))
    if any(b < a for a, b in zip(host, host[1:])):
        raise DropInError(
            f'the host backbone outputs strides {need}, not in increasing order: they cannot '
            'be mapped onto taps by position'
        )
    output_stride = 32
    if dilated and host[-1] < 32:
        output_stride = host[-1]
        if output_stride not in (8, 16):
            raise DropInError(
                f'the host backbone is dilated to output stride {output_stride}; '
                f'{name} supports output_stride 8, 16 or 32'
            )
    actual = [min(r, output_stride) for r in nominal]
    blocks = [i for i in range(len(nominal)) if i == 0 or nominal[i] != nominal[i - 1]]
    have = ', '.join(f'/{actual[i]}' for i in blocks)
    chosen: list[int] = []
    for stride, count in sorted(Counter(host).items()):
        at = [i for i in blocks if actual[i] == stride]
        if len(at) < count:
            what = f'{count} taps at stride {stride}' if count > 1 else f'a stride-{stride} tap'
            raise DropInError(
                f'the host backbone outputs strides {need}, but {name} lacks {what} '
                f'(its taps at output_stride {output_stride}: {have})'
            )
        chosen += at[len(at) - count :]
    return tuple(sorted(chosen)), output_stride


# ------------------------------------------------------ keys that read the backbone
def _check_host_value(key: str, value: Any, expected: Any, host: HostBackbone) -> None:
    if value != expected:
        raise DropInError(
            f'{key} is {value!r}, but the host backbone {host.type} gives {expected!r} at '
            f'those outputs (its outputs: {host.describe()}): the key cannot be mapped onto '
            'our outputs by position'
        )


def _heads(model: dict, key: str) -> list[tuple[tuple, dict]]:
    head = model.get(key)
    if isinstance(head, dict):
        return [(('model', key), head)]
    if isinstance(head, (list, tuple)):
        return [(('model', key, i), h) for i, h in enumerate(head) if isinstance(h, dict)]
    return []


def _reader_changes(
    model: dict, scope: str, host: HostBackbone, ours: list[int], name: str
) -> list[Change]:
    """The channel counts that read the backbone, mapped by output position."""
    taps = f'taps at strides {", ".join(map(str, host.strides))}'
    neck = model.get('neck')
    neck_path: tuple = ('model', 'neck')
    if isinstance(neck, (list, tuple)):  # a chain of necks: the first reads the backbone
        neck, neck_path = (neck[0] if neck else None), neck_path + (0,)
    if isinstance(neck, dict):
        for key in ('in_channels', 'in_channel'):
            if key not in neck:
                continue
            path, value = neck_path + (key,), neck[key]
            where = f'model.{".".join(map(str, path[1:]))} of {neck.get("type")}'
            if isinstance(value, (list, tuple)):
                _check_host_value(where, list(value), host.channels, host)
                why = f'= {name}.out_channels for {taps} (host {host.type}: {list(value)})'
                return [Change(path, type(value)(ours), why, value)]
            _check_host_value(where, value, host.channels[-1], host)
            why = (
                f'= {name}.out_channels[-1]: {neck.get("type")} reads the last output, '
                f'stride {host.strides[-1]} (host {host.type}: {value})'
            )
            return [Change(path, ours[-1], why, value)]
        raise DropInError(
            f'the neck {neck.get("type")} has no in_channels: which of its keys read the '
            'backbone is not known'
        )
    if scope == 'mmdet':
        raise DropInError(
            f'the host model {model.get("type")} has no neck: which of its keys read the '
            'backbone is not known (supported: models whose neck reads the backbone)'
        )
    changes = []
    for path, head in _heads(model, 'decode_head') + _heads(model, 'auxiliary_head'):
        where = f'model.{".".join(map(str, path[1:]))} ({head.get("type")})'
        if 'in_channels' in head:
            value, index = head['in_channels'], head.get('in_index', -1)
            if isinstance(value, (list, tuple)):
                index = list(index) if isinstance(index, (list, tuple)) else [index]
                expected = [host.channels[i] for i in index]
                _check_host_value(f'{where} in_channels', list(value), expected, host)
                new = type(value)(ours[i] for i in index)
                why = f'= {name}.out_channels at in_index {index} (host: {list(value)})'
            else:
                _check_host_value(f'{where} in_channels', value, host.channels[index], host)
                new = ours[index]
                why = (
                    f'= {name}.out_channels[{index}], stride {host.strides[index]} '
                    f'(in_index {index}; host: {value})'
                )
            changes.append(Change(path + ('in_channels',), new, why, value))
        if head.get('c1_in_channels'):  # DeepLabV3+: the low-level branch reads inputs[0]
            value, index = head['c1_in_channels'], head.get('c1_in_index', 0)
            _check_host_value(f'{where} c1_in_channels', value, host.channels[index], host)
            why = (
                f'= {name}.out_channels[{index}]: the low-level branch reads output {index}, '
                f'stride {host.strides[index]} (host: {value})'
            )
            changes.append(Change(path + ('c1_in_channels',), ours[index], why, value))
    if not changes:
        raise DropInError(
            f'the host model {model.get("type")} has neither a neck nor decode heads with '
            'in_channels: which of its keys read the backbone is not known'
        )
    return changes


# ------------------------------------------------------------- weights and input
def _default_input(family: str) -> tuple[dict, str]:
    """The data preprocessor keys our ImageNet weights of ``family`` expect, and whose they
    are: BGR pycls statistics for RegNet (as our RegNet configs), RGB ImageNet otherwise."""
    from mmbackbones.convert.source import BGR_PYCLS, RGB_IMAGENET

    if family == 'RegNet':
        return BGR_PYCLS.data_preprocessor(), "pycls's RegNet ImageNet weights"
    return RGB_IMAGENET.data_preprocessor(), f'{family} ImageNet weights (timm, torchvision)'


def _weights_meta(weights: str | None, family: str, arch: Any) -> tuple[dict | None, Any]:
    """The meta of ``weights`` when it is a file our converter wrote (checked against the
    family and arch asked for), and the arch (the file's, when none is asked for)."""
    if weights is None or '://' in weights or not osp.isfile(weights):
        return None, arch
    from mmbackbones.checkpoint import converted_meta

    meta = converted_meta(weights)
    if meta is None:
        raise DropInError(
            f'weights {weights!r} is not a weight file of ours: convert it first with '
            'tools/convert_weights.py (docs/weights.md)'
        )
    backbone = meta.get('backbone') or {}
    theirs = str(backbone.get('type', '')).split('.')[-1]
    if theirs and theirs != family:
        raise DropInError(f'weights {weights!r} holds a {theirs} backbone, not {family}')
    if arch is None:
        arch = backbone.get('arch')
    elif backbone.get('arch') not in (None, arch):
        raise DropInError(
            f'weights {weights!r} holds {family} arch {backbone["arch"]!r}, not {arch!r}'
        )
    return meta, arch


def _resolve_family(backbone: str) -> type:
    from mmbackbones.models import family_class

    try:
        return family_class(backbone)
    except ValueError as e:
        raise DropInError(str(e)) from None


def _resolve_arch(cls: type, arch: Any) -> Any:
    """``arch`` checked; ``None``: the family's default (AnyNet has none)."""
    if arch is None:
        arch = inspect.signature(cls.__init__).parameters['arch'].default
        if arch is inspect.Parameter.empty:
            raise DropInError(
                f'{cls.__name__} has no default arch: pass one of {sorted(cls.arch_settings)}'
            )
    try:
        cls.resolve_arch(arch)
    except ValueError as e:
        raise DropInError(str(e)) from None
    return arch


# -------------------------------------------------------------------- the plan
def plan_dropin(
    host: str,
    backbone: str,
    arch: str | dict | None = None,
    *,
    weights: str | None = None,
    no_syncbn: bool = False,
    out: str | None = None,
) -> DropIn:
    """Work out the rewrite of ``host`` for our ``backbone`` (what :func:`dropin_config`
    writes): measure the host backbone, choose our taps, map every key that reads the
    backbone.

    Args:
        host (str): ``'mmdet::<dir>/<file>.py'``, ``'mmseg::...'`` or a config file.
        backbone (str): Our family, e.g. ``'ReXNet'`` (or ``'mmbackbones.ReXNet'``).
        arch (str | dict | None): Its arch; ``None``: that of ``weights`` when it is a file
            of ours, else the family's default.
        weights (str | None): Our converted ImageNet weights (``tools/convert_weights.py``)
            for the backbone's ``Pretrained`` init; a file of ours also gives the input
            convention (and BN eps) it was converted for. A file that does not exist yet
            is written as given.
        no_syncbn (bool): SyncBN -> BN everywhere in the model (one process / CPU).
        out (str | None): Where the config will be written (a host given as a path is
            referenced relative to it).

    Returns:
        DropIn: The measurements, the chosen taps and every change, with the reasons.

    Raises:
        DropInError: unknown family, arch or host config; a host output we cannot give;
            a key that cannot be mapped by position.

    Example:
        >>> plan = plan_dropin('mmdet::yolof/yolof_r50-c5_8xb8-1x_coco.py', 'MobileNetV3')
        >>> plan.out_indices, [c.key for c in plan.changes][-2:]
        ((4,), ['model.neck.in_channels', 'model.data_preprocessor'])
    """
    from mmengine.config import Config

    cls = _resolve_family(backbone)
    family = cls.__name__
    meta, arch = _weights_meta(weights, family, arch)
    arch = _resolve_arch(cls, arch)
    path, base = resolve_host(host, out)
    cfg = Config.fromfile(path)
    try:
        scope = host_of(cfg)
    except ValueError as e:
        raise DropInError(str(e)) from None
    model = cfg.model.to_dict()
    host_bb = measure_host_backbone(cfg, scope)
    name = f'{family}({arch!r})'

    extra = {
        k: v
        for k, v in ((meta or {}).get('backbone') or {}).items()
        if k not in ('type', 'arch', 'out_indices')
    }
    nominal = [t['reduction'] for t in _our_taps(cls, arch, extra, 32)]
    out_indices, output_stride = choose_taps(nominal, host_bb.strides, host_bb.dilated, name)
    taps = _our_taps(cls, arch, extra, output_stride)
    out_channels = [taps[i]['num_chs'] for i in out_indices]
    out_strides = [taps[i]['reduction'] for i in out_indices]
    assert out_strides == host_bb.strides, (out_strides, host_bb.strides)

    plan = DropIn(
        host=host,
        base=base,
        scope=scope,
        family=family,
        arch=arch,
        host_backbone=host_bb,
        taps=taps,
        out_indices=out_indices,
        out_channels=out_channels,
        out_strides=out_strides,
        output_stride=output_stride,
        command=_command(host, family, arch, weights, no_syncbn, out),
    )
    imports = list((cfg.get('custom_imports') or {}).get('imports', []))
    plan.changes.append(
        Change(
            ('custom_imports',),
            dict(imports=imports + [IMPORT] * (IMPORT not in imports), allow_failed_imports=False),
            "registers the mmbackbones.* classes; fail loudly rather than fall back to a host's",
        )
    )
    host_norm = (model['backbone'].get('norm_cfg') or {}).get('type')
    _backbone_changes(plan, cls, extra, weights, meta, host_norm == 'SyncBN' and not no_syncbn)
    plan.changes += _reader_changes(model, scope, host_bb, out_channels, name)
    if model.get('pretrained') is not None:
        plan.changes.append(
            Change(
                ('model', 'pretrained'),
                None,
                f"mmseg's EncoderDecoder passes it to the backbone: it is the host "
                f"{host_bb.type}'s checkpoint (our weights go in backbone.init_cfg)",
                model['pretrained'],
            )
        )
    _input_change(plan, model.get('data_preprocessor') or {}, meta, weights)
    if no_syncbn:
        plan.changes += [
            Change(('model', *path, 'type'), 'BN', 'SyncBN -> BN (one process, CPU)', 'SyncBN')
            for path in _syncbn_paths(model)
            if path[:1] != ('backbone',)
        ]
    _apply(model, plan)  # lists are written whole: fill them from the rewritten model
    return plan


def _backbone_changes(
    plan: DropIn, cls: type, extra: dict, weights: str | None, meta: dict | None, syncbn: bool
) -> None:
    """The backbone's keys (``_delete_=True``: none of the host's is kept)."""
    bb, host, family = ('model', 'backbone'), plan.host_backbone.type, plan.family
    chosen = ', '.join(f'{c}ch@/{s}' for c, s in zip(plan.out_channels, plan.out_strides))
    heads = [i for i, t in enumerate(plan.taps) if t['head']]
    c5 = bool(heads) and heads[0] - 1 in plan.out_indices  # the head conv's tap was passed by
    plan.changes += [
        Change(bb + ('_delete_',), True, f'drop every {host}-only key of the host'),
        Change(
            bb + ('type',),
            f'mmbackbones.{family}',
            'scoped: an unscoped name may resolve to a host class of the same name',
        ),
        Change(
            bb + ('arch',),
            plan.arch,
            f'a preset of {family}.arch_settings' if isinstance(plan.arch, str) else 'custom',
        ),
        Change(
            bb + ('out_indices',),
            plan.out_indices,
            f"taps {chosen}: the strides of the host {host}'s "
            + _count(len(plan.out_indices), 'output')
            + (' (C5, the last block, not the 1x1 head conv)' if c5 else ''),
        ),
    ]
    if plan.output_stride != 32:
        plan.changes.append(
            Change(
                bb + ('output_stride',),
                plan.output_stride,
                f'the host {host} is dilated to output stride {plan.output_stride}; '
                'later strides become dilation',
            )
        )
    for key, value in extra.items():
        why = "as the weight file's meta says (tools/convert_weights.py)"
        plan.changes.append(Change(bb + (key,), value, why))
    if syncbn:
        with torch.device('meta'):
            norm = dict(cls(arch=plan.arch, out_indices=(0,), **extra).norm_cfg, type='SyncBN')
        kept = f" ({family}'s BN settings kept)" if len(norm) > 1 else ''
        plan.changes.append(
            Change(bb + ('norm_cfg',), norm, f"SyncBN, as the host's backbone{kept}")
        )
    if weights is not None:
        plan.changes.append(
            Change(
                bb + ('init_cfg',),
                dict(type='Pretrained', checkpoint=weights),
                'our ImageNet weights (tools/convert_weights.py)',
            )
        )
        if meta is None and '://' not in weights:
            plan.notes.append(
                f'{weights} does not exist yet: convert your ImageNet weights to it with '
                'tools/convert_weights.py (docs/weights.md)'
            )


def _input_change(plan: DropIn, pre: dict, meta: dict | None, weights: str | None) -> None:
    """The data preprocessor keys that differ from what our weights expect (a note when
    none does)."""
    if meta is not None and meta.get('data_preprocessor'):
        want, whose = meta['data_preprocessor'], weights
    else:
        want, whose = _default_input(plan.family)
    colour = 'RGB' if want.get('bgr_to_rgb') else 'BGR'
    expects = f'{whose} expect {colour} input, mean {want["mean"]}, std {want["std"]}'
    diff = {k: v for k, v in want.items() if pre.get(k) != v}
    if not diff:
        plan.notes.append(f"data_preprocessor unchanged: the host's already fits: {expects}")
        return
    old = {k: pre.get(k) for k in diff}
    plan.changes.append(Change(('model', 'data_preprocessor'), _Tree(diff), expects, old))


def _syncbn_paths(model: dict) -> list[tuple]:
    """The path (under ``model``) of every ``type='SyncBN'`` dict of a model config."""
    paths: dict[int, tuple] = {id(model): ()}
    found = []
    for parent, key, value in walk_config(model):
        if isinstance(value, (dict, list, tuple)):
            paths[id(value)] = paths[id(parent)] + (key,)
        if key == 'type' and value == 'SyncBN' and isinstance(parent, dict):
            found.append(paths[id(parent)])
    return found


def _command(
    host: str, family: str, arch: Any, weights: str | None, no_syncbn: bool, out: str | None
) -> str:
    args = ['python', 'tools/dropin.py', host, '--backbone', family]
    if isinstance(arch, str):
        args += ['--arch', arch]
    if weights is not None:
        args += ['--weights', weights]
    if no_syncbn:
        args.append('--no-syncbn')
    if out is not None:
        args += ['-o', out]
    return shlex.join(args)

"""Weights and settings that must agree: a backbone's ``Pretrained`` init against what the
weights were trained with.

Weights trained with BatchNorm eps 1e-5 compute different features under eps 1e-3, and
weights trained on RGB input see a different image in BGR; neither fails to load. So before
anything trains, the settings the converter knows for every source (the BN eps, colour order,
mean and std of :class:`~.source.Input`, the arch and weight-shaping arguments of the
published model) are compared with

* the backbone (:func:`check_backbone`, in ``BaseBackbone.init_weights``: family, arch,
  weight-shaping arguments, the eps of every BatchNorm), and
* the config (:func:`check_config`, before ``tools/train.py`` builds anything: the same on a
  backbone built on the meta device, plus ``model.data_preprocessor``; a URI's file is
  fetched there, so a missing file fails first).

A mismatch is one :class:`WeightsSettingsError` line naming the config keys to change. This
holds for weight URIs and for the files ``tools/convert_weights.py`` writes (their ``meta``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from .formatting import kwargs_repr
from .source import ConversionError, Input
from .uri import LAYOUT_ARGS, is_weights_uri, resolve_uri


class WeightsSettingsError(ConversionError):
    """The config's settings differ from those the weights were trained with."""


@dataclass
class Trained:
    """What a set of weights was trained as and with.

    Attributes:
        what: The URI or file.
        family, arch, kwargs: The backbone the weights are (weight-shaping arguments only).
        bn_eps: The BatchNorm eps they were trained with.
        input: Their colour order and mean/std (a callable: for ``timm://`` it may read the
            repo's ``config.json``).
    """

    what: str
    family: str
    arch: str | dict
    kwargs: dict[str, Any]
    bn_eps: float
    input: Callable[[], Input]


def trained(checkpoint: str, fetch: bool = True) -> Trained | None:
    """What ``checkpoint`` (a weight URI, or a file our converter wrote) was trained as;
    ``None`` for anything else (another package's file, a missing file). Without ``fetch``
    nothing is downloaded (a ``timm://`` repo's ``config.json``: timm's registry instead).

    Raises:
        WeightsURIError: a URI that names nothing we convert.
    """
    if is_weights_uri(checkpoint):
        from .uri_fetch import expected_input

        w = resolve_uri(checkpoint)
        req = w.request
        kwargs = {k: v for k, v in req.kwargs.items() if k not in LAYOUT_ARGS}
        return Trained(
            checkpoint,
            req.family,
            req.arch,
            kwargs,
            req.bn_eps,
            lambda: expected_input(w, fetch_config=fetch),
        )
    from mmbackbones.checkpoint import converted_meta

    meta = converted_meta(checkpoint) if isinstance(checkpoint, str) else None
    if meta is None:
        return None
    bb = dict(meta['backbone'])
    family = str(bb.pop('type')).split('.')[-1]
    arch = bb.pop('arch')
    inp = meta['input']
    recorded = Input(inp['color_order'], tuple(inp['mean']), tuple(inp['std']))
    kwargs = {k: v for k, v in bb.items() if k not in LAYOUT_ARGS}
    return Trained(checkpoint, family, arch, kwargs, float(meta['bn_eps']), lambda: recorded)


def pretrained_checkpoint(init_cfg: Any) -> tuple[str, dict] | None:
    """``(checkpoint, init cfg)`` of the ``Pretrained`` entry of an ``init_cfg``, or ``None``."""
    for cfg in init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]:
        if isinstance(cfg, Mapping) and cfg.get('type') == 'Pretrained':
            ckpt = cfg.get('checkpoint')
            return (ckpt, dict(cfg)) if isinstance(ckpt, str) else None
    return None


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-4) for x, y in zip(a, b))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f'{v:g}'
    if isinstance(v, (list, tuple)):
        return '[' + ', '.join(_fmt(x) for x in v) + ']'
    return repr(v)


def backbone_problems(t: Trained, backbone: torch.nn.Module, where: str) -> list[str]:
    """``key=value`` fixes for the backbone config ``where`` (e.g. ``'model.backbone'``)."""
    cls = type(backbone)
    if cls.__name__ != t.family:
        return [
            f"{where}.type='mmbackbones.{t.family}' (and arch={t.arch!r}{kwargs_repr(t.kwargs)})"
        ]
    fixes = []
    try:
        same_arch = cls.resolve_arch(t.arch) == getattr(backbone, 'arch', None)
    except ValueError:
        same_arch = False
    if not same_arch:
        fixes.append(f'{where}.arch={t.arch!r}')
    for key, value in t.kwargs.items():
        if hasattr(backbone, key) and getattr(backbone, key) != value:
            fixes.append(f'{where}.{key}={value!r}')
    eps = sorted({m.eps for m in backbone.modules() if isinstance(m, _BatchNorm)})
    if eps and any(not math.isclose(e, t.bn_eps, rel_tol=1e-6) for e in eps):
        fixes.append(f'{where}.norm_cfg.eps={t.bn_eps:g} (now {", ".join(f"{e:g}" for e in eps)})')
    return fixes


def preprocessor_problems(t: Trained, data_preprocessor: Mapping | None) -> list[str]:
    """Fixes for ``model.data_preprocessor`` (mmdet/mmseg: images arrive as BGR)."""
    want = t.input().data_preprocessor()
    dp = dict(data_preprocessor or {})
    have = dict(
        mean=dp.get('mean'), std=dp.get('std'), bgr_to_rgb=bool(dp.get('bgr_to_rgb', False))
    )
    ok = (
        have['bgr_to_rgb'] == want['bgr_to_rgb']
        and have['mean'] is not None
        and have['std'] is not None
        and _close(have['mean'], want['mean'])
        and _close(have['std'], want['std'])
    )
    if ok:
        return []
    return [
        'model.data_preprocessor: '
        + ', '.join(f'{k}={_fmt(want[k])}' for k in ('mean', 'std', 'bgr_to_rgb'))
        + f' (now {", ".join(f"{k}={_fmt(v)}" for k, v in have.items())})'
    ]


def _raise(t: Trained, fixes: list[str]) -> None:
    inp = t.input() if any(f.startswith('model.data_preprocessor') for f in fixes) else None
    expects = f', {inp.color} input with mean {_fmt(list(inp.mean))}' if inp else ''
    raise WeightsSettingsError(
        f'{t.what} holds {t.family}(arch={t.arch!r}{kwargs_repr(t.kwargs)}) weights trained '
        f'with BatchNorm eps {t.bn_eps:g}{expects}; the config differs, set: ' + '; '.join(fixes)
    )


def check_backbone(backbone: torch.nn.Module, where: str = 'model.backbone') -> None:
    """Refuse a ``Pretrained`` init whose weights were trained as another backbone or with
    another BatchNorm eps (``BaseBackbone.init_weights`` calls this first).

    Raises:
        WeightsSettingsError: naming the backbone config keys to change.
        WeightsURIError: an unknown weight URI.
    """
    found = pretrained_checkpoint(getattr(backbone, 'init_cfg', None))
    if found is None:
        return
    t = trained(found[0], fetch=False)  # only the arch and the BN eps are needed here
    if t is None:
        return
    fixes = backbone_problems(t, backbone, where)
    if fixes:
        _raise(t, fixes)


def check_config(cfg: Any, fetch: bool = True) -> bool:
    """Check a config's ``Pretrained`` backbone weights before a run: a URI resolves (and,
    with ``fetch``, its file is fetched into the cache), and the backbone and
    ``model.data_preprocessor`` match the weights' settings.

    Returns:
        Whether the checkpoint is a weight URI or a file of ours (checked); ``False`` for
        anything else (a missing file: the caller says so).

    Raises:
        WeightsSettingsError: naming every config key to change.
        WeightsNotFoundError / WeightsURIError: see :mod:`.uri_fetch`.
    """
    model = cfg.get('model', {}) if isinstance(cfg, Mapping) else cfg.model
    bb_cfg = dict(model.get('backbone') or {})
    found = pretrained_checkpoint(bb_cfg.get('init_cfg'))
    if found is None or not str(bb_cfg.get('type', '')).startswith('mmbackbones.'):
        return False
    ckpt, init = found
    t = trained(ckpt, fetch=fetch)
    if t is None:
        return False
    fixes = []
    if init.get('prefix') and is_weights_uri(ckpt):
        fixes.append('model.backbone.init_cfg: drop prefix (a URI yields backbone keys)')
    from mmbackbones.registry import MODELS

    bb_cfg.pop('init_cfg')
    with torch.device('meta'):
        backbone = MODELS.build(bb_cfg)
    fixes += backbone_problems(t, backbone, 'model.backbone')
    fixes += preprocessor_problems(t, model.get('data_preprocessor'))
    if fixes:
        _raise(t, fixes)
    if fetch and is_weights_uri(ckpt):
        from .uri_fetch import fetch as fetch_file

        fetch_file(resolve_uri(ckpt))
    return True


__all__ = [
    'Trained',
    'WeightsSettingsError',
    'backbone_problems',
    'check_backbone',
    'check_config',
    'pretrained_checkpoint',
    'preprocessor_problems',
    'trained',
]

"""The common core of the checkpoint converters (timm, torchvision, clovaai/rexnet, pycls).

A source module describes a weight source as data (:class:`~.source.Source`): one pure
key-mapping function per backbone family and the table of models the source publishes.
Everything else happens the same way for every source:

* **safe reading** (:mod:`.io`): safetensors or ``torch.load(weights_only=True)``; a pickle
  that needs code is refused; the common wrappers (``state_dict``, ``model_state``,
  ``model``) and a DDP ``module.`` prefix are unwrapped.
* **strict key accounting** (:func:`convert_state_dict`): every source tensor is mapped or
  explicitly dropped (the classifier, with the reason); anything unmapped, missing or of the
  wrong shape raises :class:`~.source.ConversionError` naming the first offending keys and
  the published model the file probably is (:mod:`.diagnose`). The result is finally loaded
  with ``strict=True`` into our backbone built with every layer (:mod:`.target`).
* **input conventions**: the converted file's ``meta`` records the colour order, mean and std
  the weights expect (pycls: BGR; the others: RGB ImageNet), the BatchNorm eps they were trained
  with and the matching backbone config / ``data_preprocessor``; ``rgb=True`` folds a BGR stem
  conv to RGB.

The converted file holds *every* layer (head conv included) in the default
``feature_location='bottleneck'`` layout; backbone arguments change that (``out_indices``:
only the layers that config builds; ``feature_location='expansion'``: the split C4 layer).
"""

from __future__ import annotations

import ast
import os
import os.path as osp
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .classifier import convert_classifier
from .diagnose import diagnose
from .formatting import first, kwargs_repr
from .io import read_state_dict
from .source import ConversionError, Drop, Preset, Source, apply_key_map, default_eval_transform
from .target import adapt_layout, build_meta, diff, expected_state, families

#: Arguments that make no sense for a conversion (the file always holds every layer).
_REFUSED_KWARGS = {'init_cfg': 'the converted file is what init_cfg points at'}


@dataclass
class ConvertResult:
    """What :func:`convert_state_dict` returns.

    Attributes:
        state_dict: Our state dict (``layers.<...>``), strictly loadable.
        dropped: ``(source key, shape, reason)`` of every tensor not converted.
        notes: Human-readable remarks (filled BN counters, RGB folding, ...).
        meta: The ``meta`` entry of the converted file (plain data).
        backbone: The backbone config the weights go with (without ``init_cfg``).
    """

    state_dict: dict[str, torch.Tensor]
    dropped: list[tuple[str, tuple[int, ...], str]]
    notes: list[str]
    meta: dict[str, Any]
    backbone: dict[str, Any]


# ------------------------------------------------------------------------ conversion
@dataclass(frozen=True)
class Request:
    """A resolved conversion request (what :func:`resolve` returns).

    Attributes:
        source: The weight source.
        family: Our backbone family.
        arch: Our preset name or arch dict.
        kwargs: Further backbone arguments.
        bn_eps: The BatchNorm eps the weights were trained with.
        model: The published model name, if known.
        out_indices: The taps whose layers the converted file holds; ``None`` = every layer.
        preset: The published model's :class:`~.source.Preset`, if known.
    """

    source: Source
    family: str
    arch: str | dict
    kwargs: dict
    bn_eps: float
    model: str | None
    out_indices: tuple[int, ...] | None = None
    preset: Preset | None = None


def parse_arch(arch: str | dict | None) -> str | dict | None:
    """``--arch``: a preset name, or a dict literal (``{...}`` or ``dict(...)``).

    Example:
        >>> parse_arch('dict(depths=[1, 2], widths=[8, 16])')
        {'depths': [1, 2], 'widths': [8, 16]}
    """
    if arch is None or isinstance(arch, dict):
        return arch
    s = arch.strip()
    try:
        if s.startswith('{'):
            value = ast.literal_eval(s)
        elif s.startswith('dict('):
            call = ast.parse(s, mode='eval').body
            if not isinstance(call, ast.Call) or call.args:
                raise ValueError('only keyword arguments')
            value = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        else:
            return s
    except (ValueError, SyntaxError) as e:
        raise ConversionError(
            f'--arch {arch!r} is not a preset name or a dict literal: {e}'
        ) from None
    if not isinstance(value, dict):
        raise ConversionError(f'--arch {arch!r} is not a preset name or a dict literal')
    return value


def resolve(
    source: Source,
    family: str | None = None,
    arch: str | dict | None = None,
    kwargs: Mapping[str, Any] | None = None,
    model: str | None = None,
) -> Request:
    """Check and complete a request: from ``--model`` and/or ``--backbone``/``--arch``.

    Args:
        source: The weight source.
        family: Our backbone family (``--backbone``); ``None`` = the model's.
        arch: Our preset name or arch dict / dict literal (``--arch``); ``None`` = the model's.
        kwargs: Further backbone arguments (``--backbone-args``); ``out_indices`` selects the
            layers the converted file holds.
        model: The source's published model name (``--model``).

    Raises:
        ConversionError: an unknown, refused or contradictory request.
    """
    kwargs = dict(kwargs or {})
    out_indices = kwargs.pop('out_indices', None)
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    for k, why in _REFUSED_KWARGS.items():
        if k in kwargs:
            raise ConversionError(f'backbone argument {k!r} is not accepted here: {why}')
    arch = parse_arch(arch)
    preset = None
    if model is not None:
        reason = source.refusal(model)
        if reason:
            raise ConversionError(f'{source.name} {model!r} cannot be converted: {reason}')
        found = source.find(model)
        if found is None:
            if family is None or arch is None or family in source.needs_model:
                raise ConversionError(
                    f'unknown {source.name} model {model!r}; known: '
                    f'{first(sorted(source.presets), 12)}; or give --backbone and --arch'
                )
        else:
            model, preset = found
            want = dict(family=preset.family, arch=preset.arch, kwargs=preset.kwargs)
            given = dict(family=family, arch=arch)
            for k, v in given.items():
                if v is not None and v != want[k]:
                    flag = 'backbone' if k == 'family' else k
                    raise ConversionError(
                        f'{source.name} {model!r} is {preset.family}(arch={preset.arch!r}'
                        f'{kwargs_repr(preset.kwargs)}), not --{flag} '
                        f'{v!r}; drop --backbone/--arch or fix them'
                    )
            family, arch = preset.family, preset.arch
            kwargs = {**preset.kwargs, **kwargs}
    if family is None or arch is None:
        raise ConversionError('give --backbone and --arch, or --model (a published model name)')
    if family not in families():
        raise ConversionError(f'unknown --backbone {family!r}; valid: {list(families())}')
    if family not in source.mappers:
        raise ConversionError(
            f'{source.name} publishes no {family} weights; its families are '
            f'{list(source.mappers)}'
        )
    if preset is None and family in source.needs_model:
        raise ConversionError(source.needs_model[family])
    if preset is None:
        preset = _matching_preset(source, family, arch, kwargs)
    bn_eps = preset.bn_eps if preset else source.default_bn_eps.get(family, 1e-5)
    out_indices = tuple(out_indices) if out_indices is not None else None
    return Request(source, family, arch, kwargs, bn_eps, model, out_indices, preset)


def _matching_preset(source: Source, family: str, arch: Any, kwargs: dict) -> Preset | None:
    """The published model a request builds (extra layout arguments such as
    ``feature_location`` do not change the weights)."""
    for p in source.presets.values():
        if p.family == family and p.arch == arch and p.kwargs.items() <= kwargs.items():
            return p
    return None


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    request: Request,
    *,
    rgb: bool = False,
    others: Sequence[Source] = (),
    src_name: str = 'the file',
    classifier: bool = False,
) -> ConvertResult:
    """Map a source state dict onto our backbone, strictly.

    Args:
        state_dict: The source's (unwrapped) state dict.
        request: From :func:`resolve`.
        rgb: Fold a BGR stem conv to RGB (flip its input channels).
        others: The other sources, tried when diagnosing a file that does not fit.
        src_name: The file's name in messages.
        classifier: Also convert the ImageNet classifier: the result is the state dict of
            ``ImageClassifier(meta['backbone'], meta['num_classes'])`` (``backbone.*``,
            ``head.*``) and ``meta['preprocess']`` states the evaluation transform.

    Raises:
        ConversionError: a tensor is unmapped, missing or of the wrong shape; the message names
            the first offending keys and the published model the file probably is.
    """
    src, family, arch, kwargs = request.source, request.family, request.arch, request.kwargs
    expected, (our_eps, our_momentum) = expected_state(family, arch, kwargs)
    target = f'{family}(arch={arch!r}{kwargs_repr(kwargs)})'
    key_map = src.mappers[family](list(state_dict))
    ours, dropped, unmapped = apply_key_map(state_dict, key_map)
    if unmapped:
        hint = diagnose(state_dict, src, others)
        raise ConversionError(
            f'{src_name}: {len(unmapped)} of its {len(state_dict)} tensors fit no '
            f'{src.name} {family} layout (first: {first(unmapped)}); {hint}'
        )
    ours, filled = adapt_layout(ours, expected)
    mismatch = diff(ours, expected)
    if mismatch.count:
        hint = diagnose(state_dict, src, others)
        raise ConversionError(
            f'{src_name} does not fit {target} (--source {src.name}): '
            f'{mismatch.describe()}; {hint}'
        )
    notes = [src.notes[family]] if family in src.notes else []
    if filled:
        notes.append(f'filled {filled} missing BatchNorm num_batches_tracked counters with 0')
    if classifier and request.out_indices is not None:
        raise ConversionError(
            f'--classifier needs every layer of the backbone; drop out_indices='
            f'{request.out_indices}'
        )
    inp = request.preset.input if request.preset and request.preset.input else src.input
    if rgb:
        if inp.color == 'BGR':
            w = ours['layers.stem.conv.weight']
            ours['layers.stem.conv.weight'] = w.flip(1).contiguous()
            inp = inp.flipped()
            notes.append('folded the BGR stem conv to RGB (input channels flipped)')
        else:
            notes.append(f'--rgb: {src.name} weights already expect RGB input; nothing to fold')
    # the strict load the issue asks for, into our backbone (meta device): every layer, or
    # only those the given out_indices build (then mmengine reports no unexpected keys)
    model = build_meta(family, arch, kwargs, request.out_indices)
    if request.out_indices is not None:
        built = model.state_dict()
        why = f'layer not built with out_indices={request.out_indices}'
        source_key = {v: k for k, v in key_map.items() if isinstance(v, str)}
        dropped += [
            (source_key.get(k, k), tuple(v.shape), why) for k, v in ours.items() if k not in built
        ]
        ours = {k: v for k, v in ours.items() if k in built}
    try:
        model.load_state_dict(ours, strict=True, assign=True)
    except RuntimeError as e:  # pragma: no cover - diff() above catches the same cases
        raise ConversionError(f'strict load into {target} failed: {e}') from None
    backbone = dict(type=f'mmbackbones.{family}', arch=arch, **kwargs)
    if request.out_indices is not None:
        backbone['out_indices'] = request.out_indices
    if our_eps is not None and abs(request.bn_eps - our_eps) > 1e-12:
        backbone['norm_cfg'] = dict(type='BN', eps=request.bn_eps, momentum=our_momentum)
        notes.append(
            f'the weights were trained with BatchNorm eps {request.bn_eps:g} (ours defaults '
            f'to {our_eps:g}): keep norm_cfg eps={request.bn_eps:g} in the backbone config'
        )
    meta = dict(
        converter='mmbackbones.convert',
        source=src.name,
        model=request.model,
        backbone=backbone,
        bn_eps=request.bn_eps,
        input=dict(color_order=inp.color, mean=list(inp.mean), std=list(inp.std)),
        data_preprocessor=inp.data_preprocessor(),
        rgb_folded=bool(rgb and src.input.color == 'BGR'),
        dropped=[k for k, _, _ in dropped],
    )
    if classifier:
        head_keys = [
            k for k in state_dict if isinstance(key_map.get(k), Drop) and key_map[k].classifier
        ]
        ours, meta['num_classes'] = convert_classifier(state_dict, head_keys, ours, backbone)
        dropped = [d for d in dropped if d[0] not in set(head_keys)]
        meta['dropped'] = [k for k, _, _ in dropped]
        meta['classifier'] = 'ImageClassifier'
        meta['preprocess'] = _preprocess(request, inp)
        notes.append(
            f'with the classifier: loads strictly into ImageClassifier(meta["backbone"], '
            f'num_classes={meta["num_classes"]}); as a backbone init, use '
            "init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')"
        )
    return ConvertResult(ours, dropped, notes, meta, backbone)


def _preprocess(request: Request, inp: Any) -> dict[str, Any]:
    """The ImageNet evaluation transform of the weights (``meta['preprocess']``)."""
    how = request.source.eval_transform or default_eval_transform
    t = how(request.model, request.preset)
    return dict(
        input_size=t.size,  # square: the centre crop the classifier sees
        resize=t.resize,  # the shorter side before the centre crop
        interpolation=t.interpolation,
        color_order=inp.color,
        mean=list(inp.mean),  # of pixel values 0-255
        std=list(inp.std),
    )


# ----------------------------------------------------------------------------- files
def convert_file(
    src: str,
    dst: str,
    request: Request,
    *,
    rgb: bool = False,
    key: str | None = None,
    others: Sequence[Source] = (),
    classifier: bool = False,
) -> ConvertResult:
    """Read ``src`` safely, convert it, and write ``dst`` (``{'state_dict', 'meta'}``).

    ``dst`` is a plain-tensor torch file that ``torch.load(weights_only=True)`` and
    mmengine's ``Pretrained`` init read.

    Args:
        src: The source weight file.
        dst: The converted checkpoint to write (not ``.safetensors``).
        request: From :func:`resolve`.
        rgb: Fold a BGR stem conv to RGB.
        key: The checkpoint entry holding the weights (``--key``).
        others: The other sources, tried when diagnosing a file that does not fit.
        classifier: Also convert the ImageNet classifier (see :func:`convert_state_dict`).
    """
    if dst.endswith('.safetensors'):
        raise ConversionError(
            f"DST {dst!r}: mmengine's Pretrained init reads torch checkpoints; use a .pth name"
        )
    if osp.abspath(src) == osp.abspath(dst):
        raise ConversionError('SRC and DST are the same file')
    state_dict, where = read_state_dict(src, key)
    result = convert_state_dict(
        state_dict,
        request,
        rgb=rgb,
        others=others,
        src_name=osp.basename(src),
        classifier=classifier,
    )
    result.meta['src'] = osp.basename(src)
    result.meta['src_state_dict'] = where
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(
        {
            'state_dict': {k: v.contiguous() for k, v in result.state_dict.items()},
            'meta': result.meta,
        },
        tmp,
    )
    os.replace(tmp, dst)
    return result

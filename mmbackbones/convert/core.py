"""The common core of the checkpoint converters (timm, torchvision, clovaai/rexnet, pycls).

A source module describes a weight source as data (:class:`Source`): one pure key-mapping
function per backbone family (source key -> our key, or :class:`Drop` with the reason) and the
table of models the source publishes (:class:`Preset`). Everything else happens here, the same
way for every source:

* **safe reading** (:func:`read_state_dict`): safetensors or ``torch.load(weights_only=True)``
  through :func:`mmbackbones.checkpoint.load_weights` (legacy pre-1.6 torch files, which the
  authors' 2020 releases use, with the same ``weights_only`` unpickler); a pickle that needs
  code is refused. Common wrappers (``state_dict``, ``model``, ``model_state``) and a DDP
  ``module.`` prefix are unwrapped.
* **strict key accounting** (:func:`convert_state_dict`): every source tensor is mapped or
  explicitly dropped (the classifier, with the reason); anything unmapped, missing or of the
  wrong shape raises :class:`ConversionError` naming the first offending keys and the published
  model the file probably is (every preset of the source is tried, on the meta device). The
  result is finally loaded with ``strict=True`` into our backbone built with every layer.
* **input conventions**: the converted file's ``meta`` records the colour order, mean and std
  the weights expect (pycls: BGR; the others: RGB ImageNet), the BatchNorm eps they were trained
  with and the matching backbone config / ``data_preprocessor``; ``rgb=True`` folds a BGR stem
  conv to RGB.

Our state-dict layout is ``layers.<name>.<...>`` (see ``models/backbones/base.py``). The
converted file holds *every* layer (head conv included) in the default
``feature_location='bottleneck'`` layout; backbone arguments change that (``out_indices``:
only the layers that config builds; ``feature_location='expansion'``: the split C4 layer).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import json
import os
import os.path as osp
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch

#: BatchNorm state entries.
BN_PARAMS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
#: Keys of the usual checkpoint wrappers, tried in this order.
WRAPPER_KEYS = ('state_dict', 'model_state', 'model')
#: Our backbone families (class names in ``mmbackbones.models.backbones``).
FAMILIES = ('ReXNet', 'MobileNetV3', 'EfficientNet', 'RegNet', 'ResNeXt', 'AnyNet')
#: Arguments that make no sense for a conversion (the file always holds every layer).
_REFUSED_KWARGS = {'init_cfg': 'the converted file is what init_cfg points at'}


class ConversionError(ValueError):
    """A weight file that cannot be converted as asked; the message is a single line."""

    def __init__(self, msg: str) -> None:
        super().__init__(' '.join(str(msg).split()))


@dataclass(frozen=True)
class Drop:
    """A source tensor that is deliberately not converted, and why."""

    reason: str


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
        return Input('RGB' if self.color == 'BGR' else 'BGR', self.mean[::-1], self.std[::-1])

    def data_preprocessor(self) -> dict[str, Any]:
        """mmdet/mmseg ``data_preprocessor`` keys (mmcv decodes images as BGR)."""
        return dict(mean=list(self.mean), std=list(self.std), bgr_to_rgb=self.color == 'RGB')


#: torchvision / timm / clovaai: RGB, ImageNet mean and std (x255).
RGB_IMAGENET = Input('RGB', (123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
#: pycls: images decoded by OpenCV (BGR), the same statistics in BGR order.
BGR_PYCLS = Input('BGR', (103.53, 116.28, 123.675), (57.375, 57.12, 58.395))


@dataclass(frozen=True)
class Preset:
    """A model a source publishes, as one of our backbones.

    Attributes:
        family: Our class name, e.g. ``'ReXNet'``.
        arch: Our preset name or arch dict.
        kwargs: Further backbone arguments (e.g. ``widen_factor``).
        bn_eps: The BatchNorm eps the weights were trained with.
    """

    family: str
    arch: str | dict
    kwargs: dict = field(default_factory=dict)
    bn_eps: float = 1e-5


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
    """

    name: str
    mappers: Mapping[str, Mapper]
    presets: Mapping[str, Preset]
    input: Input
    refused: tuple[tuple[str, str], ...] = ()
    needs_model: Mapping[str, str] = field(default_factory=dict)
    default_bn_eps: Mapping[str, float] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)

    def find(self, model: str) -> tuple[str, Preset] | None:
        """The preset of a model name (a timm-style ``.tag`` suffix is ignored)."""
        for name in (model, model.split('.')[0]):
            if name in self.presets:
                return name, self.presets[name]
        return None

    def refusal(self, model: str) -> str | None:
        for pattern, reason in self.refused:
            if re.fullmatch(pattern, model.split('.')[0]):
                return reason
        return None


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


# ------------------------------------------------------------------------ mapping helpers
def regex_mapper(rules: Sequence[tuple[str, str | Drop | Callable[[re.Match], str]]]) -> Mapper:
    """A mapper from ``(regex, replacement)`` rules tried in order (``re.fullmatch``).

    A replacement is a ``re.Match.expand`` template, a :class:`Drop`, or a callable of the
    match. Keys no rule matches are left out of the result (the caller reports them).

    Example:
        >>> m = regex_mapper([(r'conv1\\.weight', 'layers.stem.conv.weight'),
        ...                   (r'fc\\.\\w+', Drop('classifier'))])
        >>> m(['conv1.weight', 'fc.bias', 'extra'])
        {'conv1.weight': 'layers.stem.conv.weight', 'fc.bias': Drop(reason='classifier')}
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


# --------------------------------------------------------------------------- reading
def _legacy_torch_file(path: str) -> bool:
    """A pre-1.6 (non-zip) ``torch.save`` file: a pickle starting with torch's magic."""
    try:
        with open(path, 'rb') as f:
            head = f.read(12)
    except OSError:
        return False
    return head[:3] == b'\x80\x02\x8a' and not zipfile.is_zipfile(path)


_PLAIN_GLOBALS = ('torch.', 'collections.OrderedDict', 'builtins.', '_codecs.encode')


def _pickled_globals(path: str) -> list[str]:
    """The classes/functions a torch file's pickle references, read with ``pickletools``
    (which parses opcodes and never executes anything); used only to explain a refusal."""
    import pickletools

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next(n for n in zf.namelist() if n.endswith('data.pkl'))
                data = zf.read(name)
        else:
            with open(path, 'rb') as f:
                data = f.read()
    except (OSError, StopIteration, zipfile.BadZipFile):
        return []
    import io

    found, strings, stream = [], [], io.BytesIO(data)
    while stream.tell() < len(data):  # a legacy file is several pickles in a row
        try:
            for op, arg, _ in pickletools.genops(stream):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name == 'GLOBAL':
                    found.append(str(arg).replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
        except Exception:  # not a pickle from here on (legacy tensor data)
            break
    return [g for g in dict.fromkeys(found) if not g.startswith(_PLAIN_GLOBALS)]


def _refusal(path: str, detail: str) -> ConversionError:
    code = _pickled_globals(path)
    what = f'it pickles {_first(code)}' if code else f'weights_only loading failed: {detail}'
    return ConversionError(
        f'refusing to load {path!r}: not a plain tensor checkpoint ({what}); unpickling it '
        'could run arbitrary code. Re-save its state_dict where you trust it, or use '
        'safetensors'
    )


def _load(path: str) -> Any:
    from mmbackbones.checkpoint import load_weights

    # argparse.Namespace: what timm's training checkpoints pickle as 'args' (plain data)
    safe = getattr(torch.serialization, 'safe_globals', None)
    ctx = safe([argparse.Namespace]) if safe is not None else contextlib.nullcontext()
    with ctx:
        if not _legacy_torch_file(path):
            try:
                return load_weights(path)
            except ValueError as e:
                if str(e).startswith('refusing to load'):
                    raise _refusal(path, str(e)) from None
                raise ConversionError(str(e)) from None
            except Exception as e:  # safetensors: truncated or not a safetensors file
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ConversionError(
                    f'cannot read {path!r}: truncated, corrupt or not a safetensors file ({msg})'
                ) from None
        try:  # the authors' 2020 releases predate the zip format
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            if re.search(r'GLOBAL|[Uu]nsupported|blocked', str(e)):
                raise _refusal(path, _torch_reason(e)) from None
            raise ConversionError(
                f'weight file {path!r} is corrupt or truncated (legacy torch format: '
                f'{_torch_reason(e)})'
            ) from None


def _torch_reason(e: Exception) -> str:
    """The informative line of torch's weights_only error (it leads with advice)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if not ln.startswith(('Weights only load failed', 'Please file an issue', '(1)', '(2)')):
            return ln
    return lines[0] if lines else type(e).__name__


def unwrap_state_dict(obj: Any, key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The tensor state dict inside a loaded checkpoint, and where it was found.

    ``key`` picks a wrapper entry explicitly (e.g. ``'state_dict_ema'``); otherwise the first
    of :data:`WRAPPER_KEYS` holding a dict is used, or ``obj`` itself. A ``module.`` prefix
    (DDP) on every key is stripped.
    """
    where = 'top level'
    if not isinstance(obj, Mapping):
        raise ConversionError(
            f'the file holds a {type(obj).__name__}, not a state dict or a dict wrapping one'
        )
    if key is not None:
        if key not in obj or not isinstance(obj[key], Mapping):
            raise ConversionError(
                f'--key {key!r}: the file has no dict entry {key!r}; its keys are '
                f'{_first(sorted(map(str, obj)), 8)}'
            )
        obj, where = obj[key], f'[{key!r}]'
    else:
        for k in WRAPPER_KEYS:
            if isinstance(obj.get(k), Mapping):
                obj, where = obj[k], f'[{k!r}]'
                break
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad or not obj:
        raise ConversionError(
            f'no state dict found ({where}): '
            + (f'entries {_first(bad)} are not tensors; ' if bad else 'it is empty; ')
            + f'expected a state dict or a dict with one of {list(WRAPPER_KEYS)} '
            '(pick another entry with --key)'
        )
    sd = dict(obj)
    if all(k.startswith('module.') for k in sd):
        sd = {k[len('module.') :]: v for k, v in sd.items()}
        where += ", 'module.' prefix stripped"
    return sd, where


def read_state_dict(path: str, key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Safely read a foreign weight file and unwrap its state dict.

    Returns ``(state_dict, where)``. Raises :class:`ConversionError` for a missing, corrupt or
    truncated file, a pickle that needs code, or a file without a state dict.
    """
    return unwrap_state_dict(_load(path), key)


# --------------------------------------------------------------------- our backbones
def backbone_class(family: str) -> type:
    from mmbackbones.models import backbones

    if family not in FAMILIES:
        raise ConversionError(f'unknown backbone {family!r}; valid: {list(FAMILIES)}')
    return getattr(backbones, family)


def _freeze(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=list)


@functools.lru_cache(maxsize=512)
def _expected_cached(family: str, arch_json: str, kwargs_json: str) -> tuple:
    arch = json.loads(arch_json)
    kwargs = json.loads(kwargs_json)
    model = build_meta(family, arch, kwargs)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    bn = next(
        (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)),
        None,
    )
    return shapes, (bn.eps, bn.momentum) if bn is not None else (None, None)


def build_meta(
    family: str,
    arch: str | dict,
    kwargs: Mapping[str, Any],
    out_indices: Sequence[int] | None = None,
) -> torch.nn.Module:
    """Our backbone on the meta device: every layer (the last tap selected), or the layers
    ``out_indices`` build."""
    cls = backbone_class(family)
    try:
        with torch.device('meta'):
            return cls(arch=arch, out_indices=out_indices or (-1,), **kwargs)
    except (ValueError, TypeError) as e:
        raise ConversionError(f'{family}(arch={arch!r}, **{dict(kwargs)!r}): {e}') from None


def expected_state(
    family: str, arch: str | dict, kwargs: Mapping[str, Any] | None = None
) -> tuple[dict[str, tuple[int, ...]], tuple[float | None, float | None]]:
    """``({key: shape}, (bn_eps, bn_momentum))`` of our full backbone (cached)."""
    shapes, bn = _expected_cached(family, _freeze(arch), _freeze(dict(kwargs or {})))
    return dict(shapes), bn


# ------------------------------------------------------------------------ conversion
@dataclass(frozen=True)
class Request:
    """A resolved conversion request."""

    source: Source
    family: str
    arch: str | dict
    kwargs: dict
    bn_eps: float
    model: str | None
    out_indices: tuple[int, ...] | None = None


def parse_arch(arch: str | dict | None) -> str | dict | None:
    """``--arch``: a preset name, or a dict literal (``{...}`` or ``dict(...)``)."""
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
    """Check and complete a request: from ``--model`` and/or ``--backbone``/``--arch``."""
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
                    f'{_first(sorted(source.presets), 12)}; or give --backbone and --arch'
                )
        else:
            model, preset = found
            want = dict(family=preset.family, arch=preset.arch, kwargs=preset.kwargs)
            given = dict(family=family, arch=arch)
            for k, v in given.items():
                if v is not None and v != want[k]:
                    raise ConversionError(
                        f'{source.name} {model!r} is {preset.family}(arch={preset.arch!r}'
                        f'{_kw(preset.kwargs)}), not --{"backbone" if k == "family" else k} '
                        f'{v!r}; drop --backbone/--arch or fix them'
                    )
            family, arch = preset.family, preset.arch
            kwargs = {**preset.kwargs, **kwargs}
    if family is None or arch is None:
        raise ConversionError('give --backbone and --arch, or --model (a published model name)')
    if family not in FAMILIES:
        raise ConversionError(f'unknown --backbone {family!r}; valid: {list(FAMILIES)}')
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
    return Request(source, family, arch, kwargs, bn_eps, model, out_indices)


def _matching_preset(source: Source, family: str, arch: Any, kwargs: dict) -> Preset | None:
    """The published model a request builds (extra layout arguments such as
    ``feature_location`` do not change the weights)."""
    for p in source.presets.values():
        if p.family == family and p.arch == arch and p.kwargs.items() <= kwargs.items():
            return p
    return None


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


def _adapt_layout(
    ours: dict[str, torch.Tensor], expected: Mapping[str, tuple]
) -> tuple[dict[str, torch.Tensor], int]:
    """Follow the target's layout: ``feature_location='expansion'`` splits the expansion
    conv of the first stride-32 block into its own layer (``b<i>.expand`` -> ``b<i>_expand``);
    BatchNorm counters that pre-1.0 PyTorch did not save are filled with 0."""
    out = {}
    for k, v in ours.items():
        m = re.fullmatch(r'layers\.(b\d+)\.expand\.(.+)', k)
        split = m and f'layers.{m[1]}_expand.{m[2]}'
        out[split if split and k not in expected and split in expected else k] = v
    filled = 0
    for k in expected:
        if k.endswith('.num_batches_tracked') and k not in out:
            if k[: -len('num_batches_tracked')] + 'running_mean' in out:
                out[k] = torch.tensor(0, dtype=torch.long)
                filled += 1
    return out, filled


@dataclass
class _Diff:
    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple, tuple]]

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(
                f'{len(self.missing)} of our keys missing (first: {_first(self.missing)})'
            )
        if self.unexpected:
            parts.append(
                f'{len(self.unexpected)} keys our backbone does not have '
                f'(first: {_first(self.unexpected)})'
            )
        if self.mismatched:
            shown = ', '.join(
                f'{k} file {tuple(a)} vs ours {tuple(b)}' for k, a, b in self.mismatched[:3]
            )
            more = f' (+{len(self.mismatched) - 3} more)' if len(self.mismatched) > 3 else ''
            parts.append(f'{len(self.mismatched)} shape mismatches (first: {shown}{more})')
        return '; '.join(parts)


def _diff(ours: Mapping[str, Any], expected: Mapping[str, tuple]) -> _Diff:
    shape = {k: tuple(getattr(v, 'shape', v)) for k, v in ours.items()}
    return _Diff(
        missing=[k for k in expected if k not in shape],
        unexpected=[k for k in shape if k not in expected],
        mismatched=[
            (k, shape[k], expected[k]) for k in expected if k in shape and shape[k] != expected[k]
        ],
    )


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    request: Request,
    *,
    rgb: bool = False,
    others: Sequence[Source] = (),
    src_name: str = 'the file',
) -> ConvertResult:
    """Map a source state dict onto our backbone, strictly.

    Args:
        state_dict: The source's (unwrapped) state dict.
        request: From :func:`resolve`.
        rgb: Fold a BGR stem conv to RGB (flip its input channels).
        others: The other sources, tried when diagnosing a file that does not fit.
        src_name: The file's name in messages.

    Raises:
        ConversionError: a tensor is unmapped, missing or of the wrong shape; the message names
            the first offending keys and the published model the file probably is.
    """
    src, family, arch, kwargs = request.source, request.family, request.arch, request.kwargs
    expected, (our_eps, our_momentum) = expected_state(family, arch, kwargs)
    target = f'{family}(arch={arch!r}{_kw(kwargs)})'
    key_map = src.mappers[family](list(state_dict))
    ours, dropped, unmapped = apply_key_map(state_dict, key_map)
    if unmapped:
        hint = diagnose(state_dict, src, others)
        raise ConversionError(
            f'{src_name}: {len(unmapped)} of its {len(state_dict)} tensors fit no '
            f'{src.name} {family} layout (first: {_first(unmapped)}); {hint}'
        )
    ours, filled = _adapt_layout(ours, expected)
    diff = _diff(ours, expected)
    if diff.count:
        hint = diagnose(state_dict, src, others)
        raise ConversionError(
            f'{src_name} does not fit {target} (--source {src.name}): {diff.describe()}; {hint}'
        )
    notes = [src.notes[family]] if family in src.notes else []
    if filled:
        notes.append(f'filled {filled} missing BatchNorm num_batches_tracked counters with 0')
    inp = src.input
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
    except RuntimeError as e:  # pragma: no cover - _diff above catches the same cases
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
    return ConvertResult(ours, dropped, notes, meta, backbone)


# ------------------------------------------------------------------------- diagnosis
def _candidates(source: Source, family: str) -> list[tuple[str, Preset]]:
    seen, out = set(), []
    for name, p in source.presets.items():
        key = (p.family, _freeze(p.arch), _freeze(p.kwargs))
        if p.family == family and key not in seen:
            seen.add(key)
            out.append((name, p))
    return out


def diagnose(
    state_dict: Mapping[str, torch.Tensor], source: Source, others: Sequence[Source] = ()
) -> str:
    """Which published model a state dict probably is, as advice for the user.

    Every family layout of ``source`` (then of ``others``) that accounts for every key is
    tried against every preset of that source; an exact match names the model and the
    arguments to convert it with, otherwise the closest preset and a characteristic shape.
    """
    keys = list(state_dict)
    best: tuple[int, str] | None = None
    for src in [source, *[o for o in others if o.name != source.name]]:
        for family, mapper in src.mappers.items():
            ours, _, unmapped = apply_key_map(state_dict, mapper(keys))
            if unmapped or not ours:
                continue
            shapes = {k: tuple(v.shape) for k, v in ours.items()}
            for name, p in _candidates(src, family):
                try:
                    expected, _ = expected_state(p.family, p.arch, p.kwargs)
                except ConversionError:
                    continue
                adapted, _ = _adapt_layout(shapes, expected)
                n = _diff(adapted, expected).count
                how = (
                    f'--source {src.name} --model {name} (--backbone {p.family} '
                    f'--arch {_arch_arg(p.arch)}{_kw_args(p.kwargs)})'
                )
                if n == 0:
                    where = '' if src is source else f'a {src.name} file, '
                    return f'it looks like {where}{src.name} {name!r}: convert with {how}'
                if best is None or n < best[0]:
                    best = (n, f'{src.name} {name!r} with {n} differing tensors: {how}')
    first_conv = next(
        (f'{k} {tuple(v.shape)}' for k, v in state_dict.items() if v.dim() == 4), 'no conv'
    )
    closest = (
        f'the closest published model is {best[1]}'
        if best
        else ('its keys fit none of the known layouts (timm, torchvision, clovaai, pycls)')
    )
    return (
        f'it matches no published model exactly ({len(keys)} tensors, first conv '
        f'{first_conv}); {closest}'
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
) -> ConvertResult:
    """Read ``src`` safely, convert it, and write ``dst`` (``{'state_dict', 'meta'}``).

    ``dst`` is a plain-tensor torch file that ``torch.load(weights_only=True)`` and
    mmengine's ``Pretrained`` init read.
    """
    if dst.endswith('.safetensors'):
        raise ConversionError(
            f"DST {dst!r}: mmengine's Pretrained init reads torch checkpoints; use a .pth name"
        )
    if osp.abspath(src) == osp.abspath(dst):
        raise ConversionError('SRC and DST are the same file')
    state_dict, where = read_state_dict(src, key)
    result = convert_state_dict(
        state_dict, request, rgb=rgb, others=others, src_name=osp.basename(src)
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


# ---------------------------------------------------------------------------- format
def _first(items: Sequence[str], n: int = 3) -> str:
    items = list(items)
    more = f' (+{len(items) - n} more)' if len(items) > n else ''
    return ', '.join(items[:n]) + more


def _kw(kwargs: Mapping[str, Any]) -> str:
    return ''.join(f', {k}={v!r}' for k, v in kwargs.items())


def _arch_arg(arch: str | dict) -> str:
    return arch if isinstance(arch, str) else f'"{arch!r}"'


def _kw_args(kwargs: Mapping[str, Any]) -> str:
    return (
        (' --backbone-args ' + ' '.join(f'{k}={v!r}' for k, v in kwargs.items())) if kwargs else ''
    )


def format_config(backbone: Mapping[str, Any], checkpoint: str) -> str:
    """The backbone config to paste, with its ``init_cfg``."""

    def fmt(v: Any) -> str:
        if isinstance(v, Mapping):
            return 'dict(' + ', '.join(f'{k}={fmt(x)}' for k, x in v.items()) + ')'
        return repr(v)

    return fmt({**backbone, 'init_cfg': dict(type='Pretrained', checkpoint=checkpoint)})

"""Strict weight loading: a checkpoint that does not fit the model is an error that names
the mismatches, never a warning followed by a run with random layers.

mmengine loads ``load_from``, ``--resume`` checkpoints and ``Pretrained`` inits with
``strict=False``: a checkpoint of another width prints size-mismatch warnings, and the
run goes on with those layers at their random init (a COCO evaluation then reports
bbox mAP 0.000 instead of failing). Here:

* :class:`~mmbackbones.loading_hooks.StrictLoadHook` checks every checkpoint the runner
  loads (``tools/test.py``, ``load_from``, ``--resume``) before mmengine loads it: every
  tensor of the file must fit the model, and the model must find all of its tensors.
* our backbones' ``Pretrained`` init (:func:`init_weights_strictly`, called by
  ``BaseBackbone.init_weights``) loads with the same rules, except that a backbone file may
  lack tensors (they keep their init) and may hold layers the backbone does not build (its
  head conv, later stages); what was skipped is reported in one line.
* the lenient mode (``--allow-partial``, ``allow_partial_checkpoint=True``, or
  ``allow_partial=True`` in a ``Pretrained`` init_cfg) loads only what fits and says so
  in the log (:func:`apply_loading_policy`).

The error names the first mismatches, how many there are, and which model the file
probably is: from its ``meta`` (our converter's record, or the config of the run that saved
it, read with :mod:`ast`, never executed), from its shapes against our presets, or, for a
foreign file, with the converter's diagnosis (:func:`mmbackbones.convert.diagnose`).
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from mmbackbones.checkpoint import CONVERTER
from mmbackbones.convert.formatting import first
from mmbackbones.convert.target import Diff

#: the config key of the lenient mode (``tools/train.py`` / ``tools/test.py --allow-partial``)
ALLOW_PARTIAL_KEY = 'allow_partial_checkpoint'
HOOK_TYPE = 'mmbackbones.StrictLoadHook'
PARTIAL_NOTE = (
    f'{ALLOW_PARTIAL_KEY}=True (--allow-partial): a checkpoint that does not fit the model '
    'is loaded partially; the tensors that do not fit keep their initial values'
)
FIX = (
    'Use the checkpoint that matches the config (or the config it was trained with), or '
    f'pass --allow-partial (config: {ALLOW_PARTIAL_KEY}=True) to load only what fits'
)


class CheckpointMismatchError(ValueError):
    """A checkpoint whose tensors do not fit the model (a one-line message).

    Example:
        >>> str(CheckpointMismatchError('ck.pth does not fit the model: ...'))
        'ck.pth does not fit the model: ...'
    """


@dataclass
class Fit:
    """How a state dict fitted a module: ``diff`` (file vs model keys and shapes),
    ``loaded`` of ``total`` model tensors, and torch's ``other`` load errors."""

    diff: Diff
    loaded: int
    total: int
    other: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every tensor fitted both ways."""
        return not (self.diff.count or self.other)


def state_dict_of(checkpoint: Any) -> dict[str, Any]:
    """The model weights of a loaded checkpoint (``checkpoint['state_dict']`` or the dict
    itself), with the ``module.`` prefix of a DDP-wrapped save removed (mmengine's default
    ``revise_keys``)."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'a checkpoint must hold a dict of tensors, got {type(checkpoint).__name__}'
        )
    sd = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in sd.items()}


def _shape_differs(param: torch.Tensor, value: Any) -> bool:
    if not isinstance(value, torch.Tensor) or torch.nn.parameter.is_lazy(param):
        return False
    if param.dim() == 0 and tuple(value.shape) == (1,):  # torch loads 0.3-era scalars
        return False
    return value.shape != param.shape


def load_fitting(module: torch.nn.Module, state_dict: Mapping[str, Any]) -> Fit:
    """Load every tensor of ``state_dict`` that fits ``module``; report what did not.

    Walks the module tree as ``torch.nn.Module.load_state_dict`` does, through each
    module's ``_load_from_state_dict`` (so the modules' key remapping pre-hooks apply, e.g.
    our backbones' ``feature_location`` rename), but collects missing keys, unexpected
    keys and shape mismatches as data instead of raising on the first.

    Args:
        module: The model (unwrapped from DDP).
        state_dict: Its weights as saved (keys relative to ``module``).

    Example:
        >>> m = torch.nn.Linear(2, 3)
        >>> fit = load_fitting(m, {'weight': torch.zeros(3, 4), 'extra': torch.zeros(1)})
        >>> fit.diff.missing, fit.diff.unexpected, fit.diff.mismatched, fit.loaded
        (['bias'], ['extra'], [('weight', (3, 4), (3, 2))], 0)
    """
    metadata = getattr(state_dict, '_metadata', None) or {}
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []

    def walk(mod: torch.nn.Module, local: dict[str, Any], prefix: str) -> None:
        mod._load_from_state_dict(
            local, prefix, metadata.get(prefix[:-1], {}), True, missing, unexpected, errors
        )
        own = itertools.chain(
            mod.named_parameters(recurse=False), mod.named_buffers(recurse=False)
        )
        for name, tensor in own:
            key = prefix + name
            if key in local and _shape_differs(tensor, local[key]):
                mismatched.append((key, tuple(local[key].shape), tuple(tensor.shape)))
        for name, child in mod.named_children():
            head = f'{prefix}{name}.'
            walk(child, {k: v for k, v in local.items() if k.startswith(head)}, head)

    walk(module, dict(state_dict), '')
    # BatchNorm counters are not weights: pre-1.0 files lack them (BN fills them in), and
    # mmengine's loader ignores them too
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    total = sum(not k.endswith('num_batches_tracked') for k in module.state_dict())
    other = [e for e in errors if not e.startswith('size mismatch for ')]
    loaded = total - len(missing) - len(mismatched)
    return Fit(Diff(missing, unexpected, mismatched), max(loaded, 0), total, other)


# ------------------------------------------------------------------ which model it is
def _call_text(node: ast.AST) -> str | None:
    """``type(arch=...)`` of a ``dict(type=..., arch=...)`` call in a config's text."""
    if not (isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'dict'):
        return None
    kw = {k.arg: k.value for k in node.keywords if k.arg}
    if 'type' not in kw:
        return None
    name = ast.literal_eval(kw['type']) if isinstance(kw['type'], ast.Constant) else '?'
    arch = f'arch={ast.unparse(kw["arch"])}' if 'arch' in kw else ''
    return f'{name}({arch})'


def backbone_in_config_text(text: str) -> str | None:
    """The ``backbone`` of a dumped config (``meta['cfg']`` of an mmengine checkpoint), as
    ``type(arch=...)``; the text is parsed, not executed.

    Example:
        >>> backbone_in_config_text("model = dict(backbone=dict(type='X', arch='2.0'))")
        "X(arch='2.0')"
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'backbone':
            found = _call_text(node.value)
            if found:
                return found
    return None


def _preset_of(family: str, sub: Mapping[str, Any]) -> str | None:
    """The preset of ``family`` whose backbone holds every tensor of ``sub`` (our keys)."""
    from mmbackbones.convert.source import ConversionError
    from mmbackbones.convert.target import adapt_layout, diff, expected_state
    from mmbackbones.models import family_class

    shapes = {k: tuple(v.shape) for k, v in sub.items() if isinstance(v, torch.Tensor)}
    for name in family_class(family).arch_settings:
        try:
            expected, _ = expected_state(family, name)
        except ConversionError:
            continue
        d = diff(adapt_layout(shapes, expected)[0], expected)
        if not d.unexpected and not d.mismatched:  # a detector's backbone skips the head
            return f'mmbackbones.{family}(arch={name!r})'
    return None


def _our_backbone_by_shapes(sub: Mapping[str, Any], family: str | None) -> str | None:
    from mmbackbones.models import backbone_families

    order = [family] if family else []
    order += [f for f in backbone_families() if f != family]
    for fam in order:
        found = _preset_of(fam, sub)
        if found:
            return found
    return None


def _foreign(sd: Mapping[str, Any]) -> str | None:
    from mmbackbones.convert import SOURCES, diagnose

    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    try:
        return diagnose(tensors, SOURCES['timm'], list(SOURCES.values()))
    except Exception:  # advice only: never hide the mismatch behind a diagnosis error
        return None


def top_prefixes(keys: Any, n: int = 5) -> str:
    """The distinct first components of ``keys`` (``'backbone., neck., ...'``).

    Example:
        >>> top_prefixes(['backbone.a.w', 'backbone.b', 'neck.c', 'w'])
        "'backbone.', 'neck.', 'w'"
    """
    heads = dict.fromkeys(k.split('.')[0] + ('.' if '.' in k else '') for k in keys)
    return first([repr(h) for h in heads], n)


def probable_model(
    checkpoint: Any, state_dict: Mapping[str, Any], family: str | None = None
) -> str | None:
    """Which model a checkpoint probably belongs to, as a phrase for an error message.

    Args:
        checkpoint: The loaded file (its ``meta`` is read first).
        state_dict: Its weights (see :func:`state_dict_of`).
        family: Our backbone family of the model being loaded (tried first).
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if isinstance(meta, Mapping):
        bb = meta.get('backbone')
        if meta.get('converter') == CONVERTER and isinstance(bb, Mapping):
            arch = f'arch={bb.get("arch")!r}' if 'arch' in bb else ''
            src = f' from {meta.get("source")} {meta.get("model")!r}' if meta.get('model') else ''
            return f'the file was converted for {bb.get("type")}({arch}){src}'
        text = meta.get('cfg')
        found = backbone_in_config_text(text) if isinstance(text, str) else None
        if found:
            return f'it was saved by a run with backbone {found}'
    head = 'backbone.'
    sub = {k[len(head) :]: v for k, v in state_dict.items() if k.startswith(head)} or state_dict
    if any(k.startswith('layers.') for k in sub):
        found = _our_backbone_by_shapes(sub, family)
        return f'its backbone tensors are those of {found}' if found else None
    return _foreign(sub)


# --------------------------------------------------------------------- the messages
def mismatch_message(what: str, fit: Fit, hint: str | None, target: str = 'model') -> str:
    """``<what> does not fit the <target>: <n> of its <m> tensors fit; <the first offending
    keys of each kind, with counts>; <hint>`` (one line)."""
    parts = [f'{fit.loaded} of its {fit.total} tensors fit']
    if fit.diff.count:
        parts.append(fit.diff.describe(model=target.split(' ')[0]))
    if fit.other:
        parts.append(f'{len(fit.other)} load errors (first: {fit.other[0]})')
    return f'{what} does not fit the {target}: ' + '; '.join(parts + ([hint] if hint else []))


def _family_of(model: torch.nn.Module) -> str | None:
    from mmbackbones.models.backbones.base import BaseBackbone

    bb = model if isinstance(model, BaseBackbone) else getattr(model, 'backbone', None)
    return type(bb).__name__ if isinstance(bb, BaseBackbone) else None


def check_checkpoint_fits(
    model: torch.nn.Module,
    checkpoint: Any,
    what: str,
    model_desc: str = '',
    allow_partial: bool = False,
) -> Fit:
    """Load ``checkpoint`` into ``model`` where it fits; raise
    :class:`CheckpointMismatchError` if anything does not fit (unless ``allow_partial``,
    which logs the mismatches instead). ``model_desc`` describes the model in the message
    (e.g. its backbone config)."""
    sd = state_dict_of(checkpoint)
    fit = load_fitting(model, sd)
    if fit.ok:
        return fit
    hint = probable_model(checkpoint, sd, _family_of(model))
    target = f'model{model_desc}'
    if allow_partial:
        print_log(
            f'[mmbackbones] {ALLOW_PARTIAL_KEY}=True: loading only what fits: '
            + mismatch_message(what, fit, hint, target),
            logger='current',
            level=logging.WARNING,
        )
        return fit
    raise CheckpointMismatchError(mismatch_message(what, fit, hint, target) + f'. {FIX}')


# ------------------------------------------------------------------- Pretrained init
def _unbuilt_layer(module: torch.nn.Module, key: str) -> str | None:
    """The layer name of ``layers.<name>.*`` if our backbone does not build it."""
    layers = getattr(module, 'layers', None)
    parts = key.split('.')
    if layers is None or len(parts) < 3 or parts[0] != 'layers':
        return None
    return None if parts[1] in dict(layers.named_children()) else parts[1]


def describe_backbone(module: torch.nn.Module) -> str:
    """``Family(arch='preset')`` of our backbone (the class name for a custom arch).

    Example:
        >>> from mmbackbones.models import ReXNet
        >>> describe_backbone(ReXNet(arch='1.3'))
        "ReXNet(arch='1.3')"
    """
    cls = type(module)
    for name in getattr(cls, 'arch_settings', {}):
        with contextlib.suppress(ValueError):
            if cls.resolve_arch(name) == getattr(module, 'arch', None):
                return f'{cls.__name__}(arch={name!r})'
    return cls.__name__


def load_pretrained(
    module: torch.nn.Module,
    checkpoint: str,
    prefix: str | None = None,
    map_location: str = 'cpu',
    allow_partial: bool = False,
) -> Fit:
    """Our backbones' ``Pretrained`` init: load ``checkpoint`` (any URI mmengine's
    ``CheckpointLoader`` knows) into the backbone ``module``.

    Every tensor the backbone finds must fit it, and at least one must load. Allowed, and
    reported in one summary line: file tensors of layers the backbone does not build (its
    head conv, stages after the last tap) and backbone tensors the file lacks (they keep
    their init). Anything else raises :class:`CheckpointMismatchError`, naming the model
    the file probably is, unless ``allow_partial``.

    Args:
        module: The backbone.
        checkpoint: Weight file or URI.
        prefix: Load only the keys under this prefix (``'backbone.'`` of a detector file).
        map_location: As ``torch.load``.
        allow_partial: Load what fits, whatever does not (logged).
    """
    from mmengine.runner import CheckpointLoader

    name = type(module).__name__
    what = f'{describe_backbone(module)}: Pretrained checkpoint {checkpoint!r}'
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location=map_location)
    sd = state_dict_of(loaded)
    if prefix:
        head = prefix if prefix.endswith('.') else prefix + '.'
        sub = {k[len(head) :]: v for k, v in sd.items() if k.startswith(head)}
        if not sub:
            raise CheckpointMismatchError(
                f'{what}: prefix={prefix!r} matches none of its {len(sd)} keys; they start '
                f'with {top_prefixes(sd)}'
            )
        sd, what = sub, f'{what} (prefix {prefix!r})'
    fit = load_fitting(module, sd)
    skipped = [k for k in fit.diff.unexpected if _unbuilt_layer(module, k)]
    # what must not happen: tensors that do not fit, file tensors of no layer of ours,
    # nothing loaded at all (then the missing keys are the point)
    strict = Fit(
        Diff(
            fit.diff.missing if fit.loaded == 0 else [],
            [k for k in fit.diff.unexpected if k not in skipped],
            fit.diff.mismatched,
        ),
        fit.loaded,
        fit.total,
        fit.other,
    )
    if fit.loaded == 0 or not strict.ok:
        hint = probable_model(loaded, sd, name)
        if fit.loaded == 0 and any(k.startswith('backbone.') for k in sd) and not prefix:
            hint = "it is a whole model's checkpoint: add prefix='backbone.' to the init_cfg"
        msg = mismatch_message(what, strict, hint, 'backbone')
        if not allow_partial:
            raise CheckpointMismatchError(
                f'{msg}. Convert ImageNet weights with tools/convert_weights.py '
                '(docs/weights.md), or set allow_partial=True in the Pretrained init_cfg to '
                'load only what fits'
            )
        print_log(
            f'[mmbackbones] allow_partial=True: loading only what fits: {msg}',
            logger='current',
            level=logging.WARNING,
        )
    print_log(f'[mmbackbones] {_summary(what, fit, skipped)}', logger='current')
    return fit


def _summary(what: str, fit: Fit, skipped: list[str]) -> str:
    """One line: what was loaded, which file layers were skipped, what kept its init."""
    line = f'{what}: loaded {fit.loaded}/{fit.total} tensors'
    if skipped:
        layers = sorted({k.split('.')[1] for k in skipped})
        line += f'; skipped {len(skipped)} tensors of layers not built ({first(layers)})'
    if fit.diff.missing:
        line += f'; {len(fit.diff.missing)} not in the file keep their init'
        line += f' (first: {first(fit.diff.missing)})'
    return line


def init_weights_strictly(module: Any, base_init: Callable[[], None]) -> None:
    """``module.init_weights()`` with its ``Pretrained`` entries loaded by
    :func:`load_pretrained` instead of mmengine's lenient ``PretrainedInit``.

    mmengine applies ``Pretrained`` after the other inits and the children's
    ``init_weights``; so does this: ``base_init`` (``BaseModule.init_weights``) runs with
    the other entries, then the weights are loaded.

    Args:
        module: A ``BaseModule`` (our backbone).
        base_init: The bound ``super().init_weights``.
    """
    cfgs = module.init_cfg
    cfgs = [cfgs] if isinstance(cfgs, Mapping) else list(cfgs or [])
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    if not pretrained or module.is_init:
        base_init()
        return
    saved = module.init_cfg
    module.init_cfg = [c for c in cfgs if c.get('type') != 'Pretrained'] or None
    try:
        base_init()
    finally:
        module.init_cfg = saved
    for cfg in pretrained:
        load_pretrained(module, **{k: v for k, v in cfg.items() if k != 'type'})


# -------------------------------------------------------------- the tools' policy
def apply_loading_policy(cfg: Config, allow_partial: bool = False) -> bool:
    """Make ``cfg``'s runner load checkpoints strictly (``tools/train.py``/``test.py``).

    Adds :class:`~mmbackbones.loading_hooks.StrictLoadHook` to ``custom_hooks`` and, in the
    lenient mode (``allow_partial`` or ``cfg.allow_partial_checkpoint``), sets it there and
    in our backbone's ``Pretrained`` init_cfg, and logs it. Returns the mode.

    Example:
        >>> cfg = Config(dict(model=dict(backbone=dict(type='mmbackbones.ReXNet'))))
        >>> apply_loading_policy(cfg), cfg.custom_hooks[0].type
        (False, 'mmbackbones.StrictLoadHook')
    """
    import mmbackbones.loading_hooks  # noqa: F401  (registers the hook)

    partial = bool(allow_partial or cfg.get(ALLOW_PARTIAL_KEY, False))
    cfg[ALLOW_PARTIAL_KEY] = partial
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') != HOOK_TYPE]
    cfg.custom_hooks = [*hooks, dict(type=HOOK_TYPE, allow_partial=partial)]
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    init = backbone.get('init_cfg')
    ours = str(backbone.get('type', '')).startswith('mmbackbones.')
    for c in [init] if isinstance(init, Mapping) else list(init or []):
        if ours and partial and c.get('type') == 'Pretrained':
            c['allow_partial'] = True
    if partial:
        print(f'[mmbackbones] {PARTIAL_NOTE}', flush=True)
    return partial

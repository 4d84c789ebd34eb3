"""Our side of a conversion: the backbone families (from the registry), the state-dict
layout a backbone expects (``{key: shape}``, built on the meta device), and how a mapped
state dict is compared with it.

Our state-dict layout is ``layers.<name>.<...>`` (see ``models/backbones/base.py``). A
converted file holds *every* layer (head conv included) in the default
``feature_location='bottleneck'`` layout; :func:`adapt_layout` follows a target built with
``feature_location='expansion'`` (the split C4 layer) with the backbones' own rename,
:func:`mmbackbones.models.backbones.base.remap_expansion_keys`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmbackbones.models import backbone_families, family_class
from mmbackbones.models.backbones.base import remap_expansion_keys

from .formatting import first
from .source import ConversionError


def families() -> tuple[str, ...]:
    """Our backbone family names (the registry's, sorted).

    Example:
        >>> 'ReXNet' in families() and 'RegNet' in families()
        True
    """
    return tuple(backbone_families())


def backbone_class(family: str) -> type:
    """Our backbone class of a family name.

    Raises:
        ConversionError: an unknown family (the message lists the valid ones).
    """
    try:
        return family_class(family)
    except ValueError as e:
        raise ConversionError(str(e)) from None


def freeze(obj: Any) -> str:
    """A canonical, hashable form of an arch or kwargs (JSON with sorted keys)."""
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
    ``out_indices`` build.

    Raises:
        ConversionError: the family, arch or arguments are not buildable.
    """
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
    shapes, bn = _expected_cached(family, freeze(arch), freeze(dict(kwargs or {})))
    return dict(shapes), bn


def adapt_layout(
    ours: dict[str, Any], expected: Mapping[str, tuple]
) -> tuple[dict[str, Any], int]:
    """Follow the target's layout; returns ``(state dict, number of counters filled)``.

    ``feature_location='expansion'`` splits the expansion conv of the first stride-32 block
    into its own layer (``b<i>.expand`` -> ``b<i>_expand``: the backbones' own
    :func:`remap_expansion_keys`, with the target's layer names read off ``expected``);
    BatchNorm counters that pre-1.0 PyTorch did not save are filled with 0.
    """
    names = {k.split('.')[1] for k in expected if k.startswith('layers.')}
    renames = remap_expansion_keys(ours, names)
    out = {renames.get(k, k): v for k, v in ours.items()}
    filled = 0
    for k in expected:
        if k.endswith('.num_batches_tracked') and k not in out:
            if k[: -len('num_batches_tracked')] + 'running_mean' in out:
                out[k] = torch.tensor(0, dtype=torch.long)
                filled += 1
    return out, filled


@dataclass
class Diff:
    """How a mapped state dict differs from the one our backbone expects."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple, tuple]]

    @property
    def count(self) -> int:
        """The number of differing tensors."""
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def describe(self, model: str | None = None) -> str:
        """One line naming the first offending keys of each kind.

        Args:
            model: What the file is loaded into (``'model'``, ``'backbone'``); ``None``:
                the converter's wording ("our keys", "our backbone", "ours").

        Example:
            >>> Diff(['a'], [], [('w', (2,), (3,))]).describe('model')
            "1 of the model's keys missing (first: a); 1 shape mismatches (first: w file (2,) vs model (3,))"
        """  # noqa: E501
        ours, target = (
            ('our', 'our backbone') if model is None else (f"the {model}'s", f'the {model}')
        )
        parts = []
        if self.missing:
            parts.append(
                f'{len(self.missing)} of {ours} keys missing (first: {first(self.missing)})'
            )
        if self.unexpected:
            parts.append(
                f'{len(self.unexpected)} keys {target} does not have '
                f'(first: {first(self.unexpected)})'
            )
        if self.mismatched:
            short = 'ours' if model is None else model
            shown = ', '.join(
                f'{k} file {tuple(a)} vs {short} {tuple(b)}' for k, a, b in self.mismatched[:3]
            )
            more = f' (+{len(self.mismatched) - 3} more)' if len(self.mismatched) > 3 else ''
            parts.append(f'{len(self.mismatched)} shape mismatches (first: {shown}{more})')
        return '; '.join(parts)


def diff(ours: Mapping[str, Any], expected: Mapping[str, tuple]) -> Diff:
    """Compare tensors (or shapes) keyed as ours with the expected ``{key: shape}``."""
    shape = {k: tuple(getattr(v, 'shape', v)) for k, v in ours.items()}
    return Diff(
        missing=[k for k in expected if k not in shape],
        unexpected=[k for k in shape if k not in expected],
        mismatched=[
            (k, shape[k], expected[k]) for k in expected if k in shape and shape[k] != expected[k]
        ],
    )

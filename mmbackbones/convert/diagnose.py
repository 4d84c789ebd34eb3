"""Which published model a state dict that does not fit probably is, as advice.

Every family layout of the source (then of the other sources) that accounts for every key
is tried against every preset of that source, on the meta device; an exact match names the
model and the command-line arguments to convert it with, otherwise the closest preset and
a characteristic shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .formatting import arch_arg, backbone_args
from .source import ConversionError, Preset, Source, apply_key_map
from .target import adapt_layout, diff, expected_state, freeze


def _candidates(source: Source, family: str) -> list[tuple[str, Preset]]:
    """The source's presets of ``family``, one per distinct (arch, kwargs)."""
    seen, out = set(), []
    for name, p in source.presets.items():
        key = (p.family, freeze(p.arch), freeze(p.kwargs))
        if p.family == family and key not in seen:
            seen.add(key)
            out.append((name, p))
    return out


def diagnose(
    state_dict: Mapping[str, torch.Tensor], source: Source, others: Sequence[Source] = ()
) -> str:
    """Which published model a state dict probably is, as advice for the user.

    Args:
        state_dict: The source's (unwrapped) state dict.
        source: The source the user named (tried first).
        others: The other sources.

    Returns:
        One line: the model and how to convert it, or the closest one and the first conv.
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
                adapted, _ = adapt_layout(shapes, expected)
                n = diff(adapted, expected).count
                how = (
                    f'--source {src.name} --model {name} (--backbone {p.family} '
                    f'--arch {arch_arg(p.arch)}{backbone_args(p.kwargs)})'
                )
                if n == 0:
                    where = '' if src is source else f'a {src.name} file, '
                    return f'it looks like {where}{src.name} {name!r}: convert with {how}'
                if best is None or n < best[0]:
                    best = (n, f'{src.name} {name!r} with {n} differing tensors: {how}')
    first_conv = next(
        (f'{k} {tuple(v.shape)}' for k, v in state_dict.items() if v.dim() == 4), 'no conv'
    )
    names = dict.fromkeys(s.name for s in [source, *others])
    closest = (
        f'the closest published model is {best[1]}'
        if best
        else f'its keys fit none of the known layouts ({", ".join(names)})'
    )
    return (
        f'it matches no published model exactly ({len(keys)} tensors, first conv '
        f'{first_conv}); {closest}'
    )

"""Seeded, de-duplicated samplers with analytic complexity (no model is built)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mmbackbones.complexity import Complexity

from .spaces import INPUT_SIZE, NUM_CLASSES, DesignSpace, arch_key, get_space


def complexity(
    family: str, arch: dict[str, Any], size: int = INPUT_SIZE, num_classes: int = NUM_CLASSES
) -> Complexity:
    """Analytic complexity of a sampled model, as ``measure`` counts the built classifier:
    the family's own ``complexity`` (its ``layout``), in the ``'counted'`` convention.

    Example:
        >>> complexity('ReXNet', dict(channels=[16 + 8 * i for i in range(16)])).params
        2054802
    """
    from mmbackbones.models import family_class

    return family_class(family).complexity(arch, size, num_classes, convention='counted')


def record_id(space: str, family: str, arch: dict) -> str:
    """A short stable id of a sampled model (resume key)."""
    return hashlib.sha1(f'{space}|{arch_key(family, arch)}'.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ sampler


def sample(
    space: str | DesignSpace,
    n: int,
    seed: int = 0,
    params_range: tuple[float | None, float | None] | None = None,
    flops_range: tuple[float | None, float | None] | None = None,
    max_tries: int | None = None,
) -> list[dict[str, Any]]:
    """Draw ``n`` distinct models uniformly from ``space``.

    Each record is ``{"id", "space", "family", "design", "arch", "params", "flops"}``;
    ``AnyNet(arch=record["arch"])`` (``ReXNet`` when ``family == "ReXNet"``) builds it, and
    ``params``/``flops`` are the analytic figures of the classifier at 32x32 with 10
    classes. Duplicates (same arch) and models outside ``params_range`` /
    ``flops_range`` (``(lo, hi)``, either ``None`` for open) are rejected and redrawn.

    Raises:
        ValueError: for an unknown space or ``n < 1``, and if ``max_tries`` (default
            ``100 * n + 1000``) draws do not give ``n`` (bounds too narrow).
    """
    sp = get_space(space) if isinstance(space, str) else space
    if n < 1:
        raise ValueError(f'the number of samples must be >= 1, got {n}')
    rng = np.random.default_rng(seed)
    max_tries = 100 * n + 1000 if max_tries is None else max_tries
    seen: set[str] = set()
    out: list[dict[str, Any]] = []

    def inside(v: float, r) -> bool:
        return r is None or ((r[0] is None or v >= r[0]) and (r[1] is None or v <= r[1]))

    tries = 0
    while len(out) < n:
        if tries >= max_tries:
            raise ValueError(
                f'sample({sp.name!r}): only {len(out)} of {n} distinct models within the '
                f'bounds after {tries} draws; widen the params/FLOPs bounds or lower n'
            )
        tries += 1
        design = sp.draw(rng)
        arch = sp.to_arch(design)
        key = arch_key(sp.family, arch)
        if key in seen:
            continue
        seen.add(key)
        cx = complexity(sp.family, arch)
        if not (inside(cx.params, params_range) and inside(cx.flops, flops_range)):
            continue
        out.append(
            dict(
                id=record_id(sp.name, sp.family, arch),
                space=sp.name,
                family=sp.family,
                design=design,
                arch=arch,
                params=int(cx.params),
                flops=int(cx.flops),
            )
        )
    return out


def build_classifier(record: dict[str, Any], num_classes: int = NUM_CLASSES):
    """The ``ImageClassifier`` of a sample record."""
    from mmbackbones.models import ImageClassifier

    return ImageClassifier(
        dict(type=record.get('family', 'AnyNet'), arch=record['arch']), num_classes=num_classes
    )

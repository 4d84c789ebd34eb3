"""Seeded, de-duplicated samplers with analytic complexity (no model is built)."""

from __future__ import annotations

import hashlib
from math import ceil
from typing import Any

import numpy as np

from mmbackbones.complexity import Complexity
from mmbackbones.models.backbones.anynet import anynet_complexity

from .spaces import INPUT_SIZE, NUM_CLASSES, DesignSpace, arch_key, get_space

# ------------------------------------------------------------------ analytic complexity


def _conv(state: list, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1,
          bias: bool = False, norm: bool = True) -> None:  # fmt: skip
    """Accumulate a 'same' conv into ``state = [h, params, flops, acts]``."""
    h = (state[0] - 1) // stride + 1
    state[0] = h
    state[1] += (
        k * k * c_in // groups * c_out + (c_out if bias else 0) + (2 * c_out if norm else 0)
    )
    state[2] += k * k * c_in // groups * c_out * h * h
    state[3] += c_out * h * h


def rexnet_complexity(
    arch: dict[str, Any], size: int = INPUT_SIZE, num_classes: int = NUM_CLASSES
) -> Complexity:
    """Params/FLOPs/acts of a non-lite ReXNet classifier with explicit ``channels``.

    Follows :func:`mmbackbones.complexity.measure`'s convention (conv/linear multiply-adds,
    SE convs included, biases free) for ``ReXNet(arch)`` + its published classifier.
    Only the keys this toolkit samples are supported (``width_mult=1``, the default layout).
    """
    from mmbackbones.models.backbones.rexnet import _DEFAULT_ARCH, rexnet_channels

    a = {**_DEFAULT_ARCH, **arch}
    if a['lite'] or a['depth_mult'] != 1.0:
        raise ValueError('rexnet_complexity: only non-lite, depth_mult=1 archs are supported')
    stem, cins, couts, head = rexnet_channels(a)
    layers = [ceil(n * a['depth_mult']) for n in a['layers']]
    st = [size, 0, 0, 0]
    _conv(st, 3, stem, 3, 2)
    b = 0
    for stage, (n, s0) in enumerate(zip(layers, a['strides'])):
        use_se = a['use_se'] and a['se_stages'][stage]
        for j in range(n):
            t = 1 if b == 0 else a['expansion']
            mid = cins[b] * t
            if t != 1:
                _conv(st, cins[b], mid, 1)
            _conv(st, mid, mid, a['kernel_sizes'][stage], s0 if j == 0 else 1, groups=mid)
            if use_se:
                red = mid // a['se_ratio']
                h = st[0]
                st[0] = 1
                _conv(st, mid, red, 1, bias=True, norm=True)
                _conv(st, red, mid, 1, bias=True, norm=False)
                st[0] = h
            _conv(st, mid, couts[b], 1)
            b += 1
    _conv(st, couts[-1], head, 1)
    if num_classes:
        st[0] = 1
        _conv(st, head, num_classes, 1, bias=True, norm=False)
    return Complexity(params=st[1], flops=st[2], acts=st[3])


def complexity(
    family: str, arch: dict[str, Any], size: int = INPUT_SIZE, num_classes: int = NUM_CLASSES
) -> Complexity:
    """Analytic complexity of a sampled model, as ``measure`` counts the built classifier."""
    if family == 'ReXNet':
        return rexnet_complexity(arch, size, num_classes)
    return anynet_complexity(arch, size, num_classes, convention='counted')


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
        RuntimeError: if ``max_tries`` (default ``100 * n + 1000``) draws do not give ``n``.
    """
    sp = get_space(space) if isinstance(space, str) else space
    rng = np.random.default_rng(seed)
    max_tries = 100 * n + 1000 if max_tries is None else max_tries
    seen: set[str] = set()
    out: list[dict[str, Any]] = []

    def inside(v: float, r) -> bool:
        return r is None or ((r[0] is None or v >= r[0]) and (r[1] is None or v <= r[1]))

    tries = 0
    while len(out) < n:
        if tries >= max_tries:
            raise RuntimeError(
                f'sample({sp.name!r}): only {len(out)} of {n} distinct models within the '
                f'bounds after {tries} draws; widen params_range/flops_range or lower n'
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

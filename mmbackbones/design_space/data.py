"""Training data for design-space sweeps: CIFAR-10 if present, else a generated set.

CIFAR-10 is read from ``data/cifar10`` in the python pickle layout (``data_batch_1..5``
and ``test_batch``, directly or under ``cifar-10-batches-py/``). Otherwise
:func:`generated_set` draws a small deterministic 10-class set of 32x32 RGB images of
procedurally drawn classes (disc, square, triangle, ring, cross, horizontal / vertical /
diagonal stripes, checkerboard, dot grid) at random position, scale, colours and noise.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CLASSES = (
    'disc',
    'square',
    'triangle',
    'ring',
    'cross',
    'h_stripes',
    'v_stripes',
    'd_stripes',
    'checker',
    'dots',
)
MEAN = np.array([0.49, 0.48, 0.45], dtype=np.float32)
STD = np.array([0.25, 0.24, 0.26], dtype=np.float32)


def _masks(k: int, n: int, rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cx = rng.uniform(0.3, 0.7, (n, 1, 1)) * size
    cy = rng.uniform(0.3, 0.7, (n, 1, 1)) * size
    r = rng.uniform(0.18, 0.35, (n, 1, 1)) * size
    dx, dy = xx[None] - cx, yy[None] - cy
    period = rng.uniform(4, 8, (n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    inside = (np.abs(dx) < r) & (np.abs(dy) < r)
    name = CLASSES[k]
    if name == 'disc':
        return dx**2 + dy**2 < r**2
    if name == 'square':
        return inside
    if name == 'triangle':
        return (dy < r) & (dy > -r) & (np.abs(dx) < (dy + r) / 2)
    if name == 'ring':
        d = np.sqrt(dx**2 + dy**2)
        return (d < r) & (d > 0.6 * r)
    if name == 'cross':
        return inside & ((np.abs(dx) < r / 3) | (np.abs(dy) < r / 3))
    if name == 'h_stripes':
        return np.sin(2 * np.pi * yy[None] / period + phase) > 0
    if name == 'v_stripes':
        return np.sin(2 * np.pi * xx[None] / period + phase) > 0
    if name == 'd_stripes':
        return np.sin(2 * np.pi * (xx + yy)[None] / (1.4 * period) + phase) > 0
    if name == 'checker':
        return (np.sin(2 * np.pi * xx[None] / period) * np.sin(2 * np.pi * yy[None] / period)) > 0
    return (np.sin(2 * np.pi * xx[None] / period + phase) > 0.5) & (
        np.sin(2 * np.pi * yy[None] / period + phase) > 0.5
    )


def generated_set(
    n: int, seed: int = 0, size: int = 32, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, size, size, 3), labels int64 (n,))``, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    imgs = np.empty((n, size, size, 3), dtype=np.float32)
    for k in range(len(CLASSES)):
        sel = np.flatnonzero(labels == k)
        if not len(sel):
            continue
        m = _masks(k, len(sel), rng, size)[..., None]
        fg = rng.uniform(0, 1, (len(sel), 1, 1, 3))
        bg = rng.uniform(0, 1, (len(sel), 1, 1, 3))
        imgs[sel] = np.where(m, fg, bg) + rng.normal(0, noise, (len(sel), size, size, 3))
    return (np.clip(imgs, 0, 1) * 255).astype(np.uint8), labels.astype(np.int64)


def _load_cifar(root: Path) -> tuple[np.ndarray, ...] | None:
    for d in (root, root / 'cifar-10-batches-py'):
        if (d / 'test_batch').exists() and (d / 'data_batch_1').exists():

            def read(f):
                with open(f, 'rb') as fh:
                    b = pickle.load(fh, encoding='bytes')
                x = np.asarray(b[b'data'], dtype=np.uint8).reshape(-1, 3, 32, 32)
                return x.transpose(0, 2, 3, 1), np.asarray(b[b'labels'], dtype=np.int64)

            tr = [
                read(d / f'data_batch_{i}')
                for i in range(1, 6)
                if (d / f'data_batch_{i}').exists()
            ]
            xte, yte = read(d / 'test_batch')
            return np.concatenate([t[0] for t in tr]), np.concatenate([t[1] for t in tr]), xte, yte
    return None


def load_data(
    root: str | Path = 'data/cifar10', n_train: int = 5000, n_test: int = 1000, seed: int = 0
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(name, x_train, y_train, x_test, y_test)`` as normalized float32 NCHW arrays.

    ``name`` is ``'cifar10'`` or ``'generated'``; ``n_train``/``n_test`` size the
    generated set only (CIFAR-10 is used whole).
    """
    got = _load_cifar(Path(root))
    if got is not None:
        name, (xtr, ytr, xte, yte) = 'cifar10', got
    else:
        name = 'generated'
        xtr, ytr = generated_set(n_train, seed)
        xte, yte = generated_set(n_test, seed + 1)

    def norm(x):
        return ((x.astype(np.float32) / 255 - MEAN) / STD).transpose(0, 3, 1, 2).copy()

    return name, norm(xtr), ytr, norm(xte), yte

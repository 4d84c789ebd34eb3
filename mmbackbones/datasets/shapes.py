"""Built-in COCO-format detection/instance-segmentation data: "shapes".

Generated deterministically on first use (never committed). Each image has 2-6 objects of
four classes (circle, square, triangle, star) in random colours, with random rotation,
log-uniform scale (about 12-80 px on 192x192 images), limited overlap with the visible masks
kept exact, on a noisy gradient background with distractor lines. Boxes are tight around
the *visible* mask; masks are COCO RLE. It is small enough to train a detector on a CPU in
minutes and hard enough that AP is well below 1.0.
"""

from __future__ import annotations

import json
import math
import os
import os.path as osp
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .generated import ensure_generated

SHAPES_CLASSES = ('circle', 'square', 'triangle', 'star')
SHAPES_VERSION = 2  # bump when the generator changes; stale data is regenerated
SPLITS = {'train': (600, 0), 'val': (80, 100_000)}  # (images, seed offset)
IMAGE_SIZE = 192


def _polygon(cls: str, cx: float, cy: float, r: float, angle: float) -> list[tuple]:
    if cls == 'circle':
        n, radii = 48, [r]
    elif cls == 'square':
        n, radii = 4, [r]
    elif cls == 'triangle':
        n, radii = 3, [r * 1.15]
    else:  # star
        n, radii = 10, [r * 1.15, r * 0.5]
    pts = []
    for k in range(n):
        rad = radii[k % len(radii)]
        a = angle + 2 * math.pi * k / n
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, size)[None, :, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    img = c0 * (1 - t) + c1 * t
    img = img + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def render_image(seed: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[dict]]:
    """Render one image and its objects (``{'category_id', 'mask'}``, visible masks)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(0, 4)):  # distractor lines
        xy = [tuple(rng.uniform(0, size, 2)) for _ in range(2)]
        draw.line(
            xy, fill=tuple(int(v) for v in rng.uniform(0, 255, 3)), width=int(rng.integers(1, 4))
        )
    bg_mean = np.asarray(img, dtype=np.float32).reshape(-1, 3).mean(0)

    objects: list[dict[str, Any]] = []
    visible = np.zeros((0, size, size), dtype=bool)
    for _ in range(rng.integers(2, 7)):
        cls_idx = int(rng.integers(len(SHAPES_CLASSES)))
        for _try in range(20):
            r = float(np.exp(rng.uniform(np.log(6), np.log(40))))
            cx, cy = rng.uniform(r * 0.6, size - r * 0.6, 2)
            pts = _polygon(SHAPES_CLASSES[cls_idx], cx, cy, r, rng.uniform(0, 2 * math.pi))
            m_img = Image.new('L', (size, size), 0)
            ImageDraw.Draw(m_img).polygon(pts, fill=1)
            full = np.asarray(m_img, dtype=bool)
            if full.sum() < 40:
                continue
            # keep every earlier object at least 60% visible
            if visible.shape[0]:
                before = visible.sum((1, 2))
                after = (visible & ~full).sum((1, 2))
                if np.any(after < 0.6 * before):
                    continue
            break
        else:
            continue
        while True:  # a colour that stands out from the background
            color = rng.uniform(0, 255, 3)
            if np.abs(color - bg_mean).sum() > 120:
                break
        draw.polygon(pts, fill=tuple(int(v) for v in color))
        visible = np.concatenate([visible & ~full, full[None]], axis=0)
        objects.append({'category_id': cls_idx + 1})
    img = img.filter(ImageFilter.GaussianBlur(radius=0.6))
    arr = np.asarray(img).copy()
    arr = np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)
    for obj, mask in zip(objects, visible):
        obj['mask'] = mask
    return arr, objects


def _write_split(root: str, split: str, num: int, seed0: int) -> None:
    from pycocotools import mask as mask_utils

    img_dir = osp.join(root, split)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num):
        arr, objects = render_image(seed0 + i)
        name = f'{split}_{i:05d}.jpg'
        Image.fromarray(arr).save(osp.join(img_dir, name), quality=95)
        images.append(dict(id=i + 1, file_name=name, height=arr.shape[0], width=arr.shape[1]))
        for obj in objects:
            ys, xs = np.nonzero(obj['mask'])
            if len(xs) == 0:
                continue
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            rle = mask_utils.encode(np.asfortranarray(obj['mask'].astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=obj['category_id'],
                    bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    area=float(obj['mask'].sum()),
                    segmentation=rle,
                    iscrowd=0,
                )
            )
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(SHAPES_CLASSES)],
    )
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)


def ensure_shapes_coco(root: str = 'data/builtin/shapes_coco', verbose: bool = True) -> str:
    """Generate the built-in COCO-format set under ``root`` unless it is already there.

    Returns the absolute path of ``root``. Generation takes a few seconds and is
    deterministic: the same files on every machine. It is written to a temporary
    directory and renamed into place (:func:`.generated.ensure_generated`).
    """

    def write(path: str) -> None:
        for split, (num, seed0) in SPLITS.items():
            _write_split(path, split, num, seed0)

    return ensure_generated(root, SHAPES_VERSION, write, '"shapes" COCO', verbose)

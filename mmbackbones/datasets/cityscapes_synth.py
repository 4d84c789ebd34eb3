"""Built-in Cityscapes-format segmentation data: synthetic street scenes.

Generated deterministically on first use (fixed seeds, never committed), in the layout
mmseg's ``CityscapesDataset`` reads::

    <root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_000019_leftImg8bit.png   (RGB)
    <root>/gtFine/{train,val}/<city>/<city>_<seq>_000019_gtFine_labelTrainIds.png (L)

Labels are the standard Cityscapes *train ids* (0-18, 255 = ignore), so every Cityscapes
config works unchanged (``num_classes=19``). The scenes use a documented subset of them,
:data:`SYNTH_TRAIN_IDS`: road, sidewalk, building, fence, pole, traffic sign, vegetation,
terrain, sky, person and car. The other eight classes never occur; mmseg's ``IoUMetric``
reports them as NaN and leaves them out of the mIoU, unless the model predicts them (then
their IoU is 0).

Each 256x512 image is rendered with a pinhole camera (1.5 m above a flat street): a road
with lane markings and crossings, kerbs and paved sidewalks, grass verges, façades in
perspective with window grids, trees, poles with signs, fences, parked (side view) and
driving (rear view) cars, pedestrians, and "void" clutter (bins, boxes) labelled 255,
sometimes with the ego-vehicle bonnet (255) at the bottom, as in Cityscapes. Colours,
layout, camera horizon and vanishing point, cast shadows, lighting and noise vary per
image, so colour alone does not separate the classes (grey road / sidewalk / façade /
overcast sky, green vegetation / terrain) and thin classes (poles) stay hard.
"""

from __future__ import annotations

import multiprocessing
import os
import os.path as osp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image, ImageDraw

from .generated import ensure_generated

# mmseg's CityscapesDataset.METAINFO['classes'], indexed by train id
CITYSCAPES_CLASSES = (
    'road',
    'sidewalk',
    'building',
    'wall',
    'fence',
    'pole',
    'traffic light',
    'traffic sign',
    'vegetation',
    'terrain',
    'sky',
    'person',
    'rider',
    'car',
    'truck',
    'bus',
    'train',
    'motorcycle',
    'bicycle',
)
ROAD, SIDEWALK, BUILDING, FENCE, POLE, SIGN = 0, 1, 2, 4, 5, 7
VEGETATION, TERRAIN, SKY, PERSON, CAR = 8, 9, 10, 11, 13
# the train ids that occur (11 of 19); the other classes never do
SYNTH_TRAIN_IDS = (
    ROAD,
    SIDEWALK,
    BUILDING,
    FENCE,
    POLE,
    SIGN,
    VEGETATION,
    TERRAIN,
    SKY,
    PERSON,
    CAR,
)
IGNORE_INDEX = 255
IMAGE_SIZE = (256, 512)  # (height, width)
CITYSCAPES_SYNTH_VERSION = 1  # bump when the generator changes; stale data is regenerated
# split -> (cities, images per city, seed offset)
SPLITS = {
    'train': (('aachen', 'bremen', 'zurich'), 80, 0),
    'val': (('frankfurt', 'lindau', 'munster'), 16, 100_000),
}

_H, _W = IMAGE_SIZE
_ALL = (slice(None), slice(None))
Mask = tuple[tuple[slice, slice], np.ndarray]  # (bounding-box slices, mask inside the box)
_F = 560.0  # focal length in px (Cityscapes' 2262 px scaled to 512 px width)
_LANE = 2.3  # lane width in camera heights (3.5 m / 1.5 m)


def _smooth_noise(rng: np.random.Generator, cell: int) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise of image size (bilinear upsampled white noise)."""
    small = rng.standard_normal((_H // cell + 2, _W // cell + 2)).astype(np.float32)
    size = ((_W // cell + 2) * cell, (_H // cell + 2) * cell)
    big = Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)  # mode 'F'
    return np.asarray(big)[:_H, :_W]


class _Scene:
    """A canvas (image + label map) with the camera's ground-plane geometry."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.img = np.zeros((_H, _W, 3), np.float32)
        self.lab = np.full((_H, _W), IGNORE_INDEX, np.uint8)
        self.yh = rng.uniform(0.34, 0.5) * _H  # horizon row
        self.xv = rng.uniform(0.3, 0.7) * _W  # vanishing point column
        # pixel-centre coordinates as broadcast (read-only) views: no memory, sliceable
        xs = np.broadcast_to(np.arange(_W, dtype=np.float32) + 0.5, (_H, _W))
        ys = np.broadcast_to((np.arange(_H, dtype=np.float32) + 0.5)[:, None], (_H, _W))
        self.xs, self.ys = xs, ys
        dy = ys - self.yh
        self.ground = dy > 0.5
        safe = np.where(self.ground, dy, 1.0)
        # lateral offset u and depth z of the ground point seen at each pixel, both in
        # camera heights (1.5 m): u = X / h, z = Z / h
        self.u = np.where(self.ground, (xs - self.xv) / safe, 0.0)
        self.z = _F / safe  # only meaningful where self.ground
        self.fine = rng.standard_normal((_H, _W)).astype(np.float32)
        self.smooth = _smooth_noise(rng, 16)
        self.mottle = _smooth_noise(rng, 3)

    # ------------------------------------------------------------------ geometry
    def project(self, u: float, z: float, v: float) -> tuple[float, float]:
        """Image (x, y) of the world point at lateral ``u``, depth ``z``, height ``v``."""
        return self.xv + _F * u / z, self.yh + _F * (1.0 - v) / z

    def scale(self, z: float) -> float:
        """Pixels per camera height at depth ``z``."""
        return _F / z

    def _draw(self, bbox: tuple[float, float, float, float], draw: Callable) -> Mask:
        """Rasterise ``draw(ImageDraw, dx, dy)`` inside the (clipped) bounding box."""
        x0, y0 = max(int(np.floor(bbox[0])), 0), max(int(np.floor(bbox[1])), 0)
        x1, y1 = min(int(np.ceil(bbox[2])) + 1, _W), min(int(np.ceil(bbox[3])) + 1, _H)
        if x1 <= x0 or y1 <= y0:
            return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool)
        m = Image.new('L', (x1 - x0, y1 - y0), 0)
        draw(ImageDraw.Draw(m), x0, y0)
        return (slice(y0, y1), slice(x0, x1)), np.asarray(m, dtype=bool)

    def poly(self, pts: list[tuple[float, float]]) -> Mask:
        xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
        return self._draw(
            (min(xs), min(ys), max(xs), max(ys)),
            lambda d, dx, dy: d.polygon([(x - dx, y - dy) for x, y in zip(xs, ys)], fill=1),
        )

    def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> Mask:
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        return self._draw(
            box,
            lambda d, dx, dy: d.ellipse(
                [box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy], fill=1
            ),
        )

    def world_rect(self, u0: float, u1: float, z: float, v0: float, v1: float) -> np.ndarray:
        """A rectangle facing the camera at depth ``z``."""
        (x0, y0), (x1, y1) = self.project(u0, z, v1), self.project(u1, z, v0)
        return self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    def side_quad(self, u: float, z0: float, z1: float, v0: float, v1: float) -> np.ndarray:
        """A rectangle on the vertical plane at lateral ``u``, parallel to the street."""
        pts = [self.project(u, z0, v0), self.project(u, z1, v0)]
        pts += [self.project(u, z1, v1), self.project(u, z0, v1)]
        return self.poly(pts)

    # ------------------------------------------------------------------ painting
    def paint(
        self,
        mask: np.ndarray | Mask,
        rgb: np.ndarray | tuple,
        label: int | None,
        noise: float = 5.0,
        smooth: float = 0.0,
        mottle: float = 0.0,
    ) -> None:
        """Fill ``mask`` (full-size, or a ``(box slices, local mask)`` pair) with a colour
        modulated by fine / smooth / mottled noise, and write ``label`` under it."""
        sl, m = mask if isinstance(mask, tuple) else (_ALL, mask)
        ys, xs = np.nonzero(m)
        if ys.size == 0:
            return
        idx = (ys + (sl[0].start or 0)) * _W + (xs + (sl[1].start or 0))
        col = np.asarray(rgb, np.float32)[None, :]
        vals = noise * self.fine.reshape(-1)[idx]
        if smooth or mottle:
            gain = 1.0 + smooth * self.smooth.reshape(-1)[idx]
            if mottle:
                gain += mottle * self.mottle.reshape(-1)[idx]
            self.img.reshape(-1, 3)[idx] = col * gain[:, None] + vals[:, None]
        else:
            self.img.reshape(-1, 3)[idx] = col + vals[:, None]
        if label is not None:
            self.lab.reshape(-1)[idx] = label

    def jitter(self, rgb: tuple, amount: float = 18.0) -> np.ndarray:
        c = np.asarray(rgb, np.float32) + self.rng.uniform(-amount, amount, 3).astype(np.float32)
        return np.minimum(np.maximum(c, 0.0), 255.0)


_FACADE_COLOURS = (
    (196, 178, 150),  # sandstone
    (150, 150, 152),  # concrete
    (150, 84, 62),  # brick
    (214, 212, 204),  # white render
    (200, 180, 110),  # ochre
    (120, 128, 140),  # blue-grey
    (105, 100, 95),  # dark stone
)
_CAR_COLOURS = (
    (20, 20, 24),
    (200, 200, 204),
    (120, 124, 130),
    (150, 20, 24),
    (20, 40, 120),
    (230, 230, 226),
    (60, 70, 60),
    (180, 150, 40),
)


def _sky(s: _Scene) -> None:
    rng = s.rng
    overcast = rng.random() < 0.4
    top = (185, 188, 195) if overcast else (70, 120, 200)
    hor = (215, 215, 220) if overcast else (170, 200, 235)
    top, hor = s.jitter(top, 15), s.jitter(hor, 15)
    rows = slice(0, int(s.yh) + 1)  # everything below is ground, painted by _ground
    t = np.minimum(s.ys[rows, :1] / max(s.yh, 1.0), 1.0)  # (rows, 1)
    s.img[rows] = (top * (1 - t) + hor * t)[:, None, :] + 3.0 * s.fine[rows, :, None]
    s.lab[rows] = SKY
    if not overcast and rng.random() < 0.6:  # clouds
        c = np.clip(s.smooth[rows] * 0.9 + s.mottle[rows] * 0.3 - rng.uniform(0.3, 0.9), 0, 1)
        cloud = c > 0
        s.img[rows][cloud] += (235.0 - s.img[rows][cloud]) * c[cloud][:, None]


def _ground(s: _Scene, layout: dict) -> None:
    rng = s.rng
    sl = (slice(int(s.yh), _H), slice(None))  # the rows below the horizon
    u, z, g = s.u[sl], s.z[sl], s.ground[sl]
    rl, rr = layout['road']
    # beyond the sidewalks: grass verge, then (where no façade hides it) open ground
    for side, sw, verge, open_cls in layout['sides']:
        beyond = g & ((u < -rl - sw) if side < 0 else (u > rr + sw))
        if open_cls == TERRAIN:
            s.paint((sl, beyond), s.jitter((110, 132, 64), 20), TERRAIN, 6, 0.12, 0.12)
        else:
            s.paint((sl, beyond), s.jitter((150, 146, 140), 20), SIDEWALK, 5, 0.05)
        if verge > 0:
            lo, hi = (-rl - sw - verge, -rl - sw) if side < 0 else (rr + sw, rr + sw + verge)
            grass = s.jitter((112, 136, 60), 22)
            s.paint((sl, g & (u >= lo) & (u < hi)), grass, TERRAIN, 6, 0.1, 0.15)
        lo, hi = (-rl - sw, -rl) if side < 0 else (rr, rr + sw)
        walk = g & (u >= lo) & (u < hi)
        paver = s.jitter(rng.choice([(160, 158, 152), (170, 150, 140), (140, 140, 146)]), 15)
        s.paint((sl, walk), paver, SIDEWALK, 5, 0.06)
        tile = rng.uniform(0.3, 0.7)
        grid = walk & ((np.mod(u, tile) < 0.05) | (np.mod(z, tile) < 0.05 * z / 6 + 0.04))
        s.paint((sl, grid), paver * 0.75, SIDEWALK, 4)
        kerb = g & (np.abs(u - (lo if side > 0 else hi)) < 0.12)
        s.paint((sl, kerb), s.jitter((190, 190, 186), 10), SIDEWALK, 4)
    road = g & (u >= -rl) & (u <= rr)
    asphalt = s.jitter((rng.uniform(70, 115),) * 3, 8)
    s.paint((sl, road), asphalt, ROAD, 7, 0.1)
    white = s.jitter((225, 225, 220), 10)
    n_lanes = int(round((rl + rr) / _LANE))
    dashes = road & (np.mod(z, 6.0) < 3.0)
    for k in range(1, n_lanes):
        lu = -rl + k * (rl + rr) / n_lanes
        s.paint((sl, dashes & (np.abs(u - lu) < 0.06)), white, ROAD, 4)
    for edge in (-rl + 0.25, rr - 0.25):
        if rng.random() < 0.5:
            s.paint((sl, road & (np.abs(u - edge) < 0.05)), white, ROAD, 4)
    if rng.random() < 0.3:  # zebra crossing
        z0 = rng.uniform(6, 20)
        zebra = road & (z > z0) & (z < z0 + 2.5) & (np.mod(u, 0.8) < 0.4)
        s.paint((sl, zebra), white, ROAD, 4)
    if rng.random() < 0.3:  # repaired patches of darker asphalt
        patch = road & (s.smooth[sl] > rng.uniform(0.8, 1.4))
        s.paint((sl, patch), asphalt * 0.7, ROAD, 6)


def _facades(s: _Scene, layout: dict) -> None:
    """Façades on both sides (planes parallel to the street) and across its end."""
    rng = s.rng
    rl, rr = layout['road']
    closed = rng.random() < 0.5  # a building closes the street at depth z_end
    z_end = rng.uniform(50, 200) if closed else rng.uniform(40, 160)
    planes = []
    for side, sw, verge, _ in layout['sides']:
        ub = side * ((rl if side < 0 else rr) + sw + verge)
        planes.append(ub)
        if rng.random() < 0.12:
            continue  # an open side: the verge / open ground runs to the horizon
        z = rng.uniform(0.5, 4.0)
        while z < z_end:
            length = rng.uniform(6, 30)
            if rng.random() < 0.15:  # a gap between buildings
                z += rng.uniform(3, 12)
                continue
            top = rng.uniform(2.5, 14)
            z1 = min(z + length, z_end)
            (sl, m) = mask = s.side_quad(ub, z, z1, 0.0, top)
            base = s.jitter(_FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))], 20)
            s.paint(mask, base, BUILDING, 5, 0.08, 0.05)
            # windows on the façade plane: depth from the column, height from the row
            with np.errstate(divide='ignore', invalid='ignore'):
                zc = _F * ub / (s.xs[sl] - s.xv)
                v = 1.0 - (s.ys[sl] - s.yh) * zc / _F
            pitch, floor = rng.uniform(1.6, 3.2), rng.uniform(1.8, 2.3)
            wfrac, hfrac = rng.uniform(0.35, 0.65), rng.uniform(0.4, 0.65)
            fv = np.mod(v, floor)
            win = m & (np.mod(zc, pitch) < wfrac * pitch) & (fv > 0.25)
            win &= (fv < 0.25 + hfrac * floor) & (v > 1.3) & (v < top - 0.4)
            glass = s.jitter(rng.choice([(45, 55, 70), (90, 110, 130), (30, 30, 35)]), 15)
            s.paint((sl, win), glass, BUILDING, 6, 0.15)
            if rng.random() < 0.5:  # shop front on the ground floor
                shop = m & (v < 1.25) & (v > 0.05) & (np.mod(zc, pitch * 2) < pitch * 1.4)
                s.paint((sl, shop), s.jitter((60, 62, 66), 20), BUILDING, 6, 0.2)
            z = z1
    if closed:  # between the façade planes, so nearer façades are never covered
        mask = s.world_rect(planes[0], planes[1], z_end, 0.0, rng.uniform(3, 12))
        base = s.jitter(_FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))], 20)
        s.paint(mask, base, BUILDING, 5, 0.08)


def _tree(s: _Scene, u: float, z: float) -> None:
    rng = s.rng
    trunk_w = rng.uniform(0.12, 0.25)
    s.paint(
        s.world_rect(u - trunk_w / 2, u + trunk_w / 2, z, 0.0, 2.6),
        s.jitter((80, 62, 45), 15),
        VEGETATION,
        6,
        0.1,
    )
    green = s.jitter((rng.uniform(40, 90), rng.uniform(85, 135), rng.uniform(30, 60)), 10)
    k = s.scale(z)
    cx, cy = s.project(u, z, rng.uniform(3.0, 4.0))
    r = rng.uniform(1.0, 2.0) * k
    for _ in range(int(rng.integers(3, 7))):
        ox, oy = rng.normal(0, 0.45 * r, 2)
        rx, ry = r * rng.uniform(0.55, 0.9), r * rng.uniform(0.45, 0.8)
        s.paint(s.ellipse(cx + ox, cy + oy, rx, ry), green, VEGETATION, 9, 0.1, 0.35)


def _hedge(s: _Scene, u: float, z0: float, z1: float) -> None:
    green = s.jitter((55, 100, 45), 15)
    s.paint(s.side_quad(u, z0, z1, 0.0, s.rng.uniform(0.5, 1.1)), green, VEGETATION, 9, 0.1, 0.4)


def _pole(s: _Scene, u: float, z: float) -> None:
    rng = s.rng
    w, top = rng.uniform(0.06, 0.12), rng.uniform(3.0, 5.5)
    metal = s.jitter((rng.uniform(90, 170),) * 3, 10)
    s.paint(s.world_rect(u - w / 2, u + w / 2, z, 0.0, top), metal, POLE, 4, 0.05)
    if rng.random() < 0.6:  # a traffic sign on it
        size = rng.uniform(0.4, 0.7)
        cx, cy = s.project(u, z, top - size * 0.6)
        r = size * s.scale(z) / 2
        kind = rng.integers(3)
        if kind == 0:  # round, red rim
            s.paint(s.ellipse(cx, cy, r, r), (200, 30, 35), SIGN, 5)
            s.paint(s.ellipse(cx, cy, r * 0.7, r * 0.7), (235, 235, 235), SIGN, 5)
        elif kind == 1:  # blue square
            s.paint(
                s.poly([(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]),
                (30, 70, 170),
                SIGN,
                5,
            )
        else:  # warning triangle
            tri = s.poly(
                [(cx, cy - r * 1.1), (cx + r * 1.1, cy + r * 0.8), (cx - r * 1.1, cy + r * 0.8)]
            )
            s.paint(tri, (230, 200, 40), SIGN, 5)


def _fence(s: _Scene, u: float, z0: float, z1: float) -> None:
    rng = s.rng
    height = rng.uniform(0.6, 1.1)
    sl, m = s.side_quad(u, z0, z1, 0.0, height)
    wood = rng.random() < 0.5
    base = s.jitter((125, 95, 65) if wood else (120, 125, 130), 15)
    with np.errstate(divide='ignore', invalid='ignore'):
        zc = _F * u / (s.xs[sl] - s.xv)
        slats = m & (np.mod(zc, 0.35) < (0.22 if wood else 0.06))
        rail = m & (np.abs(s.ys[sl] - s.project(u, zc, height * 0.85)[1]) < 1.2)
    # between the slats the background shows through, darkened: still labelled fence
    s.img[sl][m] = s.img[sl][m] * 0.55 + base * 0.25
    s.lab[sl][m] = FENCE
    s.paint((sl, slats), base, FENCE, 5)
    s.paint((sl, rail), base * 0.9, FENCE, 4)


def _car_rear(s: _Scene, u: float, z: float) -> None:
    rng = s.rng
    w = rng.uniform(1.1, 1.35) / 2
    body = s.jitter(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], 20)
    for du in (-w + 0.05, w - 0.3):  # tyres
        s.paint(s.world_rect(u + du, u + du + 0.25, z, 0.0, 0.35), (25, 25, 28), CAR, 4)
    s.paint(s.world_rect(u - w, u + w, z, 0.18, 0.62), body, CAR, 5, 0.1)
    cabin = [s.project(u - w * 0.95, z, 0.62), s.project(u + w * 0.95, z, 0.62)]
    cabin += [s.project(u + w * 0.7, z, 0.98), s.project(u - w * 0.7, z, 0.98)]
    s.paint(s.poly(cabin), body, CAR, 5, 0.1)
    glass = [s.project(u - w * 0.85, z, 0.66), s.project(u + w * 0.85, z, 0.66)]
    glass += [s.project(u + w * 0.66, z, 0.93), s.project(u - w * 0.66, z, 0.93)]
    s.paint(s.poly(glass), s.jitter((40, 48, 60), 10), CAR, 6, 0.2)
    for du in (-w + 0.04, w - 0.22):  # rear lights
        s.paint(s.world_rect(u + du, u + du + 0.18, z, 0.45, 0.55), (190, 25, 25), CAR, 5)
    s.paint(s.world_rect(u - 0.17, u + 0.17, z, 0.3, 0.4), (225, 225, 215), CAR, 3)  # plate


def _car_side(s: _Scene, u: float, z0: float) -> None:
    rng = s.rng
    length = rng.uniform(2.6, 3.3)
    z1 = z0 + length
    body = s.jitter(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], 20)
    s.paint(s.side_quad(u, z0, z1, 0.15, 0.62), body, CAR, 5, 0.1)
    cab = [s.project(u, z0 + 0.2 * length, 0.62), s.project(u, z0 + 0.85 * length, 0.62)]
    cab += [s.project(u, z0 + 0.7 * length, 0.95), s.project(u, z0 + 0.35 * length, 0.95)]
    s.paint(s.poly(cab), body, CAR, 5, 0.1)
    win = [s.project(u, z0 + 0.26 * length, 0.66), s.project(u, z0 + 0.8 * length, 0.66)]
    win += [s.project(u, z0 + 0.67 * length, 0.91), s.project(u, z0 + 0.38 * length, 0.91)]
    s.paint(s.poly(win), s.jitter((40, 48, 60), 10), CAR, 6, 0.2)
    for zw in (z0 + 0.18 * length, z0 + 0.82 * length):  # wheels
        cx, cy = s.project(u, zw, 0.2)
        r = 0.2 * s.scale(zw)
        s.paint(s.ellipse(cx, cy, r * 0.6, r), (22, 22, 25), CAR, 4)


def _person(s: _Scene, u: float, z: float) -> None:
    rng = s.rng
    h = rng.uniform(1.0, 1.25)  # 1.5 - 1.9 m
    shirt = s.jitter(tuple(rng.uniform(20, 230, 3)), 0)
    trousers = s.jitter(tuple(rng.uniform(15, 120, 3)), 0)
    skin = s.jitter(rng.choice([(225, 190, 160), (160, 115, 85), (95, 65, 45)]), 10)
    stride = rng.uniform(0.0, 0.18)
    for du in (-0.09 - stride / 2, 0.02 + stride / 2):  # legs
        s.paint(s.world_rect(u + du - 0.05, u + du + 0.07, z, 0.0, 0.5 * h), trousers, PERSON, 5)
    s.paint(s.world_rect(u - 0.16, u + 0.16, z, 0.48 * h, 0.84 * h), shirt, PERSON, 5, 0.1)
    for du in (-0.21, 0.16):  # arms
        s.paint(s.world_rect(u + du, u + du + 0.06, z, 0.5 * h, 0.82 * h), shirt * 0.9, PERSON, 5)
    cx, cy = s.project(u, z, 0.91 * h)
    r = 0.075 * h * s.scale(z)
    s.paint(s.ellipse(cx, cy, r * 0.85, r), skin, PERSON, 4)
    if rng.random() < 0.3:  # a bag
        s.paint(s.world_rect(u + 0.16, u + 0.3, z, 0.35 * h, 0.55 * h), trousers * 0.8, PERSON, 5)


def _clutter(s: _Scene, u: float, z: float) -> None:
    """Unlabelled street furniture (bins, boxes, bollards): ignore (255), as Cityscapes'
    void classes."""
    rng = s.rng
    w, h = rng.uniform(0.3, 0.8), rng.uniform(0.4, 0.9)
    col = s.jitter(tuple(rng.uniform(30, 200, 3)), 0)
    s.paint(s.world_rect(u - w / 2, u + w / 2, z, 0.0, h), col, IGNORE_INDEX, 5, 0.1)


def _objects(s: _Scene, layout: dict) -> None:
    rng = s.rng
    rl, rr = layout['road']
    things: list[tuple[float, Callable[[], None]]] = []  # (depth, draw), far first

    def add(z: float, fn: Callable, *args: float) -> None:
        things.append((z, lambda: fn(s, *args, z)))

    for side, sw, verge, _ in layout['sides']:
        edge = rl if side < 0 else rr
        outer = side * (edge + sw)
        if rng.random() < 0.35:
            z0 = rng.uniform(3, 20)
            (_fence if rng.random() < 0.6 else _hedge)(s, outer, z0, z0 + rng.uniform(5, 30))
        for _ in range(int(rng.integers(0, 5))):
            uu = side * (edge + sw + verge * rng.uniform(0.3, 0.7) if verge else edge + sw - 0.4)
            add(rng.uniform(4, 60), _tree, uu)
        for _ in range(int(rng.integers(0, 4))):
            add(rng.uniform(3, 45), _pole, side * (edge + rng.uniform(0.25, 0.5)))
        for _ in range(int(rng.integers(0, 6))):
            add(rng.uniform(3, 35), _person, side * (edge + rng.uniform(0.3, max(0.4, sw - 0.3))))
        if edge > 1.8 and rng.random() < 0.6:  # parked cars along a kerb >= 1 lane away
            z = rng.uniform(2, 8)
            for _ in range(int(rng.integers(1, 6))):
                add(z, _car_side, side * (edge - 0.7))
                z += rng.uniform(3.4, 8)
        for _ in range(int(rng.integers(0, 3))):
            add(rng.uniform(4, 30), _clutter, side * (edge + rng.uniform(0.3, sw)))
    lanes = max(1, int(round((rl + rr) / _LANE)))
    for _ in range(int(rng.integers(0, 5))):
        lane = rng.integers(lanes)
        lu = -rl + (lane + 0.5) * (rl + rr) / lanes + rng.uniform(-0.3, 0.3)
        add(rng.uniform(5, 70), _car_rear, lu)
    if rng.random() < 0.2:  # someone crossing the road
        add(rng.uniform(5, 25), _person, rng.uniform(-rl, rr))
    for _, draw in sorted(things, key=lambda t: -t[0]):
        draw()


def _shadows(s: _Scene) -> None:
    """Cast shadows of the façades on one side: darker ground, labels unchanged."""
    rng = s.rng
    if rng.random() < 0.5:
        return
    side = rng.choice([-1, 1])
    slope = rng.uniform(-0.15, 0.15)
    edge = rng.uniform(-2.0, 3.0)
    on_ground = np.zeros(256, bool)
    on_ground[[ROAD, SIDEWALK, TERRAIN]] = True
    shade = s.ground & (side * (s.u + slope * s.z) > edge) & on_ground[s.lab]
    s.img[shade] *= rng.uniform(0.5, 0.75)


def _blur(img: np.ndarray, amount: float) -> np.ndarray:
    """Optics: blend with a separable [1, 2, 1] / 4 blur."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode='edge')
    v = (p[:-2] + 2 * p[1:-1] + p[2:]) * 0.25
    b = (v[:, :-2] + 2 * v[:, 1:-1] + v[:, 2:]) * 0.25
    return img + amount * (b - img)


def render_scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene: ``(image HxWx3 uint8 RGB, label HxW uint8 train ids / 255)``."""
    rng = np.random.default_rng(seed)
    s = _Scene(rng)
    rl = 0.6 + rng.integers(0, 3) * _LANE + rng.uniform(0, 1.2)  # the camera's lane
    rr = 1.7 + rng.integers(0, 3) * _LANE + rng.uniform(0, 1.2)
    sides = []
    for side in (-1, 1):
        verge = rng.uniform(1.0, 3.5) if rng.random() < 0.4 else 0.0
        open_cls = TERRAIN if rng.random() < 0.5 else SIDEWALK
        sides.append((side, rng.uniform(1.2, 4.0), verge, open_cls))
    layout = dict(road=(rl, rr), sides=sides)
    _sky(s)
    _ground(s, layout)
    _facades(s, layout)
    _shadows(s)
    _objects(s, layout)
    if rng.random() < 0.4:  # ego-vehicle bonnet: ignore, as in Cityscapes
        top = _H - rng.uniform(8, 30)
        bonnet = s.ellipse(_W / 2, top + 300, _W * rng.uniform(0.6, 0.9), 300)
        s.paint(bonnet, s.jitter((50, 52, 58), 20), IGNORE_INDEX, 4, 0.2)
    # camera: exposure, white balance, optics blur, sensor noise
    gain = rng.uniform(0.7, 1.2) * rng.uniform(0.92, 1.08, 3)
    img = _blur(s.img * gain.astype(np.float32), rng.uniform(0.3, 1.0))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(2, 6))
    img = np.clip(img, 0, 255, out=img).astype(np.uint8)
    return img, s.lab


def _paths(root: str, split: str, c: int, i: int) -> tuple[str, str]:
    city = SPLITS[split][0][c]
    name = f'{city}_{i:06d}_000019'
    return (
        osp.join(root, 'leftImg8bit', split, city, f'{name}_leftImg8bit.png'),
        osp.join(root, 'gtFine', split, city, f'{name}_gtFine_labelTrainIds.png'),
    )


def _write_images(root: str, split: str, c: int, start: int, stop: int) -> None:
    _, per_city, seed0 = SPLITS[split]
    for i in range(start, stop):
        img, lab = render_scene(seed0 + c * per_city + i)
        img_path, lab_path = _paths(root, split, c, i)
        # fast zlib level: noisy images barely compress further (280 vs 255 kB)
        Image.fromarray(img).save(img_path, compress_level=1)
        Image.fromarray(lab).save(lab_path)  # uint8 2-D: mode 'L'


def _write_all(root: str, chunk: int = 16) -> None:
    """Render every image, in parallel worker processes where possible (each image has its
    own seed, so the files do not depend on the scheduling)."""
    jobs = []
    for split, (cities, per_city, _) in SPLITS.items():
        for c in range(len(cities)):
            for path in _paths(root, split, c, 0):
                os.makedirs(osp.dirname(path), exist_ok=True)
            jobs += [
                (root, split, c, i, min(i + chunk, per_city)) for i in range(0, per_city, chunk)
            ]
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or 'fork' not in multiprocessing.get_all_start_methods():
        for job in jobs:
            _write_images(*job)
        return
    ctx = multiprocessing.get_context('fork')  # numpy / PIL only in the workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for fut in [pool.submit(_write_images, *job) for job in jobs]:
            fut.result()


def ensure_cityscapes_synth(
    root: str = 'data/builtin/cityscapes_synth', verbose: bool = True
) -> str:
    """Generate the built-in Cityscapes-format set under ``root`` unless it is there.

    Returns the absolute path of ``root``. Generation is deterministic (the same files on
    every machine) and takes ~20 s of CPU time (spread over the cores): 240 training and 48
    validation images of 256x512 (see :data:`SPLITS`). A ``VERSION`` stamp marks a complete
    set of the current generator; a stale one is replaced. The set is written to a
    temporary directory and renamed into place, so processes that start together (the ranks
    of a distributed run, parallel test sessions) never see half a data set.
    """
    return ensure_generated(
        root, CITYSCAPES_SYNTH_VERSION, _write_all, 'Cityscapes-format', verbose
    )

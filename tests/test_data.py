"""The built-in COCO-format "shapes" data: deterministic, valid COCO, not trivial."""

from __future__ import annotations

import hashlib
import json
import os.path as osp

import numpy as np
from pycocotools import mask as mask_utils

from mmbackbones.datasets.shapes import SHAPES_CLASSES, ensure_shapes_coco, render_image


def _digest(root: str) -> str:
    h = hashlib.sha256()
    for split in ('train', 'val'):
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'rb') as f:
            h.update(f.read())
        for i in (0, 7, 42):
            with open(osp.join(root, split, f'{split}_{i:05d}.jpg'), 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def test_generation_is_deterministic(tmp_path, builtin_root) -> None:
    a = osp.join(builtin_root, 'shapes_coco')
    b = ensure_shapes_coco(str(tmp_path / 'again'), verbose=False)
    assert _digest(a) == _digest(b)
    img1, objs1 = render_image(123)
    img2, objs2 = render_image(123)
    assert np.array_equal(img1, img2)
    assert [o['category_id'] for o in objs1] == [o['category_id'] for o in objs2]
    assert not np.array_equal(render_image(124)[0], img1)


def test_annotations_are_valid_coco(builtin_root) -> None:
    root = osp.join(builtin_root, 'shapes_coco')
    with open(osp.join(root, 'annotations', 'instances_val.json')) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == list(SHAPES_CLASSES)
    images = {im['id']: im for im in coco['images']}
    per_image: dict[int, int] = {}
    areas = []
    for ann in coco['annotations']:
        im = images[ann['image_id']]
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= im['width'] and y + h <= im['height']
        m = mask_utils.decode(
            dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode())
        )
        assert m.shape == (im['height'], im['width'])
        assert m.sum() == ann['area'] > 0
        ys, xs = np.nonzero(m)  # the box is tight around the visible mask
        assert (xs.min(), ys.min(), xs.max() + 1 - x, ys.max() + 1 - y) == (x, y, w, h)
        per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
        areas.append(ann['area'])
    assert len(per_image) == len(images)  # every image has objects
    assert max(per_image.values()) >= 5 and min(per_image.values()) <= 3
    assert min(areas) < 400 and max(areas) > 4000  # varied scale
    counts = np.bincount([a['category_id'] for a in coco['annotations']])
    assert (counts[1:] > 20).all()  # every class well represented


def test_objects_overlap_sometimes(builtin_root) -> None:
    with open(osp.join(builtin_root, 'shapes_coco', 'annotations', 'instances_train.json')) as f:
        coco = json.load(f)
    boxes: dict[int, list] = {}
    for a in coco['annotations']:
        boxes.setdefault(a['image_id'], []).append(a['bbox'])
    overlapping = 0
    for bb in boxes.values():
        b = np.array(bb)
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                ix = min(b[i, 0] + b[i, 2], b[j, 0] + b[j, 2]) - max(b[i, 0], b[j, 0])
                iy = min(b[i, 1] + b[i, 3], b[j, 1] + b[j, 3]) - max(b[i, 1], b[j, 1])
                overlapping += ix > 0 and iy > 0
    assert overlapping > 50


def test_ssd_anchors_follow_the_builtin_image_size() -> None:
    """At SSDLite's own 320 the rule gives back mmdet's anchor table exactly; at the
    built-in 192 the sizes scale by 0.6 and the strides are 192 / (12, 6, 3, 2, 1, 1)."""
    from mmengine.config import ConfigDict

    from mmbackbones.datasets.builtin import _scale_ssd_anchors

    def model() -> ConfigDict:
        return ConfigDict(
            bbox_head=dict(
                anchor_generator=dict(
                    type='SSDAnchorGenerator',
                    strides=[16, 32, 64, 107, 160, 320],
                    min_sizes=[48, 100, 150, 202, 253, 304],
                    max_sizes=[100, 150, 202, 253, 304, 320],
                )
            )
        )

    m = model()
    _scale_ssd_anchors(m, 320)
    assert m.bbox_head.anchor_generator.strides == [16, 32, 64, 107, 160, 320]
    assert m.bbox_head.anchor_generator.min_sizes == [48, 100, 150, 202, 253, 304]
    m = model()
    _scale_ssd_anchors(m, 192)
    gen = m.bbox_head.anchor_generator
    assert gen.strides == [16, 32, 64, 96, 192, 192]
    assert gen.min_sizes == [29, 60, 90, 121, 152, 182]
    assert gen.max_sizes == [60, 90, 121, 152, 182, 192]


def test_generated_sets_are_written_atomically(tmp_path) -> None:
    """A half-written or stale set is replaced; a failed generation leaves nothing."""
    import os

    import pytest

    from mmbackbones.datasets.generated import ensure_generated, is_current

    root = tmp_path / 'set'
    root.mkdir()
    (root / 'junk.txt').write_text('from an interrupted run without a VERSION stamp')
    calls = []

    def write(path: str) -> None:
        calls.append(path)
        (tmp_path / 'set_written').write_text(path)
        with open(os.path.join(path, 'a.txt'), 'w') as f:
            f.write('a')

    out = ensure_generated(str(root), 3, write, 'toy', verbose=False)
    assert sorted(os.listdir(out)) == ['VERSION', 'a.txt'] and is_current(out, 3)
    assert calls[0] != str(root)  # written elsewhere, then renamed into place
    ensure_generated(str(root), 3, write, 'toy', verbose=False)
    assert len(calls) == 1  # current: not regenerated
    ensure_generated(str(root), 4, write, 'toy', verbose=False)
    assert len(calls) == 2 and is_current(str(root), 4)  # stale: replaced

    def fail(path: str) -> None:
        with open(os.path.join(path, 'half.txt'), 'w') as f:
            f.write('half')
        raise KeyboardInterrupt

    other = tmp_path / 'other'
    with pytest.raises(KeyboardInterrupt):
        ensure_generated(str(other), 1, fail, 'toy', verbose=False)
    assert not other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['set', 'set_written']


def test_builtin_schedules_are_seeded(builtin_root, seg_root) -> None:
    """Every built-in schedule sets randomness.seed (mmengine then seeds the sampler and
    the loader's workers); a seed the config already has is kept."""
    from conftest import REPO
    from mmengine.config import Config

    from mmbackbones.datasets.builtin import BUILTIN_SEED, apply_builtin_data

    for name, root in (
        ('rexnet_fasterrcnn_fpn.py', builtin_root),
        ('mobilenetv3-large_lraspp_cityscapes.py', seg_root),
    ):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        assert cfg.get('randomness', {}).get('seed') is None  # mmengine's default: random
        apply_builtin_data(cfg, root)
        assert cfg.randomness.seed == BUILTIN_SEED
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'rexnet_fasterrcnn_fpn.py'))
    cfg.randomness = dict(seed=3, deterministic=True)
    apply_builtin_data(cfg, builtin_root)
    assert cfg.randomness == dict(seed=3, deterministic=True)

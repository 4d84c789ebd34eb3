"""Plots for training runs: loss curves from mmengine logs and detection predictions."""

from __future__ import annotations

import glob
import json
import os.path as osp
from collections.abc import Sequence

import numpy as np


def read_scalars(work_dir: str) -> list[dict]:
    """All records of every run's ``vis_data/scalars.json`` in ``work_dir`` (resumed runs
    included), ordered by step; later runs win for duplicate steps.

    Iteration-based validation records carry ``step`` 0 in mmengine's logs, so each one
    gets the step of the training record logged just before it.
    """
    by_key: dict[tuple, dict] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        last_train_step = 0
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    last_train_step = rec.get('step', last_train_step)
                    by_key[('train', last_train_step)] = rec
                elif any(k.startswith(('coco/', 'mIoU', 'aAcc')) for k in rec):
                    rec['step'] = last_train_step
                    by_key[('val', last_train_step)] = rec
    return [by_key[k] for k in sorted(by_key, key=lambda k: (k[1], k[0]))]


def plot_loss_curve(work_dir: str, out_file: str) -> str:
    """Plot the training losses (and validation metrics, if any) of ``work_dir``."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    recs = read_scalars(work_dir)
    train = [r for r in recs if 'loss' in r]
    if not train:
        raise ValueError(f'no training losses logged under {work_dir}')
    val = [r for r in recs if any(k.startswith('coco/') for k in r)]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [r['step'] for r in train]
    for key in sorted(k for k in train[-1] if k.startswith('loss')):
        ax.plot(
            steps, [r.get(key, np.nan) for r in train], label=key, lw=2 if key == 'loss' else 1
        )
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_yscale('log')
    ax.grid(alpha=0.3)
    ax.legend(loc='upper left', fontsize=8)
    if val:
        ax2 = ax.twinx()
        for key, style in (('coco/bbox_mAP_50', 'o-'), ('coco/bbox_mAP', 's--')):
            pts = [(r['step'], r[key]) for r in val if key in r]
            if pts:
                ax2.plot(*zip(*pts), style, color='k', label=f'val {key[5:]}')
        ax2.set_ylim(0, 1)
        ax2.set_ylabel('validation AP')
        ax2.legend(loc='upper right', fontsize=8)
    ax.set_title(f'training curve: {osp.basename(osp.normpath(work_dir))}')
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def plot_detections(
    config: str,
    checkpoint: str,
    images: Sequence[str],
    out_file: str,
    score_thr: float = 0.5,
    cols: int = 4,
) -> str:
    """Run a detector on ``images`` and draw its boxes (score >= ``score_thr``) in a grid."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmdet.apis import inference_detector, init_detector
    from PIL import Image

    model = init_detector(config, checkpoint, device='cpu')
    classes = model.dataset_meta.get('classes', ())
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows))
    colors = plt.get_cmap('tab10')
    for ax, path in zip(np.ravel(axes), images):
        result = inference_detector(model, path).pred_instances
        ax.imshow(Image.open(path).convert('RGB'))
        keep = result.scores >= score_thr
        for box, label, score in zip(
            result.bboxes[keep], result.labels[keep], result.scores[keep]
        ):
            x0, y0, x1, y1 = box.tolist()
            c = colors(int(label) % 10)
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=c, lw=1.5))
            name = classes[int(label)] if int(label) < len(classes) else str(int(label))
            ax.text(
                x0,
                y0 - 2,
                f'{name} {score:.2f}',
                color='white',
                fontsize=6,
                bbox=dict(facecolor=c, alpha=0.7, pad=0.5, lw=0),
            )
        ax.set_title(osp.basename(path), fontsize=7)
    for ax in np.ravel(axes):
        ax.axis('off')
    fig.suptitle(f'predictions (score >= {score_thr})', fontsize=9)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file

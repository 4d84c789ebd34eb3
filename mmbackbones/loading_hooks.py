"""Runner hooks around checkpoints, added by ``tools/train.py`` / ``tools/test.py``.

* :class:`StrictLoadHook`: every checkpoint the runner loads (``load_from``, ``--resume``,
  ``tools/test.py``) must fit the model (:mod:`mmbackbones.loading`).
* :class:`RandomStateHook`: each checkpoint carries the random state of the process that
  wrote it, and ``--resume`` restores it, so an interrupted and resumed run trains the
  iterations after the checkpoint exactly as an uninterrupted run with the same seed
  (``tests/test_resume.py``). Validation runs between checkpoints leave the random
  state as they found it, so they do not shift the training's random stream either.

Configs run under mmdet's or mmseg's own tools get them with
``custom_hooks = [dict(type='mmbackbones.StrictLoadHook'), dict(type='mmbackbones.RandomStateHook')]``.
"""  # noqa: E501

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmbackbones.loading import check_checkpoint_fits
from mmbackbones.registry import HOOKS


@HOOKS.register_module()
class StrictLoadHook(Hook):
    """Refuse a checkpoint that does not fit the model, before mmengine loads it.

    mmengine loads checkpoints with ``strict=False``; this hook (``after_load_checkpoint``,
    which the runner calls before it loads the weights) loads what fits and raises
    :class:`~mmbackbones.loading.CheckpointMismatchError` naming the mismatches and the
    model the file probably is.

    Args:
        allow_partial (bool): Log the mismatches and let mmengine load what fits (the
            lenient mode of ``--allow-partial``). Default: False.

    Example:
        >>> from mmbackbones.registry import HOOKS
        >>> HOOKS.build(dict(type='mmbackbones.StrictLoadHook', allow_partial=True)).allow_partial
        True
    """

    # last among the hooks: others (EMA) may rewrite the checkpoint before it is loaded
    priority = 'LOWEST'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = runner.cfg.get('load_from') if runner.cfg else None
        backbone = ((runner.cfg or {}).get('model') or {}).get('backbone') or {}
        desc = ''
        if 'type' in backbone:
            arch = f'arch={backbone["arch"]!r}' if 'arch' in backbone else ''
            desc = f' (backbone {backbone["type"]}({arch}))'
        check_checkpoint_fits(
            model,
            checkpoint,
            f'checkpoint {source!r}' if source else 'the checkpoint',
            desc,
            self.allow_partial,
        )


def random_state() -> dict[str, Any]:
    """The random state of this process: Python, NumPy, torch (and CUDA once used)."""
    state = dict(
        python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state()
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Restore what :func:`random_state` returned."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random state in each checkpoint; restore it when training resumes.

    mmengine re-seeds a resumed run from ``randomness.seed``, so the random stream after a
    resume (R-CNN RoI sampling, dropout) differs from the uninterrupted run's. This hook
    writes ``checkpoint['random_state']`` and, when a run resumed from such a checkpoint,
    restores it before the first iteration. The data order and augmentations already
    repeat: the sampler is seeded, and mmengine replays the loader up to the checkpoint.

    It also makes validation neutral: the random state is saved before and restored after
    each validation run, so validating (e.g. at the checkpoint iteration, which a resumed
    run does not repeat) cannot shift the training's random stream.

    Multi-process runs keep mmengine's behaviour (one state per process would be needed).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._resumed: dict[str, Any] | None = None
        self._before_val: dict[str, Any] | None = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        # a checkpoint saved during validation (save_best) gets the training's state
        checkpoint['random_state'] = self._before_val or random_state()

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        self._resumed = checkpoint.get('random_state')

    def before_train(self, runner: Any) -> None:
        state, self._resumed = self._resumed, None
        if state is None or runner.iter == 0:  # not a resume (load_from keeps iter 0)
            return
        if runner.world_size > 1:
            runner.logger.info('RandomStateHook: multi-process run, random state not restored')
            return
        set_random_state(state)
        runner.logger.info(f'restored the random state saved at iteration {runner.iter}')

    def before_val(self, runner: Any) -> None:
        self._before_val = random_state()

    def after_val(self, runner: Any) -> None:
        if self._before_val is not None:
            set_random_state(self._before_val)
            self._before_val = None

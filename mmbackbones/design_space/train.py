"""Brief training of sampled models (the sweep's inner loop), local pool or Ray."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_data

DEFAULT_CFG = dict(
    iters=200, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, seed=0,
    data_root='data/cifar10', n_train=5000, n_test=1000, device='cpu', threads=1,
)  # fmt: skip

_DATA_CACHE: dict[tuple, tuple] = {}


def _data(cfg: dict) -> tuple:
    key = (cfg['data_root'], cfg['n_train'], cfg['n_test'])
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_data(cfg['data_root'], cfg['n_train'], cfg['n_test'])
    return _DATA_CACHE[key]


def sgd_train(
    model: Any,
    xtr: Any,
    ytr: Any,
    iters: int,
    lr: float,
    batch_size: int,
    seed: int,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    device: Any = 'cpu',
) -> float:
    """The brief-training loop shared by the sweep and NetAdapt: ``iters`` steps of
    Nesterov SGD with a cosine schedule on random batches (random horizontal flips),
    drawn from a generator seeded with ``seed``. Leaves the model in eval mode.

    Args:
        model (nn.Module): The classifier (trained in place).
        xtr (Tensor): Training images ``(N, 3, H, W)``.
        ytr (Tensor): Labels ``(N,)``.
        iters (int): SGD steps (0: none, the loss is NaN).
        lr (float): Peak learning rate.
        batch_size (int): Images per step.
        seed (int): Seeds the batches, the flips and ``torch``'s global generator
            (dropout, stochastic depth).
        momentum (float): Default: 0.9.
        weight_decay (float): Default: 5e-4.
        device: Where to train. Default: 'cpu'.

    Returns:
        float: The last step's loss.
    """
    import torch
    import torch.nn.functional as F

    if iters <= 0:
        model.eval()
        return float('nan')
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    model.train()
    loss = torch.zeros(())
    for _ in range(iters):
        j = torch.randint(0, len(xtr), (batch_size,), generator=gen)
        x, y = xtr[j].to(device), ytr[j].to(device)
        if torch.rand((), generator=gen) < 0.5:  # horizontal flip
            x = x.flip(3)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return float(loss.detach())


def train_record(record: dict[str, Any], cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one sampled model for ``cfg['iters']`` SGD steps (:func:`sgd_train`) and
    return the record with ``error`` (top-1 %, test split), ``dataset``, ``iters``,
    ``train_time_s``."""
    import torch

    from .sampling import build_classifier

    cfg = {**DEFAULT_CFG, **(cfg or {})}
    torch.set_num_threads(int(cfg['threads']))
    name, xtr, ytr, xte, yte = _data(cfg)
    dev = torch.device(cfg['device'])
    torch.manual_seed(cfg['seed'])
    model = build_classifier(record).to(dev)
    iters = int(cfg['iters'])
    t0 = time.time()
    loss = sgd_train(
        model, torch.from_numpy(xtr), torch.from_numpy(ytr), iters, cfg['lr'],
        cfg['batch_size'], cfg['seed'], cfg['momentum'], cfg['weight_decay'], dev,
    )  # fmt: skip
    wrong = 0
    with torch.no_grad():
        for i in range(0, len(xte), 500):
            x = torch.from_numpy(xte[i : i + 500]).to(dev)
            pred = model(x).argmax(1).cpu().numpy()
            wrong += int((pred != yte[i : i + 500]).sum())
    err = 100.0 * wrong / len(xte)
    if iters > 0 and not np.isfinite(loss):
        err = 100.0 * (1 - 1 / 10)  # diverged: chance error
    return {
        **record,
        'error': err,
        'dataset': name,
        'iters': iters,
        'train_time_s': round(time.time() - t0, 3),
    }


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def read_jsonl(
    path: str | Path,
    fields: Iterable[str] = (),
    numbers: Iterable[str] = (),
    missing_ok: bool = False,
) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (one JSON object per line; blank lines skipped).

    Args:
        path: the file.
        fields: keys every record must have.
        numbers: keys every record must have as a finite number.
        missing_ok: a missing or empty file is ``[]`` (a sweep's output before it starts);
            otherwise it is an error.

    Raises:
        InputFileError: ``path:line: problem`` for a missing or empty file, a line that is
            not a JSON object, or a record without one of ``fields`` / ``numbers``.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / 'a.jsonl'
        >>> _ = f.write_text('{"id": "x", "error": 31.5}\\n\\n')
        >>> read_jsonl(f, numbers=['error'])
        [{'id': 'x', 'error': 31.5}]
    """
    from mmbackbones.utils.errors import InputFileError, file_line

    p = Path(path)
    if not p.is_file():
        if missing_ok and not p.exists():
            return []
        what = 'is a directory' if p.is_dir() else 'does not exist'
        raise InputFileError(f'{p}: {what}; expected a JSON-lines file')
    records = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputFileError(
                file_line(p, i, f'not JSON ({e.msg}, column {e.colno})')
            ) from None
        if not isinstance(rec, dict):
            raise InputFileError(file_line(p, i, f'a {type(rec).__name__}, not a JSON object'))
        for key in fields:
            if key not in rec:
                raise InputFileError(file_line(p, i, f'record has no field {key!r}'))
        for key in numbers:
            if not _is_number(rec.get(key)):
                got = 'no such field' if key not in rec else f'got {rec[key]!r}'
                raise InputFileError(
                    file_line(p, i, f'field {key!r} must be a finite number ({got})')
                )
        records.append(rec)
    if not records and not missing_ok:
        raise InputFileError(f'{p}: no records (an empty file); expected one JSON object a line')
    return records


def run_sweep(
    records: Iterable[dict[str, Any]],
    out: str | Path,
    cfg: dict[str, Any] | None = None,
    workers: int = 1,
    launcher: str = 'local',
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train every record not already in ``out`` (matched by ``id``), appending results
    to ``out`` as they finish (so an interrupted sweep resumes). Returns all results."""
    from tqdm import tqdm

    cfg = {**DEFAULT_CFG, **(cfg or {})}
    out = Path(out)
    done = read_jsonl(out, fields=['id'], numbers=['error'], missing_ok=True)  # results
    have = {r['id'] for r in done}
    todo = [r for r in records if r['id'] not in have]
    log(
        f'{len(done)} already trained in {out}, {len(todo)} to train '
        f'({launcher}, {workers} workers)'
    )
    dataset = _data(cfg)[0] if launcher == 'local' and workers <= 1 else None
    if dataset is None:
        from .data import _load_cifar

        dataset = 'cifar10' if _load_cifar(Path(cfg['data_root'])) is not None else 'generated'
    if dataset == 'generated':
        log(
            f'CIFAR-10 not found under {cfg["data_root"]}: training on the built-in generated '
            f'set ({cfg["n_train"]} train / {cfg["n_test"]} test 32x32 images, 10 classes)'
        )
    else:
        log(f'training on CIFAR-10 from {cfg["data_root"]}')
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), disable=not progress, desc='train', unit='model')
    results = list(done)
    with out.open('a') as fh:

        def emit(r: dict) -> None:
            fh.write(json.dumps(r) + '\n')
            fh.flush()
            results.append(r)
            bar.update(1)
            bar.set_postfix(error=f'{r["error"]:.1f}')

        if launcher == 'ray':
            import ray

            started = not ray.is_initialized()
            if started:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            try:
                fn = ray.remote(num_cpus=1)(train_record)
                pending = [fn.remote(r, cfg) for r in todo]
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1)
                    emit(ray.get(ready[0]))
            finally:
                if started:
                    ray.shutdown()
        elif launcher == 'local' and workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, mp_context=mp.get_context('spawn')) as ex:
                for f in as_completed([ex.submit(train_record, r, cfg) for r in todo]):
                    emit(f.result())
        elif launcher == 'local':
            for r in todo:
                emit(train_record(r, cfg))
        else:
            raise ValueError(f"launcher must be 'local' or 'ray', got {launcher!r}")
    bar.close()
    return results

"""Reports of a benchmark: the markdown table, the CSV, the latency-vs-FLOPs plot and the
header saying what the numbers depend on (machine, versions, settings)."""

from __future__ import annotations

import csv
import datetime
import os
import platform
from collections.abc import Sequence

import torch

from .errors import BenchmarkError
from .session import Row, best_paths, int8_speedups


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform``)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def machine_info(device: str = 'cpu') -> dict[str, str]:
    """What the numbers depend on: hardware, software versions, load."""
    import importlib.metadata as md

    info = {
        'machine': f'{cpu_model()}, {os.cpu_count()} logical CPUs',
        'torch': torch.__version__,
    }
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(device)
    versions = []
    for pkg in ('torchvision', 'timm', 'mmdet', 'mmsegmentation'):
        try:
            versions.append(f'{pkg} {md.version(pkg)}')
        except md.PackageNotFoundError:
            pass
    info['peers'] = ', '.join(versions)
    if hasattr(os, 'getloadavg'):
        info['load average'] = ', '.join(f'{v:.2f}' for v in os.getloadavg())
    return info


def _fmt(value: float | None, digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def _session_key(r: Row) -> tuple:
    return (r.mode, r.batch, r.threads, r.height, r.width)


def to_markdown(rows: Sequence[Row], meta: dict[str, str]) -> str:
    """A markdown report: a header of ``meta`` and one table per session.

    Table columns: arch, implementation, form, params (M), GFLOPs (multiply-adds at the
    input size, batch 1), median / IQR / min latency (ms), throughput (img/s), peak
    memory (MB), and the ratio ours / peer (median of per-round ratios; on our row: ours /
    the fastest peer of the same form, named).
    """
    lines = ['# Latency benchmark', '']
    lines += [f'- **{k}**: {v}' for k, v in meta.items()]
    lines.append('')
    sessions: dict[tuple, list[Row]] = {}
    for r in rows:
        sessions.setdefault(_session_key(r), []).append(r)
    for (mode, batch, threads, h, w), group in sessions.items():
        lines += [
            f'## mode {mode}, batch {batch}, {threads} thread{"s" if threads > 1 else ""}, '
            f'input {h}x{w}, {len(group[0].times)} rounds',
            '',
            '| arch | implementation | form | params (M) | GFLOPs | median (ms) | IQR (ms) '
            '| min (ms) | img/s | peak mem (MB) | ours / peer |',
            '|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|',
        ]
        for r in group:
            if r.ours and r.ratio_fastest is not None:
                ratio = f'**{r.ratio_fastest:.2f}** vs fastest ({r.fastest_peer})'
            elif r.ratio is not None:
                ratio = f'{r.ratio:.2f}'
            else:
                ratio = ''
            impl = f'**{r.impl}**' if r.ours else r.impl
            if r.note or r.engine:
                impl += f' ({r.engine or r.note})'
            lines.append(
                f'| {r.arch} | {impl} | {r.form} | {_fmt(r.params_m)} | {_fmt(r.gflops, 3)} '
                f'| {r.median_ms:.1f} | {r.p75_ms - r.p25_ms:.1f} | {r.min_ms:.1f} '
                f'| {r.throughput:.1f} | {_fmt(r.peak_mem_mb, 1)} | {ratio} |'
            )
        lines.append('')
    lines += _best_path_table(rows) + _int8_table(rows)
    return '\n'.join(lines)


def _best_path_table(rows: Sequence[Row]) -> list[str]:
    """Our fastest path per architecture against the peers' fastest, when there are
    several paths (PyTorch and runtimes) to choose from."""
    best = [b for b in best_paths(rows) if len({r.path for r in rows if r.arch == b.arch}) > 1]
    if not best:
        return []
    lines = [
        '## Fastest path: ours against the fastest peer, any runtime, per precision',
        '',
        '| arch | form | precision | session | ours: fastest path | ms '
        '| peer: fastest path | ms | ours / peer |',
        '|---|---|---|---|---|--:|---|--:|--:|',
    ]
    for b in best:
        o, p = b.ours, b.peer
        session = f'{o.mode}, batch {o.batch}, {o.threads} thr, {o.height}x{o.width}'
        lines.append(
            f'| {b.arch} | {b.form} | {b.precision} | {session} | {o.path} | {o.median_ms:.1f} '
            f'| {p.impl} ({p.path}) | {p.median_ms:.1f} | **{b.ratio:.2f}** |'
        )
    return lines + ['']


def _int8_table(rows: Sequence[Row]) -> list[str]:
    """INT8 against FP32 in the same runtime, per model."""
    pairs = int8_speedups(rows)
    if not pairs:
        return []
    lines = [
        '## INT8 speed-up: FP32 / INT8 in the same runtime (above 1: INT8 faster)',
        '',
        '| arch | implementation | form | runtime | FP32 ms | INT8 ms | speed-up |',
        '|---|---|---|---|--:|--:|--:|',
    ]
    for fp32, int8, ratio in pairs:
        runtime = int8.engine.split(' ')[0]
        lines.append(
            f'| {int8.arch} | {int8.impl} | {int8.form} | {runtime} | {fp32.median_ms:.1f} '
            f'| {int8.median_ms:.1f} | **{ratio:.2f}** |'
        )
    return lines + ['']


CSV_COLUMNS = (
    'arch',
    'impl',
    'form',
    'mode',
    'batch',
    'threads',
    'height',
    'width',
    'rounds',
    'params_m',
    'gflops',
    'median_ms',
    'p25_ms',
    'p75_ms',
    'min_ms',
    'throughput_img_s',
    'peak_mem_mb',
    'ratio_ours_over_peer',
    'ratio_ours_over_fastest_peer',
    'fastest_peer',
    'note',
    'engine',
)


def write_csv(rows: Sequence[Row], path: str) -> None:
    """One line per row, columns :data:`CSV_COLUMNS`; empty cells where not applicable."""

    def num(v: float | None, digits: int = 4) -> str:
        return '' if v is None else f'{v:.{digits}f}'

    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(
                [
                    r.arch,
                    r.impl,
                    r.form,
                    r.mode,
                    r.batch,
                    r.threads,
                    r.height,
                    r.width,
                    len(r.times),
                    num(r.params_m),
                    num(r.gflops),
                    num(r.median_ms, 3),
                    num(r.p25_ms, 3),
                    num(r.p75_ms, 3),
                    num(r.min_ms, 3),
                    num(r.throughput, 3),
                    num(r.peak_mem_mb, 3),
                    num(r.ratio),
                    num(r.ratio_fastest),
                    r.fastest_peer,
                    r.note,
                    r.engine,
                ]
            )


def write_reports(rows: Sequence[Row], meta: dict[str, str], out_dir: str) -> list[str]:
    """Write ``benchmark.md`` and ``benchmark.csv`` into ``out_dir``; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    md_path = os.path.join(out_dir, 'benchmark.md')
    csv_path = os.path.join(out_dir, 'benchmark.csv')
    with open(md_path, 'w') as f:
        f.write(to_markdown(rows, meta))
    write_csv(rows, csv_path)
    return [md_path, csv_path]


def _series(r: Row) -> str:
    """Plot series of one of our rows: the family, with RegNetX/Y and ReXNet-lite apart."""
    if r.family == 'RegNet':
        return 'RegNetY' if 'regnety' in r.arch else 'RegNetX'
    if r.family == 'ReXNet' and 'lite' in r.arch:
        return 'ReXNet-lite'
    return r.family


def _point_label(r: Row) -> str:
    """A short point label: the preset without the family (``'regnetx_800mf'`` -> 800mf)."""
    label = r.arch.split(' ', 1)[-1]
    return label.split('_', 1)[-1] if label.startswith('regnet') else label


def plot_latency_vs_flops(
    rows: Sequence[Row], path: str, title: str = '', clock: str = 'wall'
) -> str:
    """Median latency against GFLOPs: our rows as one line per family, peers as crosses.

    Uses the first session's rows only (one mode / batch / thread count per plot).
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.gflops and not r.engine]  # PyTorch rows
    if not rows:
        raise BenchmarkError('nothing to plot: no row with a FLOPs count')
    first = _session_key(rows[0])
    rows = [r for r in rows if _session_key(r) == first]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    series: dict[str, list[Row]] = {}
    for r in rows:
        if r.ours and r.form == 'classifier':
            series.setdefault(_series(r), []).append(r)
    for name, group in series.items():
        group = sorted(group, key=lambda r: r.gflops)
        ax.plot([r.gflops for r in group], [r.median_ms for r in group], 'o-', ms=4, label=name)
        for r in group:
            ax.annotate(
                _point_label(r),
                (r.gflops, r.median_ms),
                fontsize=6,
                alpha=0.7,
                xytext=(3, 2),
                textcoords='offset points',
            )
    peers = [r for r in rows if not r.ours and r.form == 'classifier']
    if peers:
        ax.plot(
            [r.gflops for r in peers],
            [r.median_ms for r in peers],
            'kx',
            ms=5,
            label='peers (timm / torchvision)',
        )
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('GFLOPs (multiply-adds, classifier)')
    ax.set_ylabel('median latency (ms)' if clock == 'wall' else 'median CPU time (ms)')
    mode, batch, threads, h, w = first
    default = (
        f'mmbackbones presets: {mode}, batch {batch}, {threads} thread(s), {h}x{w}, '
        f'{"wall clock" if clock == "wall" else "process CPU time"}'
    )
    ax.set_title(title or default, fontsize=9)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report_meta(
    device: str,
    shape: tuple[int, int],
    repeats: int,
    warmup: int,
    command: str = '',
    clock: str = 'wall',
    compiled: str = 'none',
) -> dict[str, str]:
    """The markdown header: machine, versions, settings and how to read the table."""
    meta = machine_info(device)
    meta['device'] = device
    meta['input'] = f'{shape[0]}x{shape[1]}'
    meta['rounds'] = f'{repeats} timed after {warmup} warm-up, round-robin'
    meta['clock'] = 'wall (latency)' if clock == 'wall' else 'cpu (process CPU time, not latency)'
    meta['date'] = datetime.date.today().isoformat()
    if compiled != 'none':
        meta['compile'] = (
            'torch.compile (inductor, freezing) for '
            + ('ours only; peers eager' if compiled == 'ours' else 'ours and the peers')
            + '; compilation in warm-up, not timed'
        )
    if command:
        meta['command'] = f'`{command}`'
    meta['reading'] = (
        'ours / peer < 1 means ours is faster; each ratio is the median of per-round ratios '
        '(candidates interleaved in one process); classifier rows compare whole ImageNet '
        'classifiers (timm / torchvision), backbone rows compare backbones alone (mmdet / '
        'mmseg); deploy = ours fused, peers as is; a runtime row (onnxruntime / openvino, '
        'fp32 / bf16 / int8) is that model exported to ONNX (INT8: quantized by the '
        "runtime's own tool) and compared with the peers run the same way"
    )
    return meta

"""Latency benchmark: our backbones against peer implementations, side by side.

What is measured (``tools/benchmark.py`` is the command line):

* **Candidates.** Our presets, in the paper's classifier form
  (:class:`~mmbackbones.models.ImageClassifier`) or backbone-only, the peers that implement
  the same architecture (:data:`COMPARISONS`: timm and torchvision classifiers, mmdet's and
  mmseg's own backbones), and whole detectors / segmentors built from our configs.
  Peers are built with random weights, nothing is downloaded.
* **Modes.** ``'train'``: ``model.train()``, forward + backward (the loss is the sum of the
  outputs' means), unfused. ``'infer'``: ``model.eval()`` under ``no_grad``. ``'deploy'``:
  like ``'infer'``, but *our* models are first folded by ``mmbackbones.deploy.fuse``;
  peers stay unfused (the question it answers: ours deployed vs the fastest peer as is).
  ``compile='ours'`` (infer/deploy): ours also go through ``torch.compile`` with inductor
  freezing (:func:`mmbackbones.deploy.compile_for_inference`); ``compile='all'``: the
  peers too (``torch.compile`` with freezing, no fusion of ours applied to them), which is
  the like-for-like comparison of compiled models. Compilation happens in the first
  warm-up round and is not timed; compiled candidates get no peak-memory figure.
* **Fairness on a noisy machine.** All candidates of one session live in one process;
  the candidates compared with each other (same architecture and form) are timed
  *interleaved*: every round runs each of them once, in a fresh random order, so a burst
  of machine noise hits all of them alike and none always follows the same neighbour. A
  ratio "ours / peer" is the median over rounds of the per-round ratios, not the ratio
  of two medians.
* **Runtimes.** With runtime candidates (:mod:`.runtimes`), ours and each peer are also
  exported to ONNX and run in ONNX Runtime and/or OpenVINO, in FP32 (OpenVINO also in its
  bf16 mode) and INT8 (quantized by the runtime's own tool, calibrated on built-in
  images), interleaved with the PyTorch candidates of the same architecture. The report
  then adds our fastest path against the peers' fastest (:func:`best_paths`) and the
  INT8 speed-ups (:func:`int8_speedups`).
* **Statistics.** Median latency, the inter-quartile range and the minimum over the rounds
  (after warm-up), throughput ``batch / median``, and the peak memory of one step: on CUDA
  ``torch.cuda.max_memory_allocated`` above the level before the step; on CPU the peak of
  live tensor storage that the step allocates (activations, tensors saved for backward,
  gradients, temporaries; weights and input excluded), tracked per operator with a
  ``TorchDispatchMode`` in a separate, untimed step (no figure, with a warning, where
  that accounting fails its self-test: :func:`.memory.cpu_tracking_problem`).

The modules: :mod:`.peers` (the peers table, our presets, the candidates), :mod:`.runtimes`
(the same candidates exported to ONNX Runtime / OpenVINO), :mod:`.wholemodels` (whole
detectors / segmentors end to end against torchvision's), :mod:`.session`
(steps, :func:`run_session`, rows and ratios), :mod:`.timing` (the timing harness and the
quantile definition, shared with NetAdapt), :mod:`.memory` (peak memory), :mod:`.report`
(markdown, CSV, plot, machine information) and :mod:`.errors` (:class:`BenchmarkError`).

Example:
    >>> from mmbackbones import benchmark as bm
    >>> cands = bm.candidates_for('MobileNetV3', 'small', peers=['torchvision'])
    >>> [(c.impl, c.form) for c in cands]
    [('mmbackbones', 'classifier'), ('torchvision mobilenet_v3_small', 'classifier')]
"""

from .errors import BenchmarkError
from .memory import cpu_tracking_problem, peak_memory
from .peers import (
    COMPARISONS,
    PEER_SOURCES,
    Candidate,
    Comparison,
    Peer,
    all_presets,
    arch_label,
    build_ours,
    build_peer,
    candidates_for,
    config_candidate,
    config_model,
    validate_peers,
)
from .report import (
    CSV_COLUMNS,
    cpu_model,
    machine_info,
    plot_latency_vs_flops,
    report_meta,
    to_markdown,
    write_csv,
    write_reports,
)
from .runtimes import (
    DEFAULT_CALIBRATION,
    ENGINE_PRECISIONS,
    ENGINE_RUNTIMES,
    EngineFactory,
    EngineSpec,
    engine_specs,
    with_engines,
)
from .session import (
    COMPILE_CHOICES,
    MODES,
    BestPath,
    Row,
    attach_ratios,
    best_paths,
    compile_model,
    deploy_fuse,
    int8_speedups,
    make_step,
    round_ratio,
    run_session,
)
from .timing import CLOCKS, median, quantile, time_module, time_modules, time_round_robin

__all__ = [
    'CLOCKS',
    'COMPARISONS',
    'COMPILE_CHOICES',
    'CSV_COLUMNS',
    'DEFAULT_CALIBRATION',
    'ENGINE_PRECISIONS',
    'ENGINE_RUNTIMES',
    'MODES',
    'PEER_SOURCES',
    'BenchmarkError',
    'BestPath',
    'Candidate',
    'Comparison',
    'EngineFactory',
    'EngineSpec',
    'Peer',
    'Row',
    'all_presets',
    'arch_label',
    'attach_ratios',
    'best_paths',
    'build_ours',
    'build_peer',
    'candidates_for',
    'compile_model',
    'config_candidate',
    'config_model',
    'cpu_model',
    'cpu_tracking_problem',
    'deploy_fuse',
    'engine_specs',
    'int8_speedups',
    'machine_info',
    'make_step',
    'median',
    'peak_memory',
    'plot_latency_vs_flops',
    'quantile',
    'report_meta',
    'round_ratio',
    'run_session',
    'time_module',
    'time_modules',
    'time_round_robin',
    'to_markdown',
    'validate_peers',
    'with_engines',
    'write_csv',
    'write_reports',
]

"""Export a whole detector / segmentor, or a backbone (+ neck), to ONNX and check it with
onnxruntime.

    python tools/export_onnx.py configs/mobilenetv3-large_ssdlite.py --checkpoint CKPT \
        --shape 320 320 -o ssdlite.onnx
    python tools/export_onnx.py configs/rexnet_maskrcnn_fpn.py --checkpoint CKPT \
        --shape 800 1216 -o maskrcnn.onnx
    python tools/export_onnx.py configs/rexnet_lraspp_cityscapes.py --checkpoint CKPT \
        --shape 1024 2048 -o lraspp.onnx
    python tools/export_onnx.py configs/rexnet_fasterrcnn_fpn.py --part neck --shape 800 1216 \
        -o fpn.onnx
    python tools/export_onnx.py --backbone ReXNet --arch 1.0 --shape 224 224 -o rexnet.onnx --fuse

What is exported: with a config, by default the *whole* model (``--part whole``,
:func:`mmbackbones.deploy.export_model`): the data preprocessor's normalisation,
backbone, neck, heads and post-processing (detectors: box decoding and NMS as ONNX
``NonMaxSuppression``, Mask R-CNN's mask head on ``RoiAlign``; segmentors: the resize of
the logits to the input size), batch 1 at ``--shape``. Run it with
``mmbackbones.deploy.Runtime`` or ``tools/test.py CONFIG FILE --backend
onnxruntime|openvino``, which also do what stays outside the graph (the tool prints
it). ``--part neck`` / ``--part backbone`` (``--backbone-only``) export the backbone
followed by its neck (outputs ``neck0..neckN``) or alone (``feat*``); ``--backbone``
exports one of our backbones by name (outputs ``feat0..featN``, the taps of
``--out-indices``).

``--fuse`` exports the deploy form (``mmbackbones.deploy.fuse``: BatchNorm folded into the
convolutions). The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``), which works offline without ``onnxscript``.

After exporting, the graph is checked (``onnx.checker``) and run with onnxruntime on a
synthetic input against PyTorch: backbones and necks by the largest absolute difference
(exit status 1 above ``--atol``), whole detectors by matching their detections (exit
status 1 unless 99% match with boxes within 1e-3 relative), segmentors by the logits
(1e-3 of their scale). Latency of PyTorch and onnxruntime (median of ``--runs`` runs,
batch 1, the same number of threads) is printed side by side.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import sys
import time
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmbackbones.utils.cli import ToolParser, at_least, entry_point  # noqa: E402

MIN_OPSET = 14
MIN_WHOLE_OPSET = 16  # RoiAlign's half_pixel mode (mmcv aligned=True)
PARTS = ('whole', 'neck', 'backbone')
#: whole models: the share of detections that must match, and the relative tolerance
WHOLE_MATCH_RATE, WHOLE_RTOL = 0.99, 1e-3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet/mmseg config (or use --backbone)')
    parser.add_argument('--backbone', help='one of our backbone classes, e.g. ReXNet')
    parser.add_argument('--arch', help='preset name of --backbone (default: its default)')
    parser.add_argument(
        '--out-indices', type=int, nargs='+', help='with --backbone: taps to export'
    )
    parser.add_argument(
        '--part',
        choices=PARTS,
        help='with a config: the whole model (default), the backbone + neck, or the backbone',
    )
    parser.add_argument(
        '--backbone-only', action='store_true', help='with a config: same as --part backbone'
    )
    parser.add_argument(
        '--builtin-data',
        action='store_true',
        help='with a config: the model as tools/train.py --builtin-data builds it (class '
        'count, narrowed heads), to export a checkpoint trained that way',
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--shape', type=int, nargs=2, required=True, metavar=('H', 'W'))
    parser.add_argument('-o', '--out', required=True, help='output .onnx file')
    parser.add_argument('--opset', type=int, default=17, help=f'ONNX opset (>= {MIN_OPSET})')
    parser.add_argument('--fuse', action='store_true', help='export the BN-fused deploy form')
    parser.add_argument(
        '--atol',
        type=at_least(0.0, float),
        default=1e-4,
        help='max abs difference allowed (default 1e-4)',
    )
    parser.add_argument('--runs', type=int, default=10, help='timed runs per engine')
    parser.add_argument('--seed', type=int, default=0, help='seed of weights and input')
    parser.add_argument(
        '--checkpoint',
        help='weights to load (a backbone state dict, or a detector/segmentor checkpoint '
        'whose backbone./neck. keys are used); default: random weights (for a backbone or '
        'neck with random BatchNorm statistics, mmbackbones.deploy.randomize_bn)',
    )
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.backbone):
        parser.error('give either a CONFIG or --backbone NAME [--arch ARCH]')
    if args.config and not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    if args.config and (args.arch or args.out_indices):
        parser.error('--arch/--out-indices apply to --backbone; edit the config instead')
    if args.backbone and (args.part or args.builtin_data or args.cfg_options):
        parser.error('--part/--builtin-data/--cfg-options apply to a CONFIG')
    if args.backbone_only:
        if args.part not in (None, 'backbone'):
            parser.error(f'--backbone-only contradicts --part {args.part}')
        args.part = 'backbone'
    if args.config and args.part is None:
        args.part = 'whole'
    if args.opset < MIN_OPSET:
        parser.error(f'--opset must be >= {MIN_OPSET}, got {args.opset}')
    if args.part == 'whole' and args.opset < MIN_WHOLE_OPSET:
        parser.error(
            f'--opset must be >= {MIN_WHOLE_OPSET} for a whole model (RoiAlign half_pixel), '
            f'got {args.opset}'
        )
    if min(args.shape) < 1 or args.runs < 1:
        parser.error('--shape and --runs must be positive')
    args.error = parser.error
    return args


def export(model: nn.Module, x: torch.Tensor, path: str, names: list[str], opset: int) -> None:
    """``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # its deprecation notice and tracer warnings
        torch.onnx.export(
            model,
            (x,),
            path,
            input_names=['input'],
            output_names=names,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def load_checkpoint(model: nn.Module, path: str, error) -> None:
    """Load ``path`` into ``model`` (a backbone or ``BackboneNeck``); every key of the
    model must be found, under its own name or below a ``backbone.`` prefix."""
    from mmbackbones.checkpoint import load_weights

    try:
        state = load_weights(path)
    except ValueError as e:
        error(str(e))
    state = state.get('state_dict', state)
    own = model.state_dict()
    if not any(k in state for k in own):  # a detector checkpoint for a lone backbone
        state = {k[len('backbone.') :]: v for k, v in state.items() if k.startswith('backbone.')}
    missing = [k for k in own if k not in state]
    if missing:
        error(f"{path} lacks {len(missing)} of the model's weights, e.g. {missing[:3]}")
    model.load_state_dict({k: state[k] for k in own})


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def load_cfg(args: argparse.Namespace):
    """The config with ``--builtin-data`` and ``--cfg-options`` applied."""
    from mmbackbones.apis import load_config
    from mmbackbones.datasets.builtin import apply_builtin_data

    cfg = load_config(args.config)
    if args.builtin_data:
        apply_builtin_data(cfg)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def export_whole(args: argparse.Namespace) -> int:
    """``--part whole``: :func:`mmbackbones.deploy.export_model`, its check, latency."""
    import onnxruntime as ort

    from mmbackbones.deploy.export import dummy_image, export_model, graph_inputs

    if not args.checkpoint:
        print('note: no --checkpoint: random weights (a smoke test of the export only)')
    res = export_model(
        load_cfg(args), args.checkpoint, tuple(args.shape), args.out, opset=args.opset,
        fuse=args.fuse,
    )  # fmt: skip
    meta, check = res.meta, res.check
    h, w = meta['shape']
    print(
        f'exported the whole {meta["model"]} ({meta["graph"]}{", fused" if args.fuse else ""}) '
        f'of {args.config} @ {h}x{w} to {args.out} (opset {args.opset}, TorchScript '
        f'exporter, {osp.getsize(args.out) / 1e6:.1f} MB)'
    )
    print(f'  inputs {meta["inputs"]}, outputs {meta["outputs"]}')
    print(f'  outside the graph (mmbackbones.deploy.Runtime): {meta["outside"]}')
    if meta['task'] == 'detection':
        ok = (
            check['matched'] >= WHOLE_MATCH_RATE * max(check['ref'], check['got'])
            and check['max_box_rel'] <= WHOLE_RTOL
        )
        print(
            f'onnxruntime vs PyTorch on a synthetic image: {check["got"]} vs {check["ref"]} '
            f'detections, {check["matched"]} matched (same label, boxes within '
            f'{WHOLE_RTOL:g} relative: max {check["max_box_rel"]:.3g}; max score diff '
            f'{check["max_score_diff"]:.3g}) ({"OK" if ok else "FAILED"})'
        )
    else:
        ok = check['max_abs_diff'] <= WHOLE_RTOL * max(check['logit_scale'], 1.0)
        print(
            f'onnxruntime vs PyTorch on a synthetic image: max abs logit diff '
            f'{check["max_abs_diff"]:.3g} (logits up to {check["logit_scale"]:.3g}), argmax '
            f'agreement {check["pixel_agreement"]:.6f} ({"OK" if ok else "FAILED"})'
        )
    graph = res.graph
    inputs = graph_inputs(graph, dummy_image((h, w)), (h, w))
    threads = torch.get_num_threads()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(args.out, opts, providers=['CPUExecutionProvider'])
    feed = {n: x.numpy() for n, x in zip(meta['inputs'], inputs)}
    with torch.inference_mode():
        t_torch = median_ms(lambda: graph(*inputs), args.runs)
    t_ort = median_ms(lambda: sess.run(None, feed), args.runs)
    print(
        f'latency (whole model, batch 1, {threads} thread(s), median of {args.runs}): '
        f'PyTorch {t_torch:.2f} ms, onnxruntime {t_ort:.2f} ms'
    )
    return 0 if ok else 1


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.part == 'whole':
        return export_whole(args)
    import onnx
    import onnxruntime as ort

    from mmbackbones.deploy import build_backbone_or_config, fuse, randomize_bn

    torch.manual_seed(args.seed)
    try:
        model = build_backbone_or_config(
            config=load_cfg(args) if args.config else None,
            backbone=args.backbone,
            arch=args.arch,
            out_indices=args.out_indices,
            part=args.part or 'neck',
        )
    except ValueError as e:
        args.error(str(e))
    h, w = args.shape
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, args.error)
    else:
        randomize_bn(model, args.seed)
    if args.fuse:
        model = fuse(model, inplace=True)
    model.eval()
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(args.seed))
    with torch.inference_mode():
        ref = model(x)
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    prefix = 'neck' if getattr(model, 'neck', None) is not None else 'feat'
    names = [f'{prefix}{i}' for i in range(len(ref))]

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    export(model, x, args.out, names, args.opset)
    onnx.checker.check_model(args.out)
    what = args.config or f'{args.backbone}({args.arch or "default"})'
    print(
        f'exported {what}{" (fused)" if args.fuse else ""} @ {h}x{w} to {args.out} '
        f'(opset {args.opset}, TorchScript exporter, {osp.getsize(args.out) / 1e6:.1f} MB)'
    )

    threads = torch.get_num_threads()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(args.out, opts, providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}
    outs = sess.run(names, feed)
    diffs = [float(np.abs(o - r.numpy()).max()) for o, r in zip(outs, ref)]
    for n, o, d in zip(names, outs, diffs):
        print(f'  {n}: {tuple(o.shape)}  max |value| {np.abs(o).max():.3g}, max abs diff {d:.3g}')
    max_diff = max(diffs)

    with torch.inference_mode():
        t_torch = median_ms(lambda: model(x), args.runs)
    t_ort = median_ms(lambda: sess.run(names, feed), args.runs)
    print(
        f'latency (batch 1, {threads} thread(s), median of {args.runs}): '
        f'PyTorch {t_torch:.2f} ms, onnxruntime {t_ort:.2f} ms'
    )
    ok = max_diff <= args.atol
    print(
        f'max abs diff onnxruntime vs PyTorch: {max_diff:.3g} ({"OK" if ok else "FAILED"}, '
        f'atol {args.atol:g})'
    )
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

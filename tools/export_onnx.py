"""Export a backbone (or a config's backbone + neck) to ONNX and check it with onnxruntime.

    python tools/export_onnx.py --backbone ReXNet --arch 1.0 --shape 224 224 -o rexnet.onnx --fuse
    python tools/export_onnx.py --backbone MobileNetV3 --arch large --shape 320 320 -o mbv3.onnx
    python tools/export_onnx.py configs/rexnet_fasterrcnn_fpn.py --shape 800 1216 -o fpn.onnx
    python tools/export_onnx.py configs/rexnet_lraspp_cityscapes.py --shape 512 1024 -o seg.onnx

What is exported: with ``--backbone`` the backbone alone (outputs ``feat0..featN``, the
taps of ``--out-indices``); with a config the model's backbone followed by its neck
(outputs ``neck0..neckN``; ``--backbone-only`` for the backbone's ``feat*``). Full
detectors/segmentors with pre- and post-processing (anchors, NMS, resizing) remain
mmdeploy's job: feed it the same config.

``--fuse`` exports the deploy form (``mmbackbones.deploy.fuse``: BatchNorm folded into the
convolutions). The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``), which works offline without ``onnxscript``.

After exporting, the graph is checked (``onnx.checker``) and run with onnxruntime on a
random input: the largest absolute difference to PyTorch over all outputs is printed and
the tool exits with status 1 if it exceeds ``--atol``. Latency of PyTorch and onnxruntime
(median of ``--runs`` runs, batch 1, the same number of threads) is printed side by side.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet/mmseg config (or use --backbone)')
    parser.add_argument('--backbone', help='one of our backbone classes, e.g. ReXNet')
    parser.add_argument('--arch', help='preset name of --backbone (default: its default)')
    parser.add_argument(
        '--out-indices', type=int, nargs='+', help='with --backbone: taps to export'
    )
    parser.add_argument(
        '--backbone-only', action='store_true', help='with a config: export the backbone alone'
    )
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
        'whose backbone./neck. keys are used); default: random weights with random '
        'BatchNorm statistics (mmbackbones.deploy.randomize_bn)',
    )
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.backbone):
        parser.error('give either a CONFIG or --backbone NAME [--arch ARCH]')
    if args.config and not osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    if args.config and (args.arch or args.out_indices):
        parser.error('--arch/--out-indices apply to --backbone; edit the config instead')
    if args.opset < MIN_OPSET:
        parser.error(f'--opset must be >= {MIN_OPSET}, got {args.opset}')
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


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import onnx
    import onnxruntime as ort

    from mmbackbones.deploy import build_backbone_or_config, fuse, randomize_bn

    torch.manual_seed(args.seed)
    try:
        model = build_backbone_or_config(
            config=args.config,
            backbone=args.backbone,
            arch=args.arch,
            out_indices=args.out_indices,
            part='backbone' if args.backbone_only else 'neck',
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

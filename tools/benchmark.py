"""Latency, throughput and peak memory of our backbones, side by side with peer
implementations of the same architectures (timm, torchvision, mmdet, mmseg).

    # every architecture that has peers, training step (forward + backward), batch 8
    python tools/benchmark.py --compare --mode train --batch 8 --threads 2 \\
        --out docs/benchmark/train
    # deployment: ours fused (mmbackbones.deploy.fuse) against the peers unfused
    python tools/benchmark.py --compare --mode deploy --batch 1 --threads 2 \\
        --out docs/benchmark/deploy
    # the SSDLite backbones at the SSDLite input size
    python tools/benchmark.py --backbone ReXNet MobileNetV3 EfficientNet --compare \\
        --mode deploy --batch 1 --threads 2 --input-size 320 --out docs/benchmark/deploy-320
    # the same, ours also compiled (fuse + torch.compile with inductor freezing); peers eager
    python tools/benchmark.py --compare --mode deploy --compile ours --batch 1 --threads 2 \
        --out docs/benchmark/deploy-compiled
    # one preset (with its peers), several modes, batch sizes and thread counts
    python tools/benchmark.py --backbone MobileNetV3 --arch small --compare \\
        --mode train infer --batch 1 8 --threads 1 2
    # all our presets, latency against FLOPs plot
    python tools/benchmark.py --all-presets --mode infer --plot docs/images/latency_vs_flops.png
    # a whole detector / segmentor from a config: a predict step and a training step
    python tools/benchmark.py configs/mobilenetv3-small_ssdlite.py --mode infer train \\
        --input-size 320 --batch 2
    # the deploy question: ours fused in PyTorch, and ours and the peers exported to
    # ONNX Runtime and OpenVINO, FP32 and INT8, all interleaved in one process
    python tools/benchmark.py --compare --peers timm torchvision --mode deploy --batch 1 \
        --threads 2 --runtime onnxruntime openvino --precision fp32 int8 \
        --out docs/benchmark/runtimes
    # a quick smoke run (3 rounds at 64x64)
    python tools/benchmark.py --backbone ReXNet --arch 1.0 --compare --fast

Candidates are timed round-robin in one process (every round runs each once), and a ratio
"ours / peer" is the median of the per-round ratios, so that machine noise hits all of
them alike. See ``mmbackbones/benchmark/`` for exactly what a step is in each mode.
"""

from __future__ import annotations

import argparse
import os.path as osp
import shlex
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmbackbones.utils.cli import ToolParser, entry_point  # noqa: E402

FAST = dict(repeats=3, warmup=1, size=64)
DEFAULT = dict(repeats=10, warmup=2, size=224)


def parse_args(
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet/mmseg config of configs/')
    parser.add_argument(
        '--backbone', nargs='+', help='our backbone(s), e.g. MobileNetV3 (several: no --arch)'
    )
    parser.add_argument(
        '--arch',
        help='preset of --backbone (default: its presets with peers with --compare, else all)',
    )
    parser.add_argument('--all-presets', action='store_true', help='every preset of ours')
    parser.add_argument(
        '--whole',
        nargs='+',
        choices=['ssdlite', 'lraspp'],
        help="whole models end to end (one image in, predictions out): our config's model "
        "against torchvision's same architecture, in PyTorch and in --runtime's",
    )
    parser.add_argument(
        '--compare',
        action='store_true',
        help='add the peers of the same architecture; alone: every architecture with peers',
    )
    parser.add_argument(
        '--peers',
        nargs='+',
        metavar='PEER',
        help="only these peers: sources (timm torchvision mmdet mmseg) or 'source name'",
    )
    parser.add_argument(
        '--mode',
        nargs='+',
        default=['infer'],
        choices=['train', 'infer', 'deploy'],
        help='train: forward+backward (train mode, unfused); infer: eval + no_grad; '
        'deploy: infer with ours fused (default: infer)',
    )
    parser.add_argument(
        '--compile',
        default='none',
        choices=['none', 'ours', 'all'],
        help='infer/deploy: also run ours (ours) or every candidate (all) through '
        'torch.compile with inductor freezing (needs a C++ compiler; default: none)',
    )
    parser.add_argument(
        '--runtime',
        nargs='+',
        choices=['onnxruntime', 'openvino'],
        help='infer/deploy: also export ours and every peer to ONNX and run them in these '
        'runtimes (interleaved with the PyTorch candidates)',
    )
    parser.add_argument(
        '--precision',
        nargs='+',
        default=['fp32'],
        choices=['fp32', 'bf16', 'int8'],
        help="with --runtime: fp32, bf16 (OpenVINO's bf16 inference hint) and/or int8 "
        '(ONNX Runtime static QDQ / NNCF, calibrated on built-in images; default: fp32)',
    )
    parser.add_argument(
        '--calibration',
        type=int,
        default=32,
        metavar='N',
        help='with --precision int8: calibration images per model (default: 32)',
    )
    parser.add_argument('--batch', type=int, nargs='+', default=[1], help='batch sizes')
    parser.add_argument(
        '--threads', type=int, nargs='+', default=[1], help='torch.set_num_threads values'
    )
    parser.add_argument(
        '--input-size',
        type=int,
        nargs='+',
        metavar='S',
        help='input size S or H W (default 224; 64 with --fast)',
    )
    parser.add_argument('--repeats', type=int, help='timed rounds (default 10; 3 with --fast)')
    parser.add_argument('--warmup', type=int, help='warm-up rounds (default 2; 1 with --fast)')
    parser.add_argument('--fast', action='store_true', help='few rounds, 64x64: a smoke test')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    parser.add_argument(
        '--clock',
        default='wall',
        choices=['wall', 'cpu'],
        help='wall: latency (default); cpu: process CPU time, which with --threads 1 is '
        'immune to other processes on a shared machine',
    )
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory step')
    parser.add_argument('--out', help='write DIR/benchmark.md and DIR/benchmark.csv')
    parser.add_argument(
        '--plot',
        nargs='?',
        const='',
        metavar='PNG',
        help='plot latency against FLOPs of our presets (all of them unless --backbone '
        'is given; peers as crosses with --compare); default path OUT/latency_vs_flops.png',
    )
    return parser.parse_args(argv), parser


def build_candidates(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list:
    from mmbackbones import benchmark as bm
    from mmbackbones.models import family_class

    targets = [bool(args.config), bool(args.backbone), args.all_presets]
    if sum(targets) > 1:
        parser.error('give one target: a CONFIG, --backbone NAME [--arch A] or --all-presets')
    if args.arch and not args.backbone:
        parser.error('--arch needs --backbone')
    if args.config:
        if args.compare or args.peers:
            parser.error('--compare/--peers apply to backbones, not to a config')
        if args.plot is not None:
            parser.error('--plot applies to our presets, not to a config')
        return [bm.config_candidate(args.config)]
    bm.validate_peers(args.peers)
    compare = args.compare or bool(args.peers)
    if args.backbone:
        if args.arch and len(args.backbone) > 1:
            parser.error('--arch goes with a single --backbone')
        out = []
        for family in args.backbone:
            cls = family_class(family)
            if args.arch:
                archs = [args.arch]
            elif compare:
                archs = [a for f, a in bm.COMPARISONS if f == family]
                if not archs:
                    parser.error(
                        f'{family} has no architecture with peers; the families with peers '
                        f'are {sorted({f for f, _ in bm.COMPARISONS})}'
                    )
            else:
                archs = list(cls.arch_settings)
            for arch in archs:
                out += bm.candidates_for(family, arch, compare, args.peers, require_peers=compare)
        return out
    if args.all_presets or args.plot is not None:
        out = []
        for family, arch in bm.all_presets():
            out += bm.candidates_for(family, arch, compare, args.peers)
        return out
    if not compare:
        parser.error(
            'nothing to run: give a CONFIG, --backbone NAME [--arch A], --all-presets '
            'or --compare'
        )
    out = []
    for family, arch in bm.COMPARISONS:
        cands = bm.candidates_for(family, arch, True, args.peers)
        if any(not c.ours for c in cands):
            out += cands
    if not out:
        parser.error(f'no architecture has peers among {args.peers}')
    return out


def run_whole(args: argparse.Namespace, parser, repeats: int, warmup: int) -> None:
    """``--whole``: one session per thread count over the chosen pairs."""
    from mmbackbones import benchmark as bm
    from mmbackbones.benchmark.wholemodels import WHOLE_MODELS, run_whole_session

    if args.config or args.backbone or args.all_presets or args.compare or args.peers:
        parser.error('--whole takes no other target (CONFIG, --backbone, --compare, ...)')
    if args.batch != [1] or args.device != 'cpu' or args.compile != 'none':
        parser.error('--whole runs batch 1 on the CPU, eager or in --runtime')
    specs = bm.engine_specs(args.runtime or [], args.precision if args.runtime else [])
    rows = []
    for threads in args.threads:
        rows += run_whole_session(
            [WHOLE_MODELS[k] for k in args.whole],
            specs,
            threads,
            repeats,
            warmup,
            calibration=args.calibration,
            log=lambda msg: print(f'[benchmark] {msg}', file=sys.stderr, flush=True),
        )
    _report(args, rows, (0, 0), repeats, warmup)


def _report(args: argparse.Namespace, rows: list, shape: tuple, repeats: int, warmup: int):
    from mmbackbones import benchmark as bm

    command = 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in args.argv)
    meta = bm.report_meta(
        args.device, shape, repeats, warmup, command, args.clock, compiled=args.compile
    )
    if not shape[0]:
        meta['input'] = "each model at its config's test size (see the table)"
    print(bm.to_markdown(rows, meta))
    if args.out:
        for path in bm.write_reports(rows, meta, args.out):
            print(f'[benchmark] wrote {path}', file=sys.stderr, flush=True)
    return meta


@entry_point
def main(argv: list[str] | None = None) -> None:
    args, parser = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    from mmbackbones import benchmark as bm

    preset = FAST if args.fast else DEFAULT
    repeats = args.repeats if args.repeats is not None else preset['repeats']
    warmup = args.warmup if args.warmup is not None else preset['warmup']
    size = args.input_size or [preset['size']]
    if len(size) not in (1, 2) or min(size) < 1:
        parser.error(f'--input-size takes S or H W (positive), got {size}')
    shape = (size[0], size[-1])
    if min(args.batch) < 1 or min(args.threads) < 1:
        parser.error('--batch and --threads must be positive')
    if 'train' in args.mode and min(args.batch) < 2:
        parser.error(
            '--mode train needs --batch >= 2 (BatchNorm in training mode needs more than one '
            'value per channel, e.g. in the SE of ReXNet)'
        )
    if args.device.startswith('cuda'):
        import torch

        if not torch.cuda.is_available():
            parser.error(f'--device {args.device}: CUDA is not available on this machine')
    elif args.device != 'cpu':
        parser.error(f"--device must be 'cpu' or 'cuda[:N]', got {args.device!r}")
    if args.compile != 'none' and 'train' in args.mode:
        parser.error('--compile applies to --mode infer/deploy (training is always eager)')
    if args.compile != 'none' and args.config:
        parser.error('--compile applies to backbones, not to a config')
    if args.plot is not None and not args.out and not args.plot:
        parser.error('--plot without a PNG path needs --out DIR')
    if args.runtime:
        if 'train' in args.mode:
            parser.error('--runtime applies to --mode infer/deploy (runtimes run inference)')
        if args.config:
            parser.error('--runtime applies to backbones and classifiers, not to a config')
        if args.device != 'cpu':
            parser.error('--runtime runs the CPU runtimes: use --device cpu')
        if args.calibration < 1:
            parser.error(f'--calibration must be >= 1, got {args.calibration}')
    elif args.precision != ['fp32']:
        parser.error('--precision applies to --runtime')

    if args.whole:
        return run_whole(args, parser, repeats, warmup)
    try:
        candidates = build_candidates(args, parser)
        if args.runtime:
            candidates = bm.with_engines(candidates, bm.engine_specs(args.runtime, args.precision))
    except ValueError as e:  # BenchmarkError, an unknown family, a config that is not one
        parser.error(str(e))

    def log(msg: str) -> None:
        print(f'[benchmark] {msg}', file=sys.stderr, flush=True)

    rows = []
    for threads in args.threads:
        for mode in args.mode:
            for batch in args.batch:
                log(f'session: mode {mode}, batch {batch}, {threads} threads, {shape}')
                try:
                    rows += bm.run_session(
                        candidates,
                        mode,
                        batch,
                        shape,
                        threads,
                        repeats,
                        warmup,
                        device=args.device,
                        memory=not args.no_memory,
                        clock=args.clock,
                        log=log,
                        compiled=args.compile,
                        calibration=args.calibration,
                    )
                except bm.BenchmarkError as e:
                    parser.error(str(e))
    _report(args, rows, shape, repeats, warmup)
    if args.plot is not None:
        path = args.plot or osp.join(args.out, 'latency_vs_flops.png')
        bm.plot_latency_vs_flops(rows, path, clock=args.clock)
        log(f'wrote {path}')


if __name__ == '__main__':
    main()

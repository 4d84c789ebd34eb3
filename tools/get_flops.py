"""Params, FLOPs (multiply-adds) and activations at a given input shape; no dataset needed.

    python tools/get_flops.py --backbone ReXNet --arch 1.0 --shape 224 224 --classifier
    python tools/get_flops.py --backbone MobileNetV3 --arch large --shape 320 320
    python tools/get_flops.py configs/rexnet_fasterrcnn_fpn.py --shape 800 1200
    python tools/get_flops.py configs/rexnet_fasterrcnn_fpn.py --shape 800 1200 --backbone-only

Counting convention (mmbackbones.complexity): FLOPs are multiply-adds of convolutions and
linear layers, SE's 1x1 convs included; BatchNorm, activations (h-swish, sigmoid), pooling
and SE's channel multiplication count as zero; activations are conv/linear output
elements. For a detector the tensor-mode forward is counted: backbone, neck, dense heads and, for
two-stage detectors, the RoI heads on the RPN's test-time proposals (1000 per image with
mmdet's defaults); post-processing is not counted.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmbackbones.utils.cli import ToolParser, at_least, entry_point  # noqa: E402


class _TensorForward(nn.Module):
    def __init__(self, model: nn.Module, backbone_only: bool) -> None:
        super().__init__()
        self.model, self.backbone_only = model, backbone_only

    def forward(self, x: torch.Tensor):
        if self.backbone_only:
            return self.model.backbone(x)
        samples = None
        if hasattr(self.model, 'roi_head'):  # two-stage: the RPN needs image metadata
            from mmdet.structures import DetDataSample

            h, w = x.shape[-2:]
            meta = dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0),
            )
            samples = [DetDataSample(metainfo=meta) for _ in range(x.shape[0])]
        return self.model._forward(x, samples)


def build_from_config(path: str, backbone_only: bool) -> nn.Module:
    from mmbackbones.apis import init_model

    return _TensorForward(init_model(path), backbone_only)


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an mmdet/mmseg config (or use --backbone)')
    parser.add_argument('--backbone', help='one of our backbone classes, e.g. ReXNet')
    parser.add_argument('--arch', help='preset name of --backbone')
    parser.add_argument(
        '--shape', type=at_least(1), nargs=2, default=[224, 224], metavar=('H', 'W')
    )
    parser.add_argument(
        '--classifier',
        action='store_true',
        help="with --backbone: add the paper's 1000-class classifier",
    )
    parser.add_argument(
        '--backbone-only', action='store_true', help='with a config: count the backbone alone'
    )
    parser.add_argument(
        '--out-indices',
        type=int,
        nargs='+',
        help='with --backbone: taps to build (default: the family default)',
    )
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.backbone):
        parser.error('give either a CONFIG or --backbone NAME --arch ARCH')
    if args.config and (args.arch or args.out_indices or args.classifier):
        parser.error('--arch/--out-indices/--classifier apply to --backbone; edit the config')
    if args.backbone and args.backbone_only:
        parser.error('--backbone-only applies to a CONFIG (--backbone counts the backbone)')

    from mmbackbones.complexity import measure

    if args.config:
        model = build_from_config(args.config, args.backbone_only)
        what = f'{args.config}{" (backbone only)" if args.backbone_only else ""}'
    else:
        from mmbackbones.deploy.build import build_backbone
        from mmbackbones.models import ImageClassifier

        try:
            # validates the name and arch (clear errors listing the valid ones)
            model = build_backbone(args.backbone, args.arch, args.out_indices)
            if args.classifier:
                cfg = dict(type=args.backbone, **({'arch': args.arch} if args.arch else {}))
                model = ImageClassifier(cfg, num_classes=1000)
        except ValueError as e:
            parser.error(str(e))
        what = f'{args.backbone}({args.arch or "default"})' + (
            ' + classifier' if args.classifier else ''
        )
    cx = measure(model, tuple(args.shape))
    h, w = args.shape
    print(f'{what} @ {h}x{w}')
    print(f'  params: {cx.params:,} ({cx.params / 1e6:.2f}M)')
    print(f'  FLOPs:  {cx.flops:,} ({cx.flops / 1e9:.3f}G multiply-adds)')
    print(f'  acts:   {cx.acts:,} ({cx.acts / 1e6:.2f}M)')
    print(
        '  convention: multiply-adds of conv/linear (SE 1x1 convs included); BN, '
        'activations (h-swish/sigmoid), pooling and the SE product count as 0'
    )


if __name__ == '__main__':
    main()

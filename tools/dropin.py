"""Write a config that drops one of our backbones into an mmdet/mmseg config.

    python tools/dropin.py mmdet::retinanet/retinanet_r50_fpn_1x_coco.py --backbone ReXNet \\
        --arch 1.0 -o configs/my_retinanet_rexnet.py
    python tools/dropin.py mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py \\
        --backbone RegNet --arch regnetx_3.2gf --weights checkpoints/regnetx-3.2gf_imagenet.pth \\
        -o configs/my_fcn_regnet.py --check --no-syncbn

The written config inherits the host config (``_base_``) and sets only what must change,
each key with a comment saying why: the backbone (scoped type, arch, ``out_indices`` giving
the host backbone's output strides, ``output_stride`` for dilated hosts, the ``Pretrained``
init of ``--weights``), ``custom_imports``, every channel count that reads the backbone (neck
``in_channels``; mmseg decode/auxiliary heads and DeepLabV3+'s ``c1_in_channels``), mmseg's
``model.pretrained``, the data preprocessor's mean/std/colour order for our weights and,
with ``--no-syncbn``, SyncBN -> BN. See ``mmbackbones/dropin.py`` for how the taps are chosen.

What was measured, chosen and changed is printed (to stderr when the config goes to stdout).
Bad input (unknown family, arch or host config; a host output we cannot give) is one line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmbackbones.utils.cli import ToolParser, entry_point, fail  # noqa: E402


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'host', help="the host config: 'mmdet::<dir>/<file>.py', 'mmseg::...' or a file"
    )
    parser.add_argument('--backbone', required=True, help='our backbone family, e.g. ReXNet')
    parser.add_argument('--arch', help="its preset, e.g. 1.0 (default: the family's default)")
    parser.add_argument(
        '--weights', help='our converted ImageNet weights (tools/convert_weights.py)'
    )
    parser.add_argument(
        '--no-syncbn', action='store_true', help='SyncBN -> BN everywhere (one process, CPU)'
    )
    parser.add_argument('-o', '--out', help='write the config here (default: stdout)')
    parser.add_argument(
        '--check',
        action='store_true',
        help='build the written config and run one forward (backbone, neck, mmseg heads)',
    )
    args = parser.parse_args(argv)

    from mmbackbones.dropin import DropInError, check_dropin, plan_dropin

    log = sys.stdout if args.out else sys.stderr
    try:
        plan = plan_dropin(
            args.host,
            args.backbone,
            args.arch,
            weights=args.weights,
            no_syncbn=args.no_syncbn,
            out=args.out,
        )
    except DropInError as e:
        fail(str(e))
    for line in plan.summary():
        print(line, file=log, flush=True)
    text = plan.text()
    if args.out:
        plan.write(args.out)
        print(f'wrote {args.out}', file=log, flush=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if args.check:
        try:
            got = check_dropin(args.out or text, plan)
        except DropInError as e:
            fail(str(e))
        print(
            'check: the model builds and runs; backbone outputs '
            + ', '.join(f'{c}ch@/{s}' for c, s in got),
            file=log,
            flush=True,
        )


if __name__ == '__main__':
    main()

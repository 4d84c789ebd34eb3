"""INT8 post-training quantization of a whole model exported by tools/export_onnx.py,
calibrated on images of the config's own training split.

    python tools/export_onnx.py configs/mobilenetv3-large_ssdlite.py --builtin-data \\
        --checkpoint work_dirs/ssdlite/iter_2000.pth --shape 256 256 -o ssdlite.onnx
    python tools/quantize.py configs/mobilenetv3-large_ssdlite.py ssdlite.onnx \\
        -o ssdlite-int8.onnx --builtin-data                     # ONNX Runtime static QDQ
    python tools/quantize.py configs/mobilenetv3-large_ssdlite.py ssdlite.onnx \\
        -o ssdlite-int8-nncf.onnx --method nncf --builtin-data  # NNCF, for OpenVINO
    # the metric of the INT8 model, with the config's dataset and evaluator
    python tools/test.py configs/mobilenetv3-large_ssdlite.py ssdlite-int8.onnx \\
        --backend onnxruntime --builtin-data

The layers of the model (every node inside a submodule: backbone, neck, heads) are
quantized; the post-processing (box decoding, NMS, the final resize) stays in floating
point. The result keeps the export's metadata, so tools/test.py --backend and
mmbackbones.deploy.Runtime run it like the FP32 file. See mmbackbones/deploy/quantize.py
and docs/deploy.md.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmbackbones.utils.cli import ToolParser, at_least, entry_point, file_ending  # noqa: E402
from mmbackbones.utils.config import add_common_args, fail, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config the model was exported from')
    parser.add_argument('model', type=file_ending('.onnx'), help='FP32 whole model (.onnx)')
    parser.add_argument(
        '-o', '--out', required=True, type=file_ending('.onnx'), help='INT8 model to write'
    )
    parser.add_argument(
        '--method',
        choices=('onnxruntime', 'nncf'),
        default='onnxruntime',
        help='onnxruntime: ONNX Runtime static QDQ (runs in ONNX Runtime and OpenVINO); '
        'nncf: NNCF, placed for OpenVINO (default: onnxruntime)',
    )
    parser.add_argument(
        '--calibration',
        type=at_least(1),
        default=32,
        metavar='N',
        help="calibration images, the first N of the config's train split (default: 32)",
    )
    parser.add_argument(
        '--op-types',
        nargs='+',
        metavar='OP',
        help="ONNX operator types to quantize, or 'all' (default: the method's choice, "
        'mmbackbones.deploy.quantize.METHOD_OP_TYPES)',
    )
    add_common_args(parser)
    return parser.parse_args(argv)


@entry_point
def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    if not osp.isfile(args.model):
        fail(f'model file {args.model!r} does not exist')
    if osp.abspath(args.out) == osp.abspath(args.model):
        fail('--out must not overwrite the FP32 model')
    cfg = load_config(args, 'tools/quantize.py')
    from mmbackbones.deploy.quantize import (
        config_images,
        nodes_under,
        quantize,
        quantized_op_types,
        runtime_feeds,
    )
    from mmbackbones.deploy.runtime import Runtime

    runtime = Runtime(args.model, cfg)
    images = config_images(cfg, args.calibration, 'train')
    feeds = runtime_feeds(runtime, images)
    op_types = None
    if args.op_types:
        op_types = 'all' if args.op_types == ['all'] else args.op_types
    out = quantize(args.model, args.out, feeds, args.method, op_types, nodes_under(args.model))
    ops = quantized_op_types(out)
    print(
        f'wrote {out}: {args.method} INT8, calibrated on {len(images)} train images; '
        f'{ops.get("QuantizeLinear", 0)} QuantizeLinear / {ops.get("DequantizeLinear", 0)} '
        'DequantizeLinear nodes'
    )
    print(
        f'evaluate: python tools/test.py {args.config} {out} --backend onnxruntime|openvino'
        + (' --builtin-data' if args.builtin_data else '')
    )
    return out


if __name__ == '__main__':
    main()

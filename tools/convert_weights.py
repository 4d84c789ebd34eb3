"""Convert ImageNet weights from timm, torchvision, clovaai/rexnet or pycls into a backbone
checkpoint for ``init_cfg=dict(type='Pretrained', checkpoint=DST)``.

python tools/convert_weights.py SRC [DST] --source timm --backbone ReXNet --arch 1.0
python tools/convert_weights.py SRC [DST] --source timm --model efficientnet_b0
python tools/convert_weights.py SRC [DST] --source torchvision --model regnet_y_400mf
python tools/convert_weights.py SRC [DST] --source clovaai --backbone ReXNet --arch lite-1.0
python tools/convert_weights.py SRC [DST] --source pycls --model RegNetX-3.2GF --rgb
python tools/convert_weights.py SRC [DST] --source efficientnet_pytorch --model efficientnet-lite0
python tools/convert_weights.py SRC [DST] --source timm --model tf_efficientnet_b0 --classifier

SRC is read safely (safetensors, or torch.load(weights_only=True)); a pickle that needs code
is refused. Every source tensor is mapped or dropped with a reason (the classifier); anything
unmapped, missing or of the wrong shape is an error that says which published model the file
probably is. DST holds {'state_dict': <our keys, every layer>, 'meta': <source, backbone
config, BatchNorm eps, colour order / mean / std the weights expect>}; without DST it is
checkpoints/<backbone>_imagenet.pth, the name the configs use (e.g. rexnet-0.9, efficientnet-b0,
mobilenetv3-large-rt, regnetx-3.2gf, resnext-101-32x4d; with --classifier
<backbone>_imagenet-classifier.pth). Bad input prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import ast
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmbackbones.utils.cli import ToolParser, entry_point, fail  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # the choices: the converters' sources and the registry's backbone families
    from mmbackbones.convert import SOURCES
    from mmbackbones.models import backbone_families

    p = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', help='source weight file (.pth / .pt / .pyth / .bin / .safetensors)')
    p.add_argument(
        'dst',
        nargs='?',
        help='converted checkpoint to write (.pth); default: checkpoints/<backbone>'
        '_imagenet.pth, the file name the configs use (mmbackbones.convert.uri.'
        'default_checkpoint)',
    )
    p.add_argument('--source', required=True, choices=list(SOURCES), help='where SRC comes from')
    p.add_argument('--backbone', choices=list(backbone_families()), help='our backbone class')
    p.add_argument(
        '--arch', help='our preset name (e.g. 1.0, large, b0, regnetx_3.2gf, 50_32x4d) or a dict'
    )
    p.add_argument(
        '--model',
        help="the source's model name (e.g. rexnet_100, efficientnet_b0, regnet_y_400mf, "
        'RegNetX-3.2GF, efficientnet-b0); sets --backbone/--arch/--backbone-args, required '
        "for timm EfficientNet and MobileNetV3 (their tf_* TensorFlow ports: padding='tf_same')"
        ' and for efficientnet_pytorch',
    )
    p.add_argument(
        '--backbone-args',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='further backbone arguments, e.g. widen_factor=0.75 feature_location=expansion',
    )
    p.add_argument('--rgb', action='store_true', help='fold a BGR stem conv (pycls) to RGB input')
    p.add_argument(
        '--classifier',
        action='store_true',
        help='also convert the ImageNet classifier: DST then loads strictly into ImageClassifier('
        "meta['backbone'], meta['num_classes']), and meta['preprocess'] states the input "
        'size, resize, interpolation, colour order and mean/std the weights expect',
    )
    p.add_argument(
        '--key',
        help='the checkpoint entry holding the weights (default: state_dict, '
        'model_state, model or the top level), e.g. state_dict_ema',
    )
    return p.parse_args(argv)


def _backbone_args(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key.isidentifier():
            raise ValueError(f'--backbone-args: expected KEY=VALUE, got {item!r}')
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        kwargs = _backbone_args(args.backbone_args)
    except ValueError as e:
        fail(str(e))
    if not osp.isfile(args.src):
        fail(f'SRC {args.src!r} does not exist')

    from mmbackbones.convert import SOURCES as REGISTRY
    from mmbackbones.convert import ConversionError, convert_file, format_config, resolve
    from mmbackbones.convert.uri import default_checkpoint

    try:
        req = resolve(REGISTRY[args.source], args.backbone, args.arch, kwargs, args.model)
        dst = args.dst or default_checkpoint(
            req.family, req.arch, req.kwargs, classifier=args.classifier
        )
        if dst is None:
            raise ConversionError('give DST: an arch dict has no default file name')
        res = convert_file(
            args.src,
            dst,
            req,
            rgb=args.rgb,
            key=args.key,
            others=list(REGISTRY.values()),
            classifier=args.classifier,
        )
    except (ConversionError, OSError) as e:
        fail(str(e))
    meta = res.meta
    log = print
    log(
        f'[convert] {args.src} ({meta["src_state_dict"]}, {len(res.state_dict) + len(res.dropped)}'
        f' tensors) -> {len(res.state_dict)} tensors of {res.backbone["type"]}'
        f'(arch={req.arch!r}); strict load OK'
    )
    for key, shape, reason in res.dropped:
        log(f'[convert] dropped {key} {tuple(shape)}: {reason}')
    for note in res.notes:
        log(f'[convert] note: {note}')
    inp = meta['input']
    log(
        f'[convert] the weights expect {inp["color_order"]} input, '
        f'mean {inp["mean"]}, std {inp["std"]}'
    )
    if args.classifier:
        pre = meta['preprocess']
        log(
            f'[convert] classifier: {meta["num_classes"]} classes; evaluate at '
            f'{pre["input_size"]}x{pre["input_size"]}: resize the shorter side to '
            f'{pre["resize"]} ({pre["interpolation"]}), centre crop'
        )
    log(f'[convert] wrote {dst}')
    log(f'[convert] backbone: {format_config(res.backbone, dst)}')
    dp = meta['data_preprocessor']
    log(
        f'[convert] data_preprocessor: mean={dp["mean"]}, std={dp["std"]}, '
        f'bgr_to_rgb={dp["bgr_to_rgb"]}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())

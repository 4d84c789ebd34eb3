"""Evaluate a checkpoint with an mmdet or mmseg config (chosen by its ``default_scope``).

python tools/test.py CONFIG CHECKPOINT [--builtin-data] [--out results.pkl] [--allow-partial]
python tools/test.py CONFIG MODEL.onnx --backend onnxruntime|openvino [--builtin-data]

A checkpoint whose tensors do not fit the model is an error naming the mismatches (and the
model the file probably belongs to); --allow-partial evaluates with what fits.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmbackbones  # noqa: E402,F401  (allow-lists mmengine checkpoints for torch>=2.6)
from mmbackbones.checkpoint import check_checkpoint_file  # noqa: E402
from mmbackbones.loading import apply_loading_policy  # noqa: E402
from mmbackbones.utils.cli import ToolParser, entry_point, file_ending  # noqa: E402
from mmbackbones.utils.config import add_common_args, fail, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ToolParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', type=file_ending('.pkl', '.pickle'), help='dump raw predictions to this pickle'
    )
    parser.add_argument(
        '--backend',
        choices=('pytorch', 'onnxruntime', 'openvino'),
        default='pytorch',
        help='run CHECKPOINT in PyTorch (default), or CHECKPOINT is a whole model exported '
        'by tools/export_onnx.py, run in ONNX Runtime or OpenVINO (docs/deploy.md)',
    )
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='evaluate even if the checkpoint does not fit the model (only the tensors that '
        'fit are loaded; logged). Default: a mismatch is an error (config key: '
        'allow_partial_checkpoint)',
    )
    add_common_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


@entry_point
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args, 'tools/test.py')
    if args.backend != 'pytorch':  # the runtime replaces the model; same data and metric
        from mmbackbones.deploy.runtime import use_runtime

        use_runtime(cfg, args.checkpoint, args.backend)
    else:
        try:
            check_checkpoint_file(args.checkpoint)
        except ValueError as e:
            fail(str(e))
        cfg.load_from = args.checkpoint
        apply_loading_policy(cfg, args.allow_partial)  # a checkpoint that does not fit: error
    if args.out:
        cfg.test_evaluator = (
            [cfg.test_evaluator]
            if isinstance(cfg.test_evaluator, dict)
            else list(cfg.test_evaluator)
        )
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    return runner.test()


if __name__ == '__main__':
    main()

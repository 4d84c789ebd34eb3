"""Design-space toolkit CLI: sample -> train -> analyze (Radosavovic et al., ICCV 2019).

python tools/design_space.py sample --space resnet -n 100 --seed 0 -o resnet.jsonl
python tools/design_space.py train resnet.jsonl -o resnet_trained.jsonl --iters 200
python tools/design_space.py analyze a.jsonl b.jsonl --normalize flops -o out/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmbackbones.design_space import sampling, spaces  # noqa: E402
from mmbackbones.design_space.channel_search import parse_budget  # noqa: E402
from mmbackbones.design_space.train import DEFAULT_CFG, read_jsonl, run_sweep  # noqa: E402
from mmbackbones.utils.cli import ToolParser, above, at_least, checked, entry_point  # noqa: E402
from mmbackbones.utils.errors import ArgumentError  # noqa: E402


def _space(name: str) -> str:
    spaces.get_space(name)  # a ValueError naming the known spaces
    return name


def _bounds(text: str) -> tuple:
    return parse_budget(text, '')  # "lo,hi", either side empty


def cmd_sample(a: argparse.Namespace) -> None:
    recs = sampling.sample(a.space, a.n, a.seed, params_range=a.params, flops_range=a.flops)
    out = Path(a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(''.join(json.dumps(r) + '\n' for r in recs))
    print(f'wrote {len(recs)} {a.space} samples (seed {a.seed}) to {out}')


def cmd_train(a: argparse.Namespace) -> None:
    cfg = dict(DEFAULT_CFG)
    for k in ('iters', 'batch_size', 'lr', 'n_train', 'n_test', 'data_root', 'device', 'seed'):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    if a.epochs is not None:
        from mmbackbones.design_space.data import _load_cifar

        n = 50000 if _load_cifar(Path(cfg['data_root'])) is not None else cfg['n_train']
        cfg['iters'] = int(round(a.epochs * n / cfg['batch_size']))
    if cfg['device'] == 'auto':
        import torch

        cfg['device'] = 'cuda' if torch.cuda.is_available() else 'cpu'
    if Path(a.output).resolve() == Path(a.samples).resolve():
        raise ArgumentError(f'-o/--output {a.output!r} is the samples file; name a new file')
    samples = read_jsonl(a.samples, fields=['id', 'arch'])  # what training needs
    res = run_sweep(samples, a.output, cfg, a.workers, a.launcher, progress=not a.no_progress)
    print(f'{len(res)} trained models in {a.output} ({cfg["iters"]} iterations each)')


def cmd_analyze(a: argparse.Namespace) -> None:
    from mmbackbones.design_space import report

    stems = [Path(f).stem for f in a.files]
    twice = sorted({k for k in stems if stems.count(k) > 1})
    if twice:  # one population per file, named by the file's stem
        raise ArgumentError(f'files: two files would both be population {twice[0]!r}: {a.files}')
    key = 'params' if a.normalize == 'params' else 'flops'  # the scatter plot's axis
    pops = {k: read_jsonl(f, numbers=['error', key]) for k, f in zip(stems, a.files)}
    summary = report.write_report(pops, a.output, a.normalize, a.title)
    print(json.dumps(summary, indent=1))


@entry_point
def main(argv: list[str] | None = None) -> None:
    p = ToolParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('sample', help='draw models from a design space (analytic complexity)')
    s.add_argument(
        '--space', required=True, type=checked(_space), help=f'one of {sorted(spaces.SPACES)}'
    )
    s.add_argument('-n', type=at_least(1), default=100, help='samples to draw (default 100)')
    s.add_argument('--seed', type=at_least(0), default=0)
    s.add_argument(
        '--params', type=checked(_bounds), help='params bounds "lo,hi" (either may be empty)'
    )
    s.add_argument(
        '--flops', type=checked(_bounds), help='FLOPs bounds "lo,hi" at 32x32 (either empty)'
    )
    s.add_argument('-o', '--output', required=True)
    s.set_defaults(func=cmd_sample)
    t = sub.add_parser('train', help='train each sample briefly; adds "error" (resumable)')
    t.add_argument('samples')
    t.add_argument('-o', '--output', required=True)
    t.add_argument('--iters', type=at_least(1))
    t.add_argument('--epochs', type=above(0), help='overrides --iters')
    t.add_argument('--batch-size', dest='batch_size', type=at_least(1))
    t.add_argument('--lr', type=above(0))
    t.add_argument('--seed', type=at_least(0))
    t.add_argument('--n-train', dest='n_train', type=at_least(1), help='generated set size')
    t.add_argument('--n-test', dest='n_test', type=at_least(1), help='generated set size')
    t.add_argument('--data-root', dest='data_root')
    t.add_argument('--device', choices=('cpu', 'cuda', 'auto'), help="default 'cpu'")
    t.add_argument('--workers', type=at_least(1), default=1)
    t.add_argument('--launcher', choices=('local', 'ray'), default='local')
    t.add_argument('--no-progress', action='store_true')
    t.set_defaults(func=cmd_train)
    n = sub.add_parser('analyze', help='EDFs, KS, random-search efficiency, plots, report')
    n.add_argument('files', nargs='+', help='trained .jsonl files (population = file stem)')
    n.add_argument('--normalize', choices=('none', 'params', 'flops'), default='none')
    n.add_argument('--title', default='', help='settings label added to plot titles')
    n.add_argument('-o', '--output', required=True)
    n.set_defaults(func=cmd_analyze)
    a = p.parse_args(argv)
    a.func(a)


if __name__ == '__main__':
    main()

"""Bad input to every tool, as a user types it: exit status 2, one line naming the argument
or file (with the line number for JSONL and config files) and what is valid, and no
traceback, unless ``--debug`` asks for it (mmbackbones/utils/cli.py).

One class of mistake a test: numbers out of range, JSONL files (missing, empty, malformed,
a record without a field), unknown names, config files that do not parse or fail while
they run, unknown config keys and types, missing files; a number given for a preset name
(``arch=1.3``) is valid input. Most cases call the tool's ``main(argv)`` in this process,
which goes through the same entry point as the command line. Every tool also runs once as
a real command line in the slow suite (side by side the processes still take ~30 s, each
one starting torch); the default suite runs one tool that way.
"""

from __future__ import annotations

import os
import os.path as osp
import runpy
import subprocess
import sys
from typing import Any

import pytest
from conftest import REPO

from mmbackbones.models import backbone_families, family_class
from mmbackbones.utils import cli
from mmbackbones.utils.errors import InputFileError, UserError

TOOLS = osp.join(REPO, 'tools')
CONFIGS = osp.join(REPO, 'configs')
_MAINS: dict[str, Any] = {}


def tool(name: str):
    """``tools/<name>.py``'s ``main`` (loaded once per session)."""
    if name not in _MAINS:
        _MAINS[name] = runpy.run_path(osp.join(TOOLS, f'{name}.py'))['main']
    return _MAINS[name]


def one_line_error(code: Any, err: str, *named: str) -> str:
    """Exit status 2, ``error: ...`` as the last line of stderr, no traceback, every string
    of ``named`` in that line. Returns the line."""
    assert code == 2, err
    assert 'Traceback' not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith('error: '), err
    for s in named:
        assert s in line, (s, line)
    return line


def run_main(name: str, argv: list[str], capsys, *named: str) -> str:
    """Run ``tools/<name>.py`` in this process; it must stop as :func:`one_line_error`."""
    with pytest.raises(SystemExit) as e:
        tool(name)([str(a) for a in argv])
    return one_line_error(e.value.code, capsys.readouterr().err, *named)


def write(path, text: str) -> str:
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


# ------------------------------------------------------------ every tool, a real process
def _subprocess_cases(tmp: str) -> dict[str, tuple[list[str], list[str]]]:
    """tool -> (its argv, what the one line must name). One mistake per tool, chosen so
    that it is caught before any real work."""
    empty = write(osp.join(tmp, 'empty.jsonl'), '')
    syntax = write(osp.join(tmp, 'broken_cfg.py'), "_base_ = ['x.py']\nmodel = dict(\n")
    ssdlite = osp.join(CONFIGS, 'rexnet_ssdlite.py')
    return {
        'benchmark': (['--backbone', 'ReXNet', '--batch', '0', '--fast'], ['--batch']),
        'channel_search': (['--out', tmp, '--quick', '--iters', '0'], ['--iters', '>= 1']),
        'convert_weights': (
            [osp.join(tmp, 'nope.pth'), 'o.pth', '--source', 'timm', '--model', 'rexnet_100'],
            ['nope.pth', 'does not exist'],
        ),
        'demo': (['--config', osp.join(tmp, 'nope.py'), '--work-dir', tmp], ['tools/train.py']),
        'design_space': (['analyze', empty, '-o', tmp], ['empty.jsonl', 'no records']),
        'dropin': (['mmdet::nope/x.py', '--backbone', 'ReXNet'], ['mmdet::nope/x.py']),
        'export_onnx': (
            ['--backbone', 'ReXNet', '--shape', '32', '32', '-o', 'x.onnx', '--atol', '-1'],
            ['--atol', '>= 0'],
        ),
        'get_flops': (['--backbone', 'ReXNet', '--shape', '0', '0'], ['--shape', '>= 1']),
        'netadapt': (['--target-ratio', '0.8', '--out', tmp, '--arch', '{"bad'], ['--arch']),
        'quantize': ([ssdlite, 'm.onnx', '-o', 'q.onnx', '--calibration', '0'], ['--calibration']),
        'rank_study': (['--out', tmp, '--threads', '0'], ['--threads', '>= 1']),
        'test': ([syntax, 'x.pth'], ['broken_cfg.py:2:', 'never closed']),
        'train': ([syntax, '--cfg-options', 'oops'], ['--cfg-options', 'KEY=VALUE', "'oops'"]),
    }


def _tools() -> set[str]:
    return {f[:-3] for f in os.listdir(TOOLS) if f.endswith('.py')}


def test_every_tool_is_covered(tmp_path) -> None:
    missing = _tools() - set(_subprocess_cases(str(tmp_path)))
    assert not missing, f'add a bad-input case for {sorted(missing)}'
    for name in _tools():  # and each one goes through the shared entry point
        text = open(osp.join(TOOLS, f'{name}.py')).read()
        assert '@entry_point\ndef main(' in text and 'ToolParser(' in text, name


def _run_side_by_side(runs: dict[str, list[str]], cwd: str) -> dict[str, tuple[int, str]]:
    """``python tools/<tool>.py ARGV`` for each ``name -> [tool, *argv]``, all at once;
    returns ``name -> (exit status, stderr)``."""
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    procs = {
        name: subprocess.Popen(
            [sys.executable, osp.join(TOOLS, f'{tool}.py'), *argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (tool, *argv) in runs.items()
    }
    errs = {name: p.communicate(timeout=900)[1] for name, p in procs.items()}
    return {name: (p.returncode, errs[name]) for name, p in procs.items()}


@pytest.mark.slow  # 13 processes that each import torch: ~55 CPU-s, ~30 s on 2 cores
def test_every_tool_from_the_command_line(tmp_path) -> None:
    cases = {k: v for k, v in _subprocess_cases(str(tmp_path)).items() if k in _tools()}
    got = _run_side_by_side({k: [k, *argv] for k, (argv, _) in cases.items()}, str(tmp_path))
    for name, (code, err) in got.items():
        one_line_error(code, err, *cases[name][1])


def test_command_line_one_line_and_debug_traceback(tmp_path) -> None:
    """The same mistake twice as a user types it: one line and status 2; with --debug, the
    traceback (status 1)."""
    empty = write(tmp_path / 'empty.jsonl', '')
    argv = ['design_space', 'analyze', empty, '-o', str(tmp_path / 'out')]
    got = _run_side_by_side({'plain': argv, 'debug': [*argv, '--debug']}, str(tmp_path))
    one_line_error(*got['plain'], 'empty.jsonl', 'no records')
    code, err = got['debug']
    assert code == 1
    assert 'Traceback (most recent call last)' in err
    assert 'InputFileError: ' in err and 'empty.jsonl' in err
    # in this process: the original exception, not SystemExit
    with pytest.raises(InputFileError, match='no records'):
        tool('design_space')(['analyze', empty, '-o', str(tmp_path), '--debug'])
    assert '--debug' in capture_help('get_flops')


def capture_help(name: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        tool(name)(['--help'])
    return out.getvalue()


# ------------------------------------------------------------------------ JSONL input
@pytest.mark.parametrize(
    'text,named',
    [
        ('', ['empty.jsonl', 'no records']),
        ('\n  \n', ['empty.jsonl', 'no records']),
        ('{"id": "a", "error": 3.0, "flops": 1}\n{"id": "b", error: 2}\n',
         ['empty.jsonl:2:', 'not JSON']),
        ('{"id": "a", "flops": 1}\n', ['empty.jsonl:1:', "'error'", 'no such field']),
        ('{"id": "a", "error": 1, "flops": 1}\n{"id": "b", "error": null, "flops": 1}\n',
         ['empty.jsonl:2:', "'error'", 'finite number', 'None']),
        ('{"id": "a", "error": 1}\n', ['empty.jsonl:1:', "'flops'"]),
        ('[1, 2]\n', ['empty.jsonl:1:', 'not a JSON object']),
    ],
    ids=['empty', 'blank-lines', 'malformed', 'no-field', 'null-field', 'no-flops', 'array'],
)  # fmt: skip
def test_analyze_jsonl(tmp_path, capsys, text: str, named: list[str]) -> None:
    path = write(tmp_path / 'empty.jsonl', text)
    run_main('design_space', ['analyze', path, '-o', tmp_path / 'out'], capsys, *named)
    assert not (tmp_path / 'out').exists()  # refused before writing anything


def test_jsonl_files_missing_or_colliding(tmp_path, capsys) -> None:
    ok = '{"id": "a", "error": 1.0, "flops": 5, "params": 3}\n'
    (tmp_path / 'x').mkdir()
    a, b = write(tmp_path / 'pop.jsonl', ok), write(tmp_path / 'x' / 'pop.jsonl', ok)
    out = tmp_path / 'out'
    run_main('design_space', ['analyze', tmp_path / 'nope.jsonl', '-o', out], capsys,
             'nope.jsonl', 'does not exist')  # fmt: skip
    run_main('design_space', ['analyze', tmp_path, '-o', out], capsys, 'is a directory')
    run_main('design_space', ['analyze', a, b, '-o', out], capsys, "population 'pop'")
    run_main('design_space', ['train', a, '-o', a], capsys, '--output', 'samples file')
    # the samples to train need what training reads
    run_main('design_space', ['train', a, '-o', out / 't.jsonl'], capsys,
             'pop.jsonl:1:', "'arch'")  # fmt: skip


# --------------------------------------------------------------- names and numbers
def test_unknown_design_space_lists_the_valid_ones(tmp_path, capsys) -> None:
    line = run_main(
        'design_space', ['sample', '--space', 'resnet-z', '-o', tmp_path / 's.jsonl'], capsys,
        '--space', "'resnet-z'",
    )  # fmt: skip
    for name in ('resnet', 'resnext_a', 'anynetx', 'regnet', 'rexnet'):
        assert repr(name) in line


@pytest.mark.parametrize(
    'name,argv,named',
    [
        ('design_space', ['sample', '--space', 'resnet', '-n', '0', '-o', 's.jsonl'],
         ['-n', 'must be >= 1, got 0']),
        ('design_space', ['sample', '--space', 'resnet', '-n', '2', '--params', 'lots',
                          '-o', 's.jsonl'], ['--params', 'lo,hi']),
        ('design_space', ['sample', '--space', 'resnet', '--seed', '-1', '-o', 's.jsonl'],
         ['--seed', '>= 0']),
        ('design_space', ['train', 's.jsonl', '-o', 't.jsonl', '--lr', '0'],
         ['--lr', 'must be > 0']),
        ('get_flops', ['--backbone', 'ReXNet', '--shape', '224', 'x'],
         ['--shape', "integer >= 1, got 'x'"]),
        ('get_flops', ['--backbone', 'ReXNet', '--arch', '7.5'],
         ["'7.5'", "'1.0'", "'lite-1.0'"]),
        ('get_flops', [osp.join(CONFIGS, 'rexnet_ssdlite.py'), '--classifier'],
         ['--classifier', '--backbone']),
        ('export_onnx', ['--backbone', 'ReXNet', '--shape', '0', '32', '-o', 'x.onnx'],
         ['--shape']),
        ('rank_study', ['--out', '.', '--rtol', '-1'], ['--rtol', '> 0']),
        ('netadapt', ['--target-ratio', '0.8', '--out', '.', '--n-train', '0'],
         ['--n-train', '>= 1']),
        ('channel_search', ['--out', '.', '--quick', '-n', '0'], ['-n', '>= 1']),
    ],
)  # fmt: skip
def test_numbers_and_names_checked_by_the_parser(tmp_path, capsys, monkeypatch, name, argv,
                                                 named) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    run_main(name, argv, capsys, *named)
    assert not os.listdir(tmp_path)  # nothing written


# ---------------------------------------------------------------------- config files
def _user_config(tmp_path, name: str, body: str, base: str = 'rexnet_ssdlite.py') -> str:
    return write(tmp_path / name, f'_base_ = [{osp.join(CONFIGS, base)!r}]\n{body}')


@pytest.mark.parametrize(
    'body,named',
    [
        ('model = dict(backbone=dict(arch="1.0")\n', ['user_cfg.py:2:', 'never closed']),
        ('model = dict(backbone=dict(arch=one))\n', ['user_cfg.py:2:', 'NameError', "'one'"]),
        ('model = dict(backbone=dict(type="mmbackbones.ReXNett"))\n',
         ['mmbackbones.ReXNett', 'registry']),
        ('model = dict(backbone=dict(widht=1.0))\n',
         ['ReXNet', "'widht'", 'widen_factor', 'out_indices']),
        ('model = dict(backbone=dict(arch=1.7))\n',
         ['ReXNet', 'arch 1.7 (float)', "'1.3'", "'lite-1.0'"]),
        ("model = dict(backbone=dict(arch=dict(_delete_=True, width_mult='x')))\n",
         ['ReXNet', "arch['width_mult'] must be a number", "'x'"]),
        ('model = dict(backbone=dict(arch=dict(width_mult=1.3)))\n',
         ['user_cfg.py', 'cannot inherit', '_delete_=True']),
        ("model = dict(backbone=dict(norm_cfg=dict(type='BatchNorm')))\n",
         ["unknown layer type 'BatchNorm'"]),
    ],
    ids=['syntax', 'name-error', 'unknown-type', 'unknown-key', 'unknown-arch', 'arch-value',
         'inherit', 'norm-type'],
)  # fmt: skip
def test_config_mistakes(tmp_path, capsys, body: str, named: list[str]) -> None:
    path = _user_config(tmp_path, 'user_cfg.py', body)
    run_main('get_flops', [path, '--shape', '64', '64'], capsys, *named)


def test_config_mistakes_in_a_base_file_name_that_file(tmp_path, capsys) -> None:
    write(tmp_path / 'base_cfg.py', 'x = [1, 2\n')
    child = write(tmp_path / 'child.py', "_base_ = ['base_cfg.py']\n")
    run_main('train', [child], capsys, 'base_cfg.py:1:', 'never closed')
    child = write(tmp_path / 'child.py', "_base_ = ['missing_base.py']\n")
    run_main('train', [child], capsys, 'missing_base.py', 'No such file')
    run_main('train', [tmp_path / 'nope.py'], capsys, 'nope.py', 'does not exist')


@pytest.mark.parametrize(
    'option,named',
    [('train_cfg.max_iters=0', ['train_cfg.max_iters', '>= 1, got 0']),
     ('train_dataloader.batch_size=0', ['train_dataloader.batch_size', '>= 1']),
     ('train_dataloader.num_workers=-1', ['train_dataloader.num_workers', '>= 0']),
     ('oops', ['--cfg-options', 'KEY=VALUE', "'oops'"])],
)  # fmt: skip
def test_config_values_that_would_run_nothing(tmp_path, capsys, monkeypatch, option, named):
    """mmengine accepts max_iters=0 and exits 0 having trained nothing; a zero batch size
    fails deep inside a sampler. Both are refused with the key before anything is built."""
    monkeypatch.chdir(tmp_path)
    config = osp.join(CONFIGS, 'rexnet_fasterrcnn_fpn.py')
    run_main('train', [config, '--cfg-options', option], capsys, *named)


def test_launcher_pytorch_outside_torchrun(tmp_path, capsys, monkeypatch) -> None:
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    config = osp.join(CONFIGS, 'rexnet_fasterrcnn_fpn.py')
    run_main('train', [config, '--launcher', 'pytorch'], capsys, '--launcher pytorch', 'torchrun')


def test_a_file_that_is_no_config(tmp_path, capsys) -> None:
    empty = write(tmp_path / 'empty_cfg.py', '')
    run_main('get_flops', [empty], capsys, 'empty_cfg.py', 'no model=dict')
    run_main('train', [empty], capsys, 'default_scope', "'mmdet'")
    run_main('train', [tmp_path], capsys, str(tmp_path), 'is a directory')


# -------------------------------------------------------------- a preset as a number
@pytest.mark.parametrize('family', backbone_families())
def test_number_names_the_preset_it_reads_as(family: str) -> None:
    """Every family, through the shared resolve_arch: a number that reads as a preset name
    is that preset; any other number is refused with the value and the presets."""
    cls = family_class(family)
    for name in cls.arch_settings:
        try:
            value = float(name)
        except ValueError:
            continue
        assert cls.resolve_arch(value) == cls.resolve_arch(name)
        if value.is_integer():
            assert cls.resolve_arch(int(value)) == cls.resolve_arch(name)
    for bad in (7.25, True):
        with pytest.raises(ValueError) as e:
            cls.resolve_arch(bad)
        msg = str(e.value)
        assert repr(bad) in msg and repr(sorted(cls.arch_settings)[0]) in msg


# Zero multipliers, ratios and widths that crashed deep inside the build
# (ZeroDivisionError, IndexError) or were accepted and built a broken network.
@pytest.mark.parametrize(
    'family,arch,key',
    [('ReXNet', dict(width_mult=0), 'width_mult'),  # was ZeroDivisionError
     ('ReXNet', dict(depth_mult=0), 'depth_mult'),  # was IndexError
     ('ReXNet', dict(se_ratio=0), 'se_ratio'),
     ('RegNet', {**family_class('RegNet').resolve_arch('regnetx_400mf'), 'q': 0}, 'q'),
     ('ResNeXt', dict(depths=(1, 1, 1, 1), cardinality=0), 'cardinality'),
     ('MobileNetV3', dict(stem_channels=0), 'stem_channels'),  # was accepted
     ('EfficientNet', dict(divisor=0), 'divisor')],
)  # fmt: skip
def test_non_positive_arch_values_are_refused(family: str, arch: dict, key: str) -> None:
    cls = family_class(family)
    with pytest.raises(ValueError, match=rf"{family}: arch\['{key}'\] must be > 0, got 0$"):
        cls(arch=arch)
    valid = {k: v for k, v in arch.items() if k != key}
    for other in cls.positive_arch_keys:  # every declared key is checked, negative too
        with pytest.raises(ValueError, match=rf"arch\['{other}'\] must be > 0, got -1"):
            cls.resolve_arch({**valid, other: -1})


def test_rexnet_numeric_presets() -> None:
    rexnet = family_class('ReXNet')
    assert rexnet.resolve_arch(1.3)['width_mult'] == 1.3
    assert rexnet.resolve_arch(1)['width_mult'] == 1.0
    assert rexnet.resolve_arch(2)['width_mult'] == 2.0


@pytest.mark.parametrize(
    'config,option',
    [('rexnet-1.3_ssdlite.py', 'model.backbone.arch=1.3'),
     ('rexnet_fasterrcnn_fpn.py', 'model.backbone.arch=1')],
)  # fmt: skip
def test_cfg_options_arch_number_is_accepted(tmp_path, capsys, monkeypatch, builtin_root,
                                             config, option) -> None:  # fmt: skip
    """mmengine parses the option as a float / int; the config must pass all checks (the
    backbone, the neck channels), so the first mistake left is the missing checkpoint."""
    monkeypatch.setenv('MMBACKBONES_DATA_ROOT', builtin_root)
    monkeypatch.chdir(tmp_path)
    argv = [osp.join(CONFIGS, config), 'missing.pth', '--builtin-data', '--cfg-options', option]
    run_main('test', argv, capsys, "'missing.pth'", 'does not exist')
    bad = [*argv[:-1], 'model.backbone.arch=1.25']
    run_main('test', bad, capsys, 'arch 1.25 (float)', "'1.3'")


# ------------------------------------------------------------------ the entry point
def test_what_counts_as_a_mistake(tmp_path) -> None:
    """User mistakes get a line; bugs (library errors, accidental errors in our code) keep
    their traceback."""
    assert cli.user_message(UserError('x', detail='  hint')) == 'x\n  hint'
    try:
        family_class('ReXNet').resolve_arch('9')  # our raise: a bad argument
    except ValueError as e:
        assert "unknown arch '9'" in cli.user_message(e)
    try:
        int('x')  # not a raise statement: a bug, wherever it happens
    except ValueError as e:
        assert cli.user_message(e) is None
    import numpy as np

    try:
        np.array([]).min()  # a library's error
    except ValueError as e:
        assert cli.user_message(e) is None
    try:
        open(tmp_path / 'nope.txt')
    except OSError as e:
        assert cli.user_message(e) == f'{tmp_path / "nope.txt"}: No such file or directory'
    assert cli.user_message(ZeroDivisionError('division by zero')) is None


def test_entry_point_status_codes(capsys) -> None:
    def bug(argv):
        return 1 / 0

    def interrupted(argv):
        raise KeyboardInterrupt

    def fine(argv):
        return argv

    assert cli.entry_point(fine)(['a', '--debug', 'b', '--', '--debug']) == [
        'a', 'b', '--', '--debug'
    ]  # fmt: skip
    with pytest.raises(ZeroDivisionError):
        cli.entry_point(bug)([])
    with pytest.raises(SystemExit) as e:
        cli.entry_point(interrupted)([])
    assert e.value.code == 130 and capsys.readouterr().err == 'interrupted\n'
    with pytest.raises(SystemExit) as e:
        cli.entry_point(lambda argv: cli.fail('-n must be >= 1, got 0'))([])
    assert e.value.code == 2 and capsys.readouterr().err == 'error: -n must be >= 1, got 0\n'


def test_write_to_an_impossible_place_names_it(tmp_path, capsys) -> None:
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 's.jsonl'  # a directory that is a file
    run_main('design_space', ['sample', '--space', 'resnet', '-n', '1', '-o', out], capsys,
             str(tmp_path / 'file'))  # fmt: skip

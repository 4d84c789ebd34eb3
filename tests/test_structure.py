"""The layout rules of the package (DESIGN.md, "Layout"): one home per fact, checked on
the source, so that a change that re-derives a family's table elsewhere or spreads a
private PyTorch API fails here."""

from __future__ import annotations

import ast
import os.path as osp
import re
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = Path(REPO) / 'mmbackbones'
SOURCES = sorted(PACKAGE.rglob('*.py'))
TOOLS = sorted((Path(REPO) / 'tools').glob('*.py'))
MAX_LINES = 700
#: each private PyTorch surface -> the one module allowed to use it (None: no module; the
#: prepacked oneDNN forms were removed, docs/speed.md says why)
PRIVATE_TORCH = {
    r'torch\.ops\.mkldnn': None,
    r'torch\._C\b': None,
    r'_python_dispatch': 'benchmark/memory.py',
    r'torch\._inductor': 'deploy/compile.py',
}


def _rel(path: Path) -> str:
    return osp.relpath(path, PACKAGE).replace(osp.sep, '/')


def test_sources_found() -> None:
    assert len(SOURCES) > 50 and any(_rel(p) == 'models/backbones/base.py' for p in SOURCES)


@pytest.mark.parametrize('path', SOURCES, ids=_rel)
def test_no_module_is_a_big_room(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f'{_rel(path)} has {n} lines (> {MAX_LINES}): split it by concern'


def _private_model_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(
            'mmbackbones.models'
        ):
            found += [f'{node.module}.{a.name}' for a in node.names if a.name.startswith('_')]
    return found


def test_nothing_outside_models_imports_private_model_names() -> None:
    outside = [p for p in SOURCES if not _rel(p).startswith('models/')] + TOOLS
    bad = {str(p.relative_to(REPO)): _private_model_imports(p) for p in outside}
    assert not {k: v for k, v in bad.items() if v}


def test_private_import_check_can_fail(tmp_path: Path) -> None:
    f = tmp_path / 'x.py'
    f.write_text('from mmbackbones.models.backbones.rexnet import _DEFAULT_ARCH\n')
    assert _private_model_imports(f) == ['mmbackbones.models.backbones.rexnet._DEFAULT_ARCH']


@pytest.mark.parametrize('pattern,home', PRIVATE_TORCH.items())
def test_private_torch_lives_in_one_module(pattern: str, home: str) -> None:
    users = sorted(_rel(p) for p in SOURCES if re.search(pattern, p.read_text()))
    assert users == ([home] if home else [])


def test_family_list_comes_from_the_registry() -> None:
    """No module keeps its own tuple of family names."""
    names = r"'ReXNet',\s*'MobileNetV3',\s*'EfficientNet'"
    users = [_rel(p) for p in SOURCES + TOOLS if re.search(names, p.read_text())]
    assert users == []

"""conftest.py's reference guard: with MMBACKBONES_REQUIRE_REFERENCES=1 a parity test
skipped for a missing timm / torchvision / onnxruntime fails the session; without it, it
stays a skip. Each case runs an inner pytest session (``pytester``) with this repository's
conftest.py, the reference package made unimportable there."""

from __future__ import annotations

import os.path as osp

import pytest

pytest_plugins = ['pytester']

CONFTEST = osp.join(osp.dirname(osp.abspath(__file__)), 'conftest.py')
VAR = 'MMBACKBONES_REQUIRE_REFERENCES'

# ``sys.modules[name] = None`` makes ``import name`` raise ImportError: the package is
# "not installed" for the inner session (pytester restores sys.modules afterwards).
PARITY_TEST = """
import sys
import pytest

sys.modules['timm'] = None


def test_parity_with_timm():
    timm = pytest.importorskip('timm')


def test_unrelated():
    assert 1 + 1 == 2
"""
MODULE_SKIP = """
import sys
import pytest

sys.modules['onnxruntime'] = None
ort = pytest.importorskip('onnxruntime')


def test_export():
    pass
"""
SUBMODULE_SKIP = """
import sys
import pytest

# (the submodule too: the outer session may have imported it already)
sys.modules['torchvision'] = sys.modules['torchvision.models'] = None


def test_parity_with_torchvision():
    pytest.importorskip('torchvision.models')
"""
OTHER_SKIPS = """
import sys
import pytest

sys.modules['mmdet'] = None


def test_needs_mmdet():
    pytest.importorskip('mmdet')


def test_needs_a_gpu():
    pytest.skip('needs a GPU')


@pytest.mark.xfail(reason='No module named timm', run=False)
def test_xfail():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run ``source`` as an inner session with the real conftest.py, the variable set
    to ``required`` (or unset)."""
    with open(CONFTEST) as f:
        pytester.makeconftest(f.read())

    def run(source: str, required: str | None) -> pytest.RunResult:
        if required is None:
            monkeypatch.delenv(VAR, raising=False)
        else:
            monkeypatch.setenv(VAR, required)
        pytester.makepyfile(test_inner=source)
        return pytester.runpytest('-p', 'no:cacheprovider')

    return run


def test_required_fails_on_a_skipped_parity_test(inner) -> None:
    result = inner(PARITY_TEST, '1')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            f'*{VAR}=1: reference parity not run*',
            'SKIPPED test_inner.py::test_parity_with_timm: timm is not importable',
            'FAILED: 1 test(s)/module(s) skipped because timm could not be imported*',
        ]
    )


def test_not_required_only_skips(inner) -> None:
    for required in (None, '0'):
        result = inner(PARITY_TEST, required)
        assert result.ret == pytest.ExitCode.OK
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(['note: 1 test(s)/module(s) skipped because timm*'])
        result.stdout.no_fnmatch_line('FAILED*')


def test_required_fails_on_a_module_skipped_at_import(inner, pytester) -> None:
    pytester.makepyfile(test_other='def test_ok():\n    pass\n')  # else: no tests, exit 5
    result = inner(MODULE_SKIP, '1')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            'SKIPPED test_inner.py: onnxruntime is not importable',
            'FAILED: 1 test(s)/module(s) skipped because onnxruntime could not be imported*',
        ]
    )


def test_required_names_the_package_of_a_submodule(inner) -> None:
    result = inner(SUBMODULE_SKIP, '1')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ['SKIPPED test_inner.py::test_parity_with_torchvision: torchvision is not importable']
    )


def test_other_skips_do_not_fail(inner) -> None:
    # a package that is not a reference (mmdet), a plain skip, an xfail mentioning timm
    result = inner(OTHER_SKIPS, '1')
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=2, xfailed=1)
    result.stdout.no_fnmatch_line('*reference parity*')


def test_a_failing_session_keeps_its_own_exit_status(inner) -> None:
    result = inner(PARITY_TEST + '\n\ndef test_broken():\n    assert False\n', '1')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    result.stdout.fnmatch_lines(['SKIPPED test_inner.py::test_parity_with_timm: timm*'])

"""mmbackbones.deploy.onednn: the private oneDNN ops' self-test says ok=False, with the
reason, for a missing op, an exception, a wrong or NaN result and a frozen ``_version``;
it never raises, and runs once per process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mmbackbones.deploy import onednn

needs_ops = pytest.mark.skipif(not onednn.probe().ok, reason=onednn.probe().reason)


@pytest.fixture
def fresh_probe(monkeypatch):
    """Uncached ops and probe during the test, and again after it (the real answers)."""
    cached = (onednn._ops, onednn.probe)  # the test may replace them
    for fn in cached:
        fn.cache_clear()
    yield monkeypatch
    for fn in cached:
        fn.cache_clear()


def _with_op(monkeypatch, **fakes) -> None:
    """The real private ops, some replaced by ``fakes``."""
    real = vars(onednn._find_ops())
    monkeypatch.setattr(onednn, '_ops', lambda: SimpleNamespace(**{**real, **fakes}))


@needs_ops
def test_probe_passes_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    assert onednn.self_test() == onednn.ProbeResult(True, 'self-test passed')
    assert torch.equal(torch.get_rng_state(), state)


def test_probe_runs_once(fresh_probe) -> None:
    calls = []

    def self_test() -> onednn.ProbeResult:
        calls.append(1)
        return onednn.ProbeResult(True, 'self-test passed')

    fresh_probe.setattr(onednn, 'self_test', self_test)
    assert onednn.probe() is onednn.probe()
    assert calls == [1]


def test_probe_reports_a_build_without_onednn(fresh_probe) -> None:
    fresh_probe.setattr(torch.backends.mkldnn, 'is_available', lambda: False)
    result = onednn.self_test()
    assert not result.ok and 'has no oneDNN' in result.reason


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='no oneDNN')
def test_probe_reports_a_missing_op(fresh_probe) -> None:
    missing = 'torch.ops.mkldnn._no_such_op_for_mmbackbones.default'
    fresh_probe.setitem(onednn.PRIVATE_OPS, 'conv', missing)
    result = onednn.self_test()
    assert not result.ok
    assert result.reason == f'{missing} is missing in torch {torch.__version__}'
    fresh_probe.setitem(onednn.PRIVATE_OPS, 'reorder', 'torch._C._nn.no_such_reorder')
    fresh_probe.delitem(onednn.PRIVATE_OPS, 'conv')
    assert 'torch._C._nn.no_such_reorder is missing' in onednn.self_test().reason


@needs_ops
def test_probe_reports_an_exception(fresh_probe) -> None:
    def broken(*args):
        raise RuntimeError('mkldnn: unsupported post-op\nlong C++ backtrace')

    _with_op(fresh_probe, conv_add=broken)
    result = onednn.self_test()
    assert result == onednn.ProbeResult(False, 'RuntimeError: mkldnn: unsupported post-op')


@needs_ops
@pytest.mark.parametrize('error', [1e-3, float('nan')])
def test_probe_reports_a_wrong_result(fresh_probe, error: float) -> None:
    real = onednn._find_ops().conv
    _with_op(fresh_probe, conv=lambda *args: real(*args) + error)
    result = onednn.self_test()
    assert not result.ok and 'results differ from F.conv2d by' in result.reason
    assert f'{error:.3g}' in result.reason


@needs_ops
def test_probe_reports_an_in_place_op_that_does_not_write(fresh_probe) -> None:
    real = onednn._find_ops().conv_add
    _with_op(fresh_probe, conv_add_=lambda other, x, *args: real(x, other, *args))
    result = onednn.self_test()
    assert not result.ok and 'did not write into its addend' in result.reason


@needs_ops
def test_probe_reports_a_frozen_version_counter(fresh_probe) -> None:
    fresh_probe.setattr(onednn, 'weight_stamp', lambda t: (t.data_ptr(), 0))
    result = onednn.self_test()
    assert not result.ok and '_version does not change' in result.reason


@needs_ops
def test_weight_stamp_follows_in_place_writes_and_new_storage() -> None:
    w = torch.zeros(4)
    stamp = onednn.weight_stamp(w)
    assert onednn.weight_stamp(w) == stamp
    w.add_(1)
    assert onednn.weight_stamp(w) != stamp
    stamp = onednn.weight_stamp(w)
    w.data = torch.zeros(4)
    assert onednn.weight_stamp(w) != stamp

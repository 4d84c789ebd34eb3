"""Print the versions mmbackbones depends on and flag known-bad combinations.

    python -m mmbackbones.check_env

Checks (each a pure function of version strings and flags, unit-tested with fake
versions):

* mmdet 3.x and mmseg 1.x assert ``mmcv < 2.2.0`` in their ``__init__``: with mmcv 2.2
  they cannot even be imported (mmcv has no wheels for recent torch on PyPI; the
  bootstrap script builds 2.1.0).
* torch >= 2.6 loads with ``weights_only=True``; mmengine checkpoints (``--resume``)
  then need the allow-list that ``import mmbackbones`` installs
  (:func:`mmbackbones.checkpoint.allow_mmengine_checkpoints`). It is verified by
  actually loading a small mmengine-style checkpoint.
* mmcv without its compiled ops (``mmcv._ext``): RoIAlign and NMS are unavailable, so the
  R-CNN configs and detection post-processing cannot run.

Exit status: 0 when no known-bad combination is found, 1 otherwise (all findings are
printed either way; warnings do not count).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

BOOTSTRAP_FIX = 'install mmcv 2.1.0 (see tools/bootstrap_env.sh)'
#: (host package, its major version, mmcv range it asserts)
MMCV_RANGES = {'mmdet': (3, '2.0.0rc4', '2.2.0'), 'mmseg': (1, '2.0.0rc4', '2.2.0')}
#: reported name -> distribution names to look up (first installed wins)
PACKAGES = {
    'torch': ('torch',),
    'torchvision': ('torchvision',),
    'mmcv': ('mmcv', 'mmcv-full', 'mmcv-lite'),
    'mmengine': ('mmengine',),
    'mmdet': ('mmdet',),
    'mmseg': ('mmsegmentation',),
    'timm': ('timm',),
    'onnx': ('onnx',),
    'onnxruntime': ('onnxruntime', 'onnxruntime-gpu'),
}


@dataclass(frozen=True)
class Finding:
    """One check result. ``ok=False`` marks a known-bad combination (exit status 1);
    ``warn`` one that works, but worse (shown as ``[WARN]``, exit status unaffected)."""

    ok: bool
    message: str
    fix: str = ''
    warn: bool = False

    def __str__(self) -> str:
        tag = 'FAIL' if not self.ok else 'WARN' if self.warn else 'OK  '
        return f'[{tag}] {self.message}' + (f'\n       fix: {self.fix}' if self.fix else '')


def parse_version(version: str | None) -> Version | None:
    """``'2.1.0+cu118'`` -> ``Version('2.1.0')`` (local part dropped); ``None`` if absent
    or unparsable.

    Example:
        >>> parse_version('2.14.1+cu130'), parse_version(None)
        (<Version('2.14.1')>, None)
    """
    if not version:
        return None
    try:
        return Version(Version(version).public)
    except InvalidVersion:
        return None


def check_mmcv_hosts(
    mmcv: str | None, mmdet: str | None = None, mmseg: str | None = None
) -> list[Finding]:
    """mmcv against what mmdet 3.x / mmseg 1.x assert at import.

    Example:
        >>> [f.ok for f in check_mmcv_hosts('2.2.0', mmdet='3.3.0')]
        [False]
        >>> [f.ok for f in check_mmcv_hosts('2.1.0', mmdet='3.3.0', mmseg='1.2.2')]
        [True, True]
    """
    found = []
    v_mmcv = parse_version(mmcv)
    for name, version in (('mmdet', mmdet), ('mmseg', mmseg)):
        v = parse_version(version)
        if v is None:
            continue
        major, lo, hi = MMCV_RANGES[name]
        if v.major != major:
            continue
        if v_mmcv is None:
            found.append(
                Finding(False, f'{name} {version} needs mmcv, which is missing', BOOTSTRAP_FIX)
            )
        elif not Version(lo) <= v_mmcv < Version(hi):
            found.append(
                Finding(
                    False,
                    f'{name} {version} requires {lo} <= mmcv < {hi} (its __init__ asserts '
                    f'it), found mmcv {mmcv}: `import {name}` fails',
                    BOOTSTRAP_FIX,
                )
            )
        else:
            found.append(Finding(True, f'{name} {version} accepts mmcv {mmcv}'))
    return found


def check_torch_load(torch: str | None, allowlist_active: bool) -> list[Finding]:
    """torch >= 2.6 (``weights_only=True`` by default) needs the mmengine allow-list.

    Example:
        >>> [f.ok for f in check_torch_load('2.6.0', allowlist_active=False)]
        [False]
        >>> [f.ok for f in check_torch_load('2.5.1', allowlist_active=False)]
        [True]
    """
    v = parse_version(torch)
    if v is None or v < Version('2.6'):
        return [Finding(True, f'torch {torch}: torch.load does not default to weights_only')]
    if allowlist_active:
        return [
            Finding(
                True,
                f'torch {torch} loads with weights_only=True; the mmengine checkpoint '
                'allow-list is active (resume works)',
            )
        ]
    return [
        Finding(
            False,
            f'torch {torch} loads with weights_only=True and the mmengine checkpoint '
            'allow-list is not active: --resume / load_from of mmengine checkpoints fails',
            "import mmbackbones before loading (configs: custom_imports=['mmbackbones.models']"
            '), which calls mmbackbones.checkpoint.allow_mmengine_checkpoints()',
        )
    ]


def check_mmcv_ops(mmcv: str | None, ops_ok: bool) -> list[Finding]:
    """mmcv's compiled ops (``mmcv._ext``): RoIAlign and NMS for the detection configs.

    Example:
        >>> [f.ok for f in check_mmcv_ops('2.1.0', ops_ok=False)]
        [False]
    """
    if mmcv is None:
        return [Finding(False, 'mmcv is not installed (the backbones need it)', BOOTSTRAP_FIX)]
    if ops_ok:
        return [Finding(True, f'mmcv {mmcv} compiled ops (mmcv._ext) import')]
    return [
        Finding(
            False,
            f'mmcv {mmcv} has no compiled ops (mmcv._ext does not import, e.g. mmcv-lite '
            'or a build without ops): RoIAlign/NMS unavailable, the R-CNN configs and '
            'detection post-processing cannot run',
            BOOTSTRAP_FIX + ', which builds mmcv with its ops',
        )
    ]


def run_checks(
    versions: dict[str, str | None],
    ops_ok: bool,
    allowlist_active: bool,
) -> list[Finding]:
    """All checks on a version table (as :func:`collect_versions` returns)."""
    return [
        *check_mmcv_ops(versions.get('mmcv'), ops_ok),
        *check_mmcv_hosts(versions.get('mmcv'), versions.get('mmdet'), versions.get('mmseg')),
        *check_torch_load(versions.get('torch'), allowlist_active),
    ]


# ------------------------------------------------------------- the impure part: probing
def collect_versions() -> dict[str, str | None]:
    """Installed versions (package metadata: nothing is imported, so a broken mmdet
    cannot stop the report). ``None`` for packages that are not installed."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {'python': sys.version.split()[0]}
    for name, dists in PACKAGES.items():
        out[name] = None
        for dist in dists:
            try:
                out[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return out


def mmcv_ops_available() -> bool:
    """Whether mmcv's compiled extension imports."""
    try:
        import mmcv._ext  # noqa: F401
    except Exception:  # ImportError, or OSError for an ABI-mismatched build
        return False
    return True


def mmengine_allowlist_active() -> bool:
    """Whether a small mmengine-style checkpoint (a ``HistoryBuffer`` and numpy values,
    as ``MessageHub`` pickles them) loads with ``weights_only=True`` after
    ``import mmbackbones``."""
    import io

    import numpy as np
    import torch

    import mmbackbones  # noqa: F401  (installs the allow-list)

    try:
        from mmengine.logging import HistoryBuffer

        buf = io.BytesIO()
        hub = HistoryBuffer()
        hub.update(1.0)
        torch.save({'message_hub': {'loss': hub, 'iter': np.int64(3)}}, buf)
        buf.seek(0)
        torch.load(buf, weights_only=True)
    except Exception:
        return False
    return True


def main() -> int:
    versions = collect_versions()
    cuda = ''
    if versions['torch'] is not None:
        import torch

        cuda = f' (CUDA available: {torch.cuda.is_available()})'
    ops_ok = versions['mmcv'] is not None and mmcv_ops_available()
    allow = (
        versions['torch'] is not None
        and versions['mmengine'] is not None
        and (mmengine_allowlist_active())
    )
    print('mmbackbones environment')
    for name, v in versions.items():
        extra = cuda if name == 'torch' else ''
        if name == 'mmcv' and v is not None:
            extra = f' (compiled ops mmcv._ext: {"yes" if ops_ok else "NO"})'
        print(f'  {name:<12} {v or "not installed"}{extra}')
    if versions['torch'] is not None:
        from mmbackbones.deploy.compile import cpp_compiler

        cxx = cpp_compiler()
        print(
            f'  {"c++":<12} '
            + (cxx or 'not found: mmbackbones.deploy.compile_for_inference is unavailable')
            + ' (torch.compile CPU kernels)'
        )
    findings = run_checks(versions, ops_ok, allow)
    print('checks')
    for f in findings:
        print('  ' + str(f).replace('\n', '\n  '))
    bad = [f for f in findings if not f.ok]
    warned = sum(f.warn for f in findings)
    summary = f'{len(bad)} problem(s) found' if bad else 'no known-bad combination found'
    print(summary + (f', {warned} warning(s)' if warned else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

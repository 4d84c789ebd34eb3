#!/usr/bin/env bash
# Create or reuse .venv with everything mmbackbones needs (see README "Environment").
#
# Why this script exists instead of a plain `pip install -e .`:
#  * mmcv has no binary wheels on PyPI and mmdet 3.3 / mmseg 1.2 need mmcv>=2.0,<2.2,
#    so mmcv 2.1.0 is built from source with its compiled ops (~20 min on 2 cores).
#  * torch 2.14 headers need C++20 while mmcv 2.1.0's setup.py hard-codes -std=c++17,
#    so the sdist is patched before building.
#  * The built wheel is cached (MMBACKBONES_WHEEL_CACHE, default ~/.cache/mmbackbones)
#    so later bootstraps on the same machine take seconds.
#  * mmcv's setup.py and mmengine (resolving `mmdet::` bases) import pkg_resources,
#    so setuptools<81 is pinned after everything else is installed.
set -euo pipefail

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_VERSION=2.1.0
CACHE=${MMBACKBONES_WHEEL_CACHE:-$HOME/.cache/mmbackbones/wheels}
STAMP="$VENV/.mmbackbones-env"
REQ_HASH=$(cat setup.py tools/bootstrap_env.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQ_HASH" ]; then
  exit 0
fi

log() { printf '[bootstrap] %s\n' "$*"; }
t0=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
VPY="$(cd "$VENV" && pwd)/bin/python"
PIP="$VPY -m pip"
$PIP install -q --upgrade pip wheel "setuptools<81" ninja

if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  log "installing $TORCH_SPEC"
  # shellcheck disable=SC2086
  $PIP install -q $TORCH_SPEC
fi

if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  TORCH_TAG=$("$VENV/bin/python" -c "import torch; print(torch.__version__.replace('+', '_'))")
  WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_TAG"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with compiled ops from source (about 20 minutes on 2 cores; cached afterwards in $WHEEL_DIR)"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # The sdist through pip itself, so the user's pip configuration (index-url, mirrors,
    # proxies, certificates) applies. Preparing its metadata imports torch (installed
    # above), hence --no-build-isolation; --no-binary keeps pip from picking a wheel.
    $PIP download -q --no-deps --no-binary mmcv --no-build-isolation \
      -d "$work" "mmcv==$MMCV_VERSION"
    if [ ! -f "$work/mmcv-$MMCV_VERSION.tar.gz" ]; then
      log "pip download did not produce mmcv-$MMCV_VERSION.tar.gz in $work: $(ls "$work")"
      exit 1
    fi
    tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
    # torch>=2.10 headers use C++20 features.
    sed -i 's/-std=c++17/-std=c++20/g; s/-std=c++14/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$WHEEL_DIR"
    (cd "$work/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "$VPY" -m pip wheel --no-build-isolation --no-deps -w "$WHEEL_DIR" . )
  fi
  log "installing cached mmcv wheel from $WHEEL_DIR"
  $PIP install -q --no-deps "$WHEEL_DIR"/mmcv-*.whl
  # mmcv's runtime requirements (the wheel was installed with --no-deps).
  $PIP install -q addict "mmengine==0.10.7" "numpy" packaging Pillow pyyaml yapf opencv-python-headless
fi

log "installing mmbackbones and its dependencies"
$PIP install -q -e ".[tests,convert,onnx,openvino,sweep]"
$PIP install -q "setuptools<81"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmengine, timm, torchvision; print('[bootstrap] ok: torch', __import__('torch').__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
echo "$REQ_HASH" > "$STAMP"
log "done in $(( $(date +%s) - t0 ))s"

#!/usr/bin/env bash
# Sets up a machine for corrops: a virtualenv at .venv with the pinned
# requirements, and corrops built (CMake) and installed in editable mode.
# Assumes only python3 (with venv), a C++ compiler and access to the package
# index. Run again, it installs nothing new and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quiet.sh
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "corrops setup: creating .venv"
  "$PY" -m venv .venv
fi
echo "corrops setup: installing requirements-dev.txt (TensorFlow, JAX, PyTorch and the build and test tools)"
mkdir -p build
# pip's "Collecting"/"Installing" lines are shown (a first install downloads
# about 1.5 GB); the whole output is in build/pip.log.
pip_install() {
  {
    .venv/bin/python -m pip install --upgrade pip
    .venv/bin/python -m pip install -r requirements-dev.txt
  } 2>&1 | tee build/pip.log |
    grep -E --line-buffered '^(Collecting|Installing collected|Successfully installed|ERROR)' |
    cut -c1-160 | sed -u 's/^/  /' || true
}
heartbeat "installing" pip_install
if grep -q '^ERROR' build/pip.log; then
  echo "corrops setup: installing the requirements failed (full log: build/pip.log)" >&2
  exit 1
fi
cuda="CORROPS_CUDA=${CORROPS_CUDA:-auto}"
if [ "${CORROPS_CUDA:-auto}" != off ] && { command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  estimate="about 6 minutes on 2 cores the first time, with the CUDA kernels: nvcc found, $cuda; CORROPS_CUDA=off skips them"
else
  estimate="about 4.5 minutes on 2 cores the first time; $cuda, no CUDA kernels"
fi
echo "corrops setup: building the op library ($estimate)"
log=build/bootstrap.log
# --no-build-isolation: build against the TensorFlow just installed in .venv.
# CMake's progress lines are shown; the whole log is in build/bootstrap.log.
build() { .venv/bin/python -m pip install -v --no-build-isolation -e . 2>&1 | cmake_progress "$log"; }
if ! heartbeat "building" build; then
  tail -n 40 "$log"
  echo "corrops setup: the build failed (full log: $log)" >&2
  exit 1
fi
tf_quiet .venv/bin/python -c "import corrops, sys; ok = corrops.fused_available(); print('corrops', corrops.__version__, 'fused op:', 'loaded' if ok else corrops.unavailable_reason()); sys.exit(0 if ok else 1)"

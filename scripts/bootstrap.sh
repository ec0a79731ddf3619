#!/usr/bin/env bash
# Sets up a machine for corrops: a virtualenv at .venv with the pinned
# requirements, and corrops built (CMake) and installed in editable mode.
# Assumes only python3 (with venv), a C++ compiler and access to the package
# index. Run again, it installs nothing new and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "corrops setup: creating .venv"
  "$PY" -m venv .venv
fi
echo "corrops setup: installing requirements-dev.txt (TensorFlow and the build and test tools)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
echo "corrops setup: building the op library (about 2 minutes on 2 cores the first time)"
mkdir -p build
log=build/bootstrap.log
# --no-build-isolation: build against the TensorFlow just installed in .venv.
# CMake's progress lines are shown; the whole log is in build/bootstrap.log.
if ! .venv/bin/python -m pip install -v --no-build-isolation -e . 2>&1 | tee "$log" |
  awk '/^ *\[ *[0-9]+%\] (Building|Linking)/ { sub(/^ */, "  "); print; fflush() }'; then
  tail -n 40 "$log"
  echo "corrops setup: the build failed (full log: $log)" >&2
  exit 1
fi
TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python -c "import corrops, sys; ok = corrops.fused_available(); print('corrops', corrops.__version__, 'fused op:', 'loaded' if ok else corrops.unavailable_reason()); sys.exit(0 if ok else 1)"

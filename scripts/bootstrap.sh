#!/usr/bin/env bash
# Sets up a fresh machine for corrops: a virtualenv at .venv with the pinned
# requirements, and corrops built (CMake) and installed in editable mode.
# Assumes only python3 (with venv), a C++ compiler and access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
# --no-build-isolation: build against the TensorFlow just installed in .venv.
.venv/bin/python -m pip install --quiet --no-build-isolation -e .
.venv/bin/python -c "import corrops, sys; ok = corrops.fused_available(); print('corrops', corrops.__version__, 'fused op:', 'loaded' if ok else corrops.unavailable_reason()); sys.exit(0 if ok else 1)"

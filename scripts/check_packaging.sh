#!/usr/bin/env bash
# Packaging check: `pip install .` (isolated build, TF from the build
# requirements) into a fresh virtualenv, then use corrops from outside the
# source tree: the fused op must load and agree with the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet .
cd "$work"
TF_CPP_MIN_LOG_LEVEL=3 "$work/venv/bin/python" - <<'PY'
import numpy as np
import corrops

assert "site-packages" in corrops.__file__, corrops.__file__
assert corrops.fused_available(), corrops.unavailable_reason()
x, y = np.random.default_rng(0).random((2, 4, 30, 3))
fused = corrops.corr_loss(x, y, impl="fused").numpy()
fallback = corrops.corr_loss(x, y, impl="tf").numpy()
np.testing.assert_allclose(fused, fallback, rtol=1e-12, atol=1e-12)
print("packaging: installed wheel OK, built for TF", corrops.build_info()["tf_version"])
PY

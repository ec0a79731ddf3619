#!/usr/bin/env bash
# Packaging check: `pip install .` (isolated build, TF from the build
# requirements) into a fresh virtualenv, then use corrops from outside the
# source tree: the fused op must load and agree with the fallback, eagerly
# and as an XLA custom call. The wheel is built without CUDA
# (CORROPS_CUDA=off), as on a machine without nvcc; the test suite's build
# covers the CUDA kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quiet.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
echo "packaging check: pip install . into a fresh virtualenv (an isolated build, without CUDA)"
heartbeat "installing" env CORROPS_CUDA=off "$work/venv/bin/python" -m pip install --quiet .
cd "$work"
TF_CPP_MIN_LOG_LEVEL=3 "$work/venv/bin/python" - <<'PY'
import numpy as np
import tensorflow as tf

import corrops

assert "site-packages" in corrops.__file__, corrops.__file__
assert corrops.fused_available(), corrops.unavailable_reason()
assert not corrops.build_info()["cuda"], corrops.build_info()
x, y = np.random.default_rng(0).random((2, 4, 30, 3))
fused = corrops.corr_loss(x, y, impl="fused").numpy()
fallback = corrops.corr_loss(x, y, impl="tf").numpy()
np.testing.assert_allclose(fused, fallback, rtol=1e-12, atol=1e-12)


@tf.function(jit_compile=True, autograph=False)  # source read from stdin
def in_xla(a, b):
    return corrops.corr_loss(a, b, impl="fused")


np.testing.assert_array_equal(in_xla(x, y).numpy(), fused)
assert corrops.last_choice()["reason"].startswith("fused (XLA custom call)"), corrops.last_choice()
print("packaging: installed wheel OK (CPU only), built for TF", corrops.build_info()["tf_version"])
PY

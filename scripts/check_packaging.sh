#!/usr/bin/env bash
# Packaging check, two fresh virtualenvs, corrops used from outside the
# source tree:
# 1. `pip install '.[tensorflow]'` (isolated build, TF from the build
#    requirements): the fused op must load and agree with the fallback,
#    eagerly and as an XLA custom call.
# 2. Without TensorFlow (`pip install --no-build-isolation .` where only the
#    build tools and the oldest supported jax are installed): numpy is the
#    only dependency, corrops.numpy works, the JAX binding is built and, with
#    jax upgraded to the tested version, runs the fused calls, and the
#    TensorFlow names say what to install.
# Both are built without CUDA (CORROPS_CUDA=off), as on a machine without
# nvcc; the test suite's build covers the CUDA kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/quiet.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
src=$PWD
echo "packaging check: pip install '.[tensorflow]' into a fresh virtualenv (an isolated build, without CUDA)"
heartbeat "installing" env CORROPS_CUDA=off "$work/venv/bin/python" -m pip install --quiet ".[tensorflow]"
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

echo "packaging check: a build without TensorFlow (pip install --no-build-isolation . beside numpy, jax and the build tools)"
python3 -m venv "$work/bare"
"$work/bare/bin/python" -m pip install --quiet --upgrade pip
# The JAX binding is built against the oldest jaxlib corrops supports (the
# lower bound of setup.py's JAX_REQUIREMENT) and run with the tested one
# (requirements-dev.txt): the FFI headers of the oldest serve the whole range.
oldest=$(sed -nE 's/^JAX_REQUIREMENT = "jax>=([0-9.]+),.*/\1/p' "$src/setup.py")
tested=$(grep -E '^jax==' "$src/requirements-dev.txt")
heartbeat "installing" "$work/bare/bin/python" -m pip install --quiet setuptools wheel cmake \
  pybind11 numpy "jax==$oldest" "jaxlib==$oldest"
heartbeat "installing" env CORROPS_CUDA=off "$work/bare/bin/python" -m pip install --quiet \
  --no-build-isolation "$src"
heartbeat "installing" "$work/bare/bin/python" -m pip install --quiet --upgrade "$tested" \
  "jaxlib==${tested#jax==}"
"$work/bare/bin/python" - <<'PY'
import sys

import numpy as np

import corrops
import corrops.numpy as cnp

assert "site-packages" in corrops.__file__, corrops.__file__
info = corrops.build_info()
assert info["tf_version"] == "" and not info["torch"], info
x, y = np.random.default_rng(0).random((2, 4, 30))
r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(x, y, strict=True)])
np.testing.assert_allclose(cnp.corrcoef(x, y), r, rtol=1e-5)
np.testing.assert_allclose(cnp.corr_loss(x, y).mean(axis=1), 1 - r, rtol=1e-5)

import jax  # noqa: E402

import corrops.jax as cj  # noqa: E402

assert cj.available() and info["jax"], info
built, running = info["jax_version"], jax.__version__
assert built != running, (built, running)  # built with the oldest, run with the tested
for dtype in ("float16", "bfloat16", "float32"):  # the engine's 16-bit types, no Eigen
    fused = np.asarray(cj.corr_loss(x.astype(dtype), y.astype(dtype)), np.float64)
    np.testing.assert_allclose(fused.mean(axis=1), 1 - r, atol=0.05 if "16" in dtype else 1e-5)
assert "tensorflow" not in sys.modules
try:
    corrops.corr_loss
except ImportError as err:
    assert "corrops[tensorflow]" in str(err), err
else:
    raise AssertionError("corrops.corr_loss without TensorFlow did not raise")
assert not {"tensorflow", "torch"} & set(sys.modules)
print(f"packaging: TensorFlow-free install OK (corrops.numpy; corrops.jax fused, built with jax {built}, run with {running}; numpy the only dependency)")
PY

"""Library loading: a missing or mismatched library means a warning once and
the fallback, never an import error. Runs in subprocesses (fresh load state)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import corrops
from corrops.tensorflow import _loader

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import corrops
        rng = np.random.default_rng(0)
        x, y = rng.random((3, 20, 2)), rng.random((3, 20, 2))
        a = corrops.corr_loss(x, y).numpy()
        b = corrops.corr_loss(x, y, method="ccc").numpy()
        c = corrops.corrcoef(x, y).numpy()
    mine = [str(w.message) for w in caught if "corrops" in str(w.message)]
    try:
        corrops.corr_loss(x, y, impl="fused")
        fused_error = None
    except corrops.FusedOpUnavailableError as err:
        fused_error = str(err)
    print(json.dumps({"available": corrops.fused_available(), "warnings": mine,
                      "fused_error": fused_error, "choice": corrops.last_choice(),
                      "loss": a.tolist(), "ccc": b.tolist(), "coef": c.tolist()}))
    """
)


def _run(env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def baseline() -> dict:
    result = _run({})
    assert result["available"] and result["warnings"] == [] and result["fused_error"] is None
    return result


def _same_numbers(a: dict, b: dict) -> None:
    import numpy as np

    for key in ("loss", "ccc", "coef"):
        np.testing.assert_allclose(np.array(a[key]), np.array(b[key]), rtol=1e-12, atol=1e-12)


def test_missing_library_falls_back_with_one_warning(baseline, tmp_path):
    result = _run({"CORROPS_OPS_LIBRARY": str(tmp_path / "nope" / "_corrops_ops.so")})
    assert result["available"] is False
    assert len(result["warnings"]) == 1 and "fallback" in result["warnings"][0]
    assert "does not exist" in result["fused_error"]
    assert result["choice"]["impl"] == "tf"
    _same_numbers(result, baseline)


def test_library_built_for_other_tensorflow_is_not_loaded(baseline, tmp_path):
    lib = tmp_path / "_corrops_ops.so"
    shutil.copy(_loader.library_path(), lib)
    info = dict(_loader.build_info(), tf_version="2.99.0")
    (tmp_path / "_build_info.json").write_text(json.dumps(info))
    result = _run({"CORROPS_OPS_LIBRARY": str(lib)})
    assert result["available"] is False and len(result["warnings"]) == 1
    assert "built for TensorFlow 2.99.0" in result["fused_error"]
    _same_numbers(result, baseline)


def test_corrupt_library_falls_back(baseline, tmp_path):
    lib = tmp_path / "_corrops_ops.so"
    lib.write_bytes(b"not an ELF file")
    (tmp_path / "_build_info.json").write_text(json.dumps(_loader.build_info()))
    result = _run({"CORROPS_OPS_LIBRARY": str(lib)})
    assert result["available"] is False and len(result["warnings"]) == 1
    assert "loading" in result["fused_error"]
    _same_numbers(result, baseline)


def test_build_info_records_tensorflow_version():
    import tensorflow as tf

    info = corrops.build_info()
    assert info["tf_version"] == tf.__version__
    assert isinstance(info["cuda"], bool)


def test_load_ops_is_idempotent_and_gradient_registered_once():
    import tensorflow as tf

    assert corrops.load_ops() is corrops.load_ops()
    import importlib

    from corrops.tensorflow import _fused

    importlib.reload(_fused)  # re-registering must not raise
    x = tf.constant([[1.0, 2.0, 4.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = corrops.corr_loss(x, x * x, impl="fused")
    assert tape.gradient(loss, x) is not None

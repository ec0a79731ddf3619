"""Dispatch: the fused op everywhere it can run, inside XLA as custom calls
(a library without them: tests/test_xla.py); SavedModels containing the op
load after corrops.load_ops()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests import reference as ref


@pytest.mark.parametrize("impl", ["auto", "fused"])
def test_inside_xla_the_fused_op_runs_as_custom_calls(rng, impl):
    x = rng.random((4, 30, 2)).astype(np.float32)
    y = rng.random((4, 30, 2)).astype(np.float32)

    @tf.function(jit_compile=True)
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            loss = corrops.corr_loss(a, b, impl=impl)
            total = tf.reduce_mean(loss)
        return loss, tape.gradient(total, b)

    loss, grad = step(x, y)
    assert corrops.last_choice()["impl"] == "fused"
    assert "XLA custom call" in corrops.last_choice()["reason"]
    np.testing.assert_allclose(np.asarray(loss), ref.corr_loss(x, y), rtol=1e-4, atol=1e-5)
    assert np.isfinite(np.asarray(grad)).all()


def test_auto_uses_fused_outside_xla(rng):
    corrops.corr_loss(rng.random((2, 5)), rng.random((2, 5)), impl="auto")
    assert corrops.last_choice()["impl"] == "fused"


def test_saved_model_with_fused_op_loads_in_new_process(tmp_path, rng):
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2)
        def loss(self, a, b):
            return corrops.corr_loss(a, b, impl="fused")

    path = str(tmp_path / "model")
    tf.saved_model.save(Module(), path)
    x = rng.random((3, 8)).astype(np.float32)
    y = rng.random((3, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    script = textwrap.dedent(
        f"""
        import numpy as np, tensorflow as tf, corrops
        corrops.load_ops()
        m = tf.saved_model.load({path!r})
        out = m.loss(np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / "y.npy")!r}))
        np.save({str(tmp_path / "out.npy")!r}, out.numpy())
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), ref.corr_loss(x, y), rtol=1e-4, atol=1e-5
    )

"""The fallback's row reductions (corrops/tensorflow/_row_reduce.py): one XLA variadic
reduce inside XLA, TF reductions elsewhere, the same values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from corrops.tensorflow import _row_reduce
from tests.helpers import MODES, call_in_mode


def _inputs(rng, shape, dtype=tf.float64):
    return [tf.constant(rng.normal(size=shape), dtype) for _ in range(3)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(4, 7), (3, 50, 2, 3), (2, 0), (5, 1)], ids=str)
def test_sums_and_maxima_equal_tf_reductions(rng, mode, shape):
    tensors = _inputs(rng, shape)
    sums = call_in_mode(mode, lambda *t: _row_reduce.row_sums(list(t)), *tensors)
    maxima = call_in_mode(mode, lambda *t: _row_reduce.row_maxima(list(t)), *tensors)
    for t, s, m in zip(tensors, sums, maxima, strict=True):
        np.testing.assert_allclose(s.numpy(), tf.reduce_sum(t, 1, keepdims=True), rtol=1e-12)
        # A row without steps has -inf as its maximum, in every mode.
        np.testing.assert_array_equal(m.numpy(), tf.reduce_max(t, 1, keepdims=True))


def test_one_variadic_reduce_inside_xla(rng):
    tensors = _inputs(rng, (4, 40))

    @tf.function(jit_compile=True)
    def both(a, b, c):
        return _row_reduce.row_sums([a, b * c]), _row_reduce.row_maxima([a, b, c])

    hlo = both.experimental_get_compiler_ir(*tensors)(stage="hlo")
    reduces = [line for line in hlo.splitlines() if " reduce(" in line]
    # Two reductions in all, each returning a tuple: one pass per call.
    assert len(reduces) == 2, reduces
    assert all(line.split("=")[1].strip().startswith("(") for line in reduces), reduces


@pytest.mark.parametrize("mode", MODES)
def test_sums_gradient_float64(rng, mode):
    a, b, _ = _inputs(rng, (3, 6))
    w = tf.constant(rng.normal(size=(2, 3, 1)))

    def weighted(a, b):
        s = _row_reduce.row_sums([a * b, tf.square(a)])
        return tf.reduce_sum(w[0] * s[0] + w[1] * s[1])

    fn = weighted if mode == "eager" else tf.function(weighted, jit_compile=mode == "jit")
    theoretical, numerical = tf.test.compute_gradient(fn, [a, b])
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_maxima_have_no_gradient(rng, mode):
    a, b, _ = _inputs(rng, (3, 6))

    def grads(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            m = _row_reduce.row_maxima([a, b])
            total = tf.reduce_sum(m[0] + 2.0 * m[1])
        return tape.gradient(total, [a, b], unconnected_gradients=tf.UnconnectedGradients.ZERO)

    for g in call_in_mode(mode, grads, a, b):
        np.testing.assert_array_equal(g.numpy(), 0.0)

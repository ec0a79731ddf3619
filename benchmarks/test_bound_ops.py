"""The memory-pattern bound ops (benchmarks/bound_ops.py): they must compute
exactly their stated products, through the fused gradient's wiring, or the
floor targets' bound in the benchmark report would be timing something else;
and the installed corrops library must not contain them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from benchmarks import bound_ops


def _step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    with tf.GradientTape() as tape:
        tape.watch(y)
        total = tf.reduce_mean(bound_ops.memory_pattern_bound(x, y))
    return total, tape.gradient(total, y)


@pytest.mark.parametrize(
    "shape",
    [(3, 37, 1), (2, 1_500_000, 1)],  # the second touches > 32 MiB: streaming stores
    ids=["cached", "streamed"],
)
def test_graph_step_is_the_product_and_its_compact_gradient(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    y = tf.constant(rng.normal(size=shape).astype(np.float32))
    total, grad = tf.function(_step)(x, y)
    np.testing.assert_allclose(float(total), float(tf.reduce_mean(x * y)), rtol=1e-5)
    # Graph mode passes the mean's gradient compact: the grad op writes x * y.
    np.testing.assert_array_equal(grad.numpy(), (x * y).numpy())


def test_eager_gradient_reads_the_per_step_upstream_gradient():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(4, 50, 1)).astype(np.float32))
    y = tf.constant(rng.normal(size=(4, 50, 1)).astype(np.float32))
    _, grad = _step(x, y)  # eager: the upstream gradient arrives per step
    g = np.float32(1.0 / 200)
    np.testing.assert_allclose(grad.numpy(), g * x.numpy() + y.numpy(), rtol=1e-6)


def test_forward_writes_zero_statistics():
    ops = bound_ops.load()
    x = tf.ones((2, 5, 1, 1))
    loss, stats = ops.corrops_memory_pattern_bound(
        y_true=x, y_pred=2 * x, mask=tf.zeros([0], tf.bool), eps=tf.constant(1.0, tf.float64)
    )
    np.testing.assert_array_equal(loss.numpy(), np.full((2, 5, 1), 2.0, np.float32))
    np.testing.assert_array_equal(stats.numpy(), np.zeros((2, 1, 7)))


def test_rejects_what_it_does_not_model():
    ops = bound_ops.load()
    common = {"mask": tf.zeros([0], tf.bool), "eps": tf.constant(1.0, tf.float64)}
    with pytest.raises(tf.errors.InvalidArgumentError, match="one channel and one group"):
        ops.corrops_memory_pattern_bound(
            y_true=tf.ones((2, 5, 1, 3)), y_pred=tf.ones((2, 5, 1, 3)), **common
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="'T' of double"):  # float32 only
        ops.corrops_memory_pattern_bound(
            y_true=tf.ones((2, 5, 1, 1), tf.float64),
            y_pred=tf.ones((2, 5, 1, 1), tf.float64),
            **common,
        )


def test_the_shipped_library_has_only_the_corrops_ops():
    # The op module of a library wraps each op it registers in one function
    # (plus an eager fallback of it).
    module = corrops.load_ops()
    names = {n for n in dir(module) if n.startswith("corrops_")}
    names = {n for n in names if not n.endswith("_eager_fallback")}
    assert names == {"corrops_corr_loss", "corrops_corr_loss_grad"}
    assert "corrops_memory_pattern_bound" in dir(bound_ops.load())

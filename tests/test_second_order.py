"""Second and higher derivatives (corrops/tensorflow/_second_order.py): the gradient of the
fused gradient op, checked with tf.test.compute_gradient in float64 and
against the fallback's autodiff, for the general and the compact
(time-constant) upstream form."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests.helpers import MODES

SHAPES = [((3, 7), 1), ((2, 6, 3), 1), ((5, 3, 2), 0)]


def _loss_shape(shape: tuple) -> tuple:
    return shape[:-1] if len(shape) >= 3 else shape


def _first_order(impl, x0, y0, mask, method, axis, weights, wrt):
    """d/d(wrt) of sum(weights * corr_loss): weights None means the mean."""

    def grad(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl=impl)
            total = tf.reduce_mean(loss) if weights is None else tf.reduce_sum(loss * weights)
        return tape.gradient(total, x if wrt == "true" else y)

    return grad


def _hvp_pred(x, y, v, impl=None, method="pearson"):
    """d/dy_pred of <d mean(corr_loss)/dy_pred, v>: a Hessian-vector product
    (the directional sum taken in float32 for half types)."""
    acc = tf.float32 if y.dtype in (tf.float16, tf.bfloat16) else y.dtype
    with tf.GradientTape() as outer:
        outer.watch(y)
        with tf.GradientTape() as inner:
            inner.watch(y)
            loss = tf.reduce_mean(corrops.corr_loss(x, y, method=method, impl=impl))
        directional = tf.reduce_sum(tf.cast(inner.gradient(loss, y) * v, acc))
    return outer.gradient(directional, y)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES)
@pytest.mark.parametrize("upstream", ["weighted", "mean"])
@pytest.mark.parametrize("wrt", ["true", "pred"])
def test_second_derivative_compute_gradient_float64(
    rng, impl, method, masked, shape, axis, upstream, wrt
):
    x0 = rng.normal(size=shape)
    y0 = 0.5 * x0 + rng.normal(size=shape)
    loss_shape = _loss_shape(shape)
    mask = (rng.random(loss_shape) > 0.3) if masked else None
    weights = tf.constant(rng.normal(size=loss_shape)) if upstream == "weighted" else None
    grad = _first_order(impl, x0, y0, mask, method, axis, weights, wrt)
    # Inside a tf.function the mean's upstream gradient reaches the fused
    # gradient op in its compact (outer, 1, groups) form.
    grad = tf.function(grad)
    x0t, y0t = tf.constant(x0), tf.constant(y0)
    # The Jacobian of each first derivative with respect to both inputs.
    for k, arg in enumerate((x0t, y0t)):

        def f(v, k=k):
            return grad(v, y0t) if k == 0 else grad(x0t, v)

        theoretical, numerical = tf.test.compute_gradient(f, [arg], delta=1e-6)
        np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


def _fused_grad_inputs(fn, *args) -> list:
    graph = fn.get_concrete_function(*args).graph
    return [op for op in graph.get_operations() if op.type == "Corrops>CorrLossGrad"]


def test_mean_reaches_the_gradient_op_compact():
    # The compact-form cases above only test the compact gradient if the
    # fused gradient op really receives a time-constant upstream gradient.
    x0 = tf.constant(np.random.default_rng(0).normal(size=(3, 7)))
    grad = tf.function(_first_order("fused", x0, x0, None, "pearson", 1, None, "pred"))
    ops = _fused_grad_inputs(grad, x0, x0)
    assert len(ops) == 1
    assert ops[0].inputs[0].shape.as_list() == [3, 1, 1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_hessian_vector_product_fused_equals_fallback(rng, mode, method, masked):
    shape = (4, 33, 3)
    x0 = tf.constant(rng.normal(size=shape))
    y0 = tf.constant(0.3 * x0.numpy() + rng.normal(size=shape))
    w = tf.constant(rng.normal(size=shape[:-1]))
    u, v = (tf.constant(rng.normal(size=shape)) for _ in range(2))
    mask = (rng.random(shape[:-1]) > 0.25) if masked else None

    def hvp(impl):
        def compute(x, y):
            with tf.GradientTape() as outer:
                outer.watch([x, y])
                with tf.GradientTape() as inner:
                    inner.watch([x, y])
                    loss = corrops.corr_loss(x, y, mask=mask, method=method, impl=impl)
                    total = tf.reduce_sum(loss * w)
                gx, gy = inner.gradient(total, [x, y])
                directional = tf.reduce_sum(gx * u) + tf.reduce_sum(gy * v)
            return outer.gradient(directional, [x, y])

        return (tf.function(compute) if mode == "function" else compute)(x0, y0)

    fused, fallback = hvp("fused"), hvp("tf")
    for a, b in zip(fused, fallback, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_penalty_training_step(rng, mode):
    # A gradient penalty: the norm of dLoss/dy_pred, differentiated with
    # respect to model weights through the fused gradient op.
    x = tf.constant(rng.normal(size=(6, 40, 2)), tf.float32)
    target = tf.constant(rng.normal(size=(6, 40, 1)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(2, 1)).astype(np.float32))

    def step(impl):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                pred = tf.einsum("btc,cd->btd", x, kernel)
                inner.watch(pred)
                loss = tf.reduce_mean(corrops.corr_loss(target, pred, impl=impl))
            penalty = tf.reduce_sum(tf.square(inner.gradient(loss, pred)))
            total = loss + 10.0 * penalty
        return outer.gradient(total, kernel)

    run = tf.function(step) if mode == "function" else step
    fused, fallback = run("fused"), run("tf")
    assert fused is not None and np.all(np.isfinite(fused.numpy()))
    np.testing.assert_allclose(fused.numpy(), fallback.numpy(), rtol=2e-3, atol=1e-5)


def test_third_derivative_float64(rng):
    # The second derivative is itself differentiable: d/dy of a
    # Hessian-vector product, fused against the fallback.
    shape = (3, 9)
    x0 = tf.constant(rng.normal(size=shape))
    y0 = tf.constant(rng.normal(size=shape))
    v = tf.constant(rng.normal(size=shape))

    def third(impl):
        with tf.GradientTape() as t3:
            t3.watch(y0)
            with tf.GradientTape() as t2:
                t2.watch(y0)
                with tf.GradientTape() as t1:
                    t1.watch(y0)
                    loss = tf.reduce_sum(corrops.corr_loss(x0, y0, impl=impl))
                hv = tf.reduce_sum(t1.gradient(loss, y0) * v)
            h = tf.reduce_sum(tf.square(t2.gradient(hv, y0)))
        return t3.gradient(h, y0)

    fused, fallback = third("fused"), third("tf")
    np.testing.assert_allclose(fused.numpy(), fallback.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32], ids=lambda d: d.name)
def test_second_derivative_low_precision_close_to_float64(rng, dtype):
    shape = (4, 50)
    x0 = rng.normal(size=shape)
    y0 = 0.5 * x0 + rng.normal(size=shape)
    v = rng.normal(size=shape)

    def hvp(dt):
        return _hvp_pred(*(tf.constant(a, dt) for a in (x0, y0, v)), impl="fused")

    want = hvp(tf.float64).numpy()
    got = tf.cast(hvp(dtype), tf.float64).numpy()
    scale = np.abs(want).max()
    tol = {tf.float32: 1e-4, tf.float16: 5e-2, tf.bfloat16: 1e-1}[dtype]
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


def test_constant_row_second_derivative_finite(rng):
    # A constant prediction (the edge case that makes forum code NaN): the
    # second derivative stays finite, as the fallback's does.
    x0 = tf.constant(rng.normal(size=(2, 12)))
    y0 = tf.constant(np.ones((2, 12)))
    v = tf.constant(rng.normal(size=(2, 12)))

    fused, fallback = _hvp_pred(x0, y0, v, "fused"), _hvp_pred(x0, y0, v, "tf")
    assert np.all(np.isfinite(fused.numpy()))
    np.testing.assert_allclose(fused.numpy(), fallback.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_upstream_that_depends_on_the_input_float64(rng, impl, method, masked):
    # Per-step weights computed from y_pred: the second derivative then also
    # runs through the gradient op's upstream `grad` input.
    shape = (3, 8, 2)
    x0 = tf.constant(rng.normal(size=shape))
    y0 = tf.constant(rng.normal(size=shape))
    mask = (rng.random(shape[:-1]) > 0.3) if masked else None

    def grad(y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            loss = corrops.corr_loss(x0, y, mask=mask, method=method, impl=impl)
            total = tf.reduce_sum(loss * tf.tanh(tf.reduce_sum(y, axis=-1)))
        return tape.gradient(total, y)

    theoretical, numerical = tf.test.compute_gradient(grad, [y0], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


def test_second_derivative_under_jit_compile(rng):
    # Inside XLA the first derivatives are the fused custom calls and the
    # second the fallback's ops; it compiles and equals graph mode's.
    x0 = tf.constant(rng.normal(size=(4, 20)))
    y0 = tf.constant(rng.normal(size=(4, 20)))
    v = tf.constant(rng.normal(size=(4, 20)))

    def hvp(x, y):
        return _hvp_pred(x, y, v, method="ccc")

    compiled = tf.function(hvp, jit_compile=True)(x0, y0)
    graph = tf.function(hvp)(x0, y0)
    np.testing.assert_allclose(compiled.numpy(), graph.numpy(), rtol=1e-9, atol=1e-12)

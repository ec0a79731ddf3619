"""Gradient checks: tf.test.compute_gradient in float64, the closed form of
docs/DESIGN.md, and fused vs fallback in float32."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests import reference as ref
from tests.helpers import MODES, as_f64


def _grads(impl, x, y, g, mask=None, method="pearson", axis=1, dtype=tf.float64, fn=None):
    x = tf.constant(x, dtype)
    y = tf.constant(y, dtype)

    def compute(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl=impl)
            total = tf.reduce_sum(loss * tf.cast(g, dtype))
        return tape.gradient(total, [x, y])

    return (fn or (lambda f: f))(compute)(x, y)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), [((3, 7), 1), ((2, 6, 3), 1), ((5, 3, 2), 0)])
def test_compute_gradient_float64(rng, impl, method, masked, shape, axis):
    x0 = rng.normal(size=shape)
    y0 = 0.5 * x0 + rng.normal(size=shape)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = (rng.random(loss_shape) > 0.3) if masked else None
    w = tf.constant(rng.normal(size=loss_shape))  # non-uniform upstream gradient

    def f_pred(y):
        return corrops.corr_loss(x0, y, mask=mask, method=method, axis=axis, impl=impl) * w

    def f_true(x):
        return corrops.corr_loss(x, y0, mask=mask, method=method, axis=axis, impl=impl) * w

    for f, arg in ((f_pred, y0), (f_true, x0)):
        theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(arg)], delta=1e-6)
        np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_gradients_match_closed_form(rng, impl, mode, method, masked):
    shape = (4, 33, 3)
    x = rng.normal(size=shape)
    y = x + rng.normal(size=shape)
    g = rng.normal(size=shape[:-1])
    mask = (rng.random(shape[:-1]) > 0.25) if masked else None
    gx, gy = _grads(impl, x, y, g, mask, method, fn=tf.function if mode == "function" else None)
    want_x, want_y = ref.corr_loss_grad(x, y, g, mask, method=method)
    np.testing.assert_allclose(np.asarray(gx), want_x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gy), want_y, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("shape", [(8, 4097), (16, 100, 3), (33, 17)])
def test_fused_gradients_equal_fallback_float32(rng, method, shape):
    x = rng.normal(size=shape)
    y = 0.3 * x + rng.normal(size=shape)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    g = rng.normal(size=loss_shape)
    mask = rng.random(loss_shape) > 0.2
    fused = _grads("fused", x, y, g, mask, method, dtype=tf.float32, fn=tf.function)
    fallback = _grads("tf", x, y, g, mask, method, dtype=tf.float32, fn=tf.function)
    for a, b in zip(fused, fallback, strict=True):
        scale = np.abs(np.asarray(b)).max()
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16], ids=lambda d: d.name)
def test_half_gradients_close_to_float64(rng, impl, dtype):
    shape = (6, 50)
    x = np.asarray(tf.cast(tf.constant(rng.normal(size=shape)), dtype).numpy(), np.float64)
    y = np.asarray(tf.cast(tf.constant(x + rng.normal(size=shape)), dtype).numpy(), np.float64)
    g = np.ones(shape)
    gx, gy = _grads(impl, x, y, g, dtype=dtype)
    assert gx.dtype == dtype and gy.dtype == dtype
    want_x, want_y = ref.corr_loss_grad(x, y, g)
    tol = 5e-2 if dtype == tf.bfloat16 else 1e-2
    np.testing.assert_allclose(as_f64(gy), want_y, rtol=tol, atol=tol * np.abs(want_y).max())
    np.testing.assert_allclose(as_f64(gx), want_x, rtol=tol, atol=tol * np.abs(want_x).max())


def test_corrcoef_gradient(rng, impl):
    x0 = rng.normal(size=(3, 12, 2))
    y0 = x0 + rng.normal(size=(3, 12, 2))
    mask = rng.random((3, 12)) > 0.3

    def f(y):
        return corrops.corrcoef(x0, y, mask=mask, impl=impl)

    theoretical, numerical = tf.test.compute_gradient(f, [tf.constant(y0)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize(
    ("shape", "axis"),
    # contiguous rows; strided with one channel (the gradient may reuse g's
    # buffer in both); several channels (it cannot)
    [((8, 100), 1), ((6, 50, 1), 0), ((4, 33, 3), 1)],
)
def test_one_sided_gradient_equals_two_sided(rng, impl, mode, masked, method, shape, axis):
    # A tape watching only y_pred (a training step) or only y_true makes the
    # fused op compute that gradient alone, possibly in the upstream
    # gradient's own buffer; it must equal the two-sided result.
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(0.5 * x.numpy() + rng.normal(size=shape), tf.float32)
    loss_shape = tuple(np.delete(shape, -1)) if len(shape) >= 3 else shape
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else None
    w = tf.constant(rng.normal(size=loss_shape), tf.float32)

    def grads(x, y, which):
        with tf.GradientTape() as tape:
            watch = {"both": [x, y], "pred": [y], "true": [x]}[which]
            tape.watch(watch)
            loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl=impl)
            # A fresh upstream gradient tensor per call, as in a train step.
            total = tf.reduce_sum(loss * w)
        return tape.gradient(total, watch)

    run = tf.function(grads) if mode == "function" else grads
    both = run(x, y, "both")
    only_pred = run(x, y, "pred")
    only_true = run(x, y, "true")
    # The fused op's arithmetic is the same either way: bitwise equal. The
    # fallback's graph differs (Grappler folds it differently): close, up to
    # float32 rounding of the gradient's terms of order 1, which can cancel.
    same = (
        np.testing.assert_array_equal
        if impl == "fused"
        else lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    )
    same(only_pred[0].numpy(), both[1].numpy())
    same(only_true[0].numpy(), both[0].numpy())


def test_grad_op_skips_unwanted_gradients(rng):
    ops = corrops.load_ops()
    x = tf.constant(rng.normal(size=(2, 9, 1, 1)), tf.float32)
    y = tf.constant(rng.normal(size=(2, 9, 1, 1)), tf.float32)
    g = tf.constant(rng.normal(size=(2, 9, 1)), tf.float32)
    eps = tf.constant(1e-7, tf.float64)
    no_mask = tf.zeros([0], tf.bool)
    loss, stats = ops.corrops_corr_loss(y_true=x, y_pred=y, mask=no_mask, eps=eps)
    common = dict(grad=g, y_true=x, y_pred=y, mask=no_mask, stats=stats, eps=eps, loss=loss)
    gx, gy = ops.corrops_corr_loss_grad(**common)
    gx1, gy1 = ops.corrops_corr_loss_grad(**common, want_grad_true=False)
    gx2, gy2 = ops.corrops_corr_loss_grad(**common, want_grad_pred=False)
    assert gx1.shape == (0,) and gy2.shape == (0,)
    np.testing.assert_array_equal(gy1.numpy(), gy.numpy())
    np.testing.assert_array_equal(gx2.numpy(), gx.numpy())
    none_x, none_y = ops.corrops_corr_loss_grad(
        **common, want_grad_true=False, want_grad_pred=False
    )
    assert none_x.shape == (0,) and none_y.shape == (0,)


def _grad_op_inputs(rng, time_const):
    ops = corrops.load_ops()
    x = tf.constant(rng.normal(size=(3, 40, 1, 1)), tf.float32)
    y = tf.constant(rng.normal(size=(3, 40, 1, 1)), tf.float32)
    g_shape = (3, 1, 1) if time_const else (3, 40, 1)
    g = tf.constant(rng.normal(size=g_shape), tf.float32)
    eps = tf.constant(1e-7, tf.float64)
    no_mask = tf.zeros([0], tf.bool)
    return ops, dict(grad=g, y_true=x, y_pred=y, mask=no_mask, eps=eps)


@pytest.mark.parametrize("time_const", [False, True], ids=["per-step-g", "time-constant-g"])
def test_grad_op_lent_loss_buffer_changes_no_value(rng, time_const):
    """The grad op's `loss` input only lends its buffer: the gradient is the
    same whether it is passed, passed as shape [0], or still needed by the
    caller (then TF does not forward it, and the loss must come out intact)."""
    ops, common = _grad_op_inputs(rng, time_const)

    def forward():
        return ops.corrops_corr_loss(
            y_true=common["y_true"], y_pred=common["y_pred"], mask=common["mask"], eps=common["eps"]
        )

    def run(lend: bool):
        loss, stats = forward()
        # A separate forward, in its own buffer (an Identity would alias the
        # lent one and could not show it overwritten).
        want_loss, _ = forward()
        _, gy = ops.corrops_corr_loss_grad(
            **common,
            stats=stats,
            loss=loss if lend else tf.zeros([0], tf.float32),
            want_grad_true=False,
        )
        return want_loss, loss, gy

    for fn in (run, tf.function(run)):
        want_loss, loss_after, gy_lent = fn(True)
        _, _, gy_none = fn(False)
        np.testing.assert_array_equal(gy_lent.numpy(), gy_none.numpy())
        np.testing.assert_array_equal(loss_after.numpy(), want_loss.numpy())


def test_grad_op_rejects_a_loss_of_another_shape(rng):
    ops, common = _grad_op_inputs(rng, False)
    _, stats = ops.corrops_corr_loss(
        y_true=common["y_true"], y_pred=common["y_pred"], mask=common["mask"], eps=common["eps"]
    )
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="loss must be"):
        ops.corrops_corr_loss_grad(**common, stats=stats, loss=tf.zeros([3, 39, 1], tf.float32))

"""docs/DESIGN.md's edge-case table, for every implementation."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops


def _loss_and_grads(impl, x, y, mask=None, method="pearson", dtype=tf.float64, eps=None):
    x = tf.constant(x, dtype)
    y = tf.constant(y, dtype)
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        loss = corrops.corr_loss(x, y, mask=mask, method=method, impl=impl, eps=eps)
        total = tf.reduce_sum(loss)
    gx, gy = tape.gradient(total, [x, y])
    return np.asarray(tf.cast(loss, tf.float64)), np.asarray(gx), np.asarray(gy)


METHODS = ["pearson", "ccc"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("which", ["pred", "true", "both"])
def test_constant_row_is_finite(rng, impl, method, dtype, which):
    x = rng.normal(size=(3, 20))
    y = rng.normal(size=(3, 20))
    if which in ("pred", "both"):
        y[1] = 0.25
    if which in ("true", "both"):
        x[1] = -2.0
    # The gradient on a constant row is ~ dx/eps: 1e7 with the default eps, more
    # than float16 can hold (65504), so float16 needs a larger eps (documented).
    eps = 1e-3 if dtype == tf.float16 else None
    loss, gx, gy = _loss_and_grads(impl, x, y, method=method, dtype=dtype, eps=eps)
    assert np.isfinite(loss).all() and np.isfinite(gx).all() and np.isfinite(gy).all()
    if method == "pearson":
        np.testing.assert_allclose(loss[1], 1.0, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_fully_masked_row_is_zero(rng, impl, method):
    x, y = rng.normal(size=(3, 9)), rng.normal(size=(3, 9))
    mask = np.ones((3, 9), bool)
    mask[2] = False
    loss, gx, gy = _loss_and_grads(impl, x, y, mask, method)
    assert (loss[2] == 0).all() and (gx[2] == 0).all() and (gy[2] == 0).all()
    coef = corrops.corrcoef(x, y, mask=mask, method=method, impl=impl)
    assert float(coef[2]) == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_single_valid_step(rng, impl, method):
    x, y = rng.normal(size=(2, 7)), rng.normal(size=(2, 7))
    mask = np.ones((2, 7), bool)
    mask[0] = False
    mask[0, 4] = True
    loss, gx, gy = _loss_and_grads(impl, x, y, mask, method)
    assert loss[0, 4] == 1.0 and (np.delete(loss[0], 4) == 0).all()
    assert (gx[0] == 0).all() and (gy[0] == 0).all()
    # Also n = 1 without a mask: T = 1.
    loss1, gx1, gy1 = _loss_and_grads(impl, x[:, :1], y[:, :1], method=method)
    assert (loss1 == 1.0).all() and (gx1 == 0).all() and (gy1 == 0).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["pred", "true"])
def test_non_finite_confined_to_its_row(rng, impl, method, bad, where):
    x, y = rng.normal(size=(4, 11, 2)), rng.normal(size=(4, 11, 2))
    clean_loss, clean_gx, clean_gy = _loss_and_grads(impl, x, y, method=method)
    (y if where == "pred" else x)[2, 5, 1] = bad
    loss, gx, gy = _loss_and_grads(impl, x, y, method=method)
    assert not np.isfinite(loss[2]).all()
    assert not np.isfinite(gy[2, :, 1]).all()
    others = [0, 1, 3]
    np.testing.assert_array_equal(loss[others], clean_loss[others])
    np.testing.assert_array_equal(gx[others], clean_gx[others])
    np.testing.assert_array_equal(gy[others], clean_gy[others])
    # The other channel of the same sequence is its own row: untouched gradient.
    np.testing.assert_array_equal(gy[2, :, 0], clean_gy[2, :, 0])


def test_nan_at_masked_step_does_not_leak(rng, impl):
    x, y = rng.normal(size=(2, 10)), rng.normal(size=(2, 10))
    mask = np.ones((2, 10), bool)
    mask[0, 3] = False
    ref_loss, ref_gx, ref_gy = _loss_and_grads(impl, x, y, mask)
    y[0, 3] = np.nan
    x[0, 3] = np.inf
    loss, gx, gy = _loss_and_grads(impl, x, y, mask)
    np.testing.assert_array_equal(loss, ref_loss)
    np.testing.assert_array_equal(gx, ref_gx)
    np.testing.assert_array_equal(gy, ref_gy)


@pytest.mark.parametrize(
    ("shape", "loss_shape"),
    [
        ((0, 5), (0, 5)),
        ((0, 5, 3), (0, 5)),
        ((4, 0), (4, 0)),
        ((4, 0, 2), (4, 0)),
        ((3, 5, 0), (3, 5)),
    ],
)
def test_empty_shapes(impl, shape, loss_shape):
    x = np.zeros(shape)
    loss, gx, gy = _loss_and_grads(impl, x, x + 1.0)
    assert loss.shape == loss_shape and gx.shape == shape and gy.shape == shape
    # Zero channels: a mean over no channel is defined as 0 (documented).
    assert (loss == 0).all()

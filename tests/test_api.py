"""Parity of corr_loss / corrcoef: fused vs fallback vs the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests import reference as ref
from tests.helpers import as_f64, sequence_data, tolerance

# (shape, axis): ranks 2-4, axis other than 1, odd sizes, empty dims.
SHAPES = [
    ((1, 1), 1),
    ((2, 2), 1),
    ((3, 3), 1),
    ((4, 127), 1),
    ((2, 4097), 1),
    ((33, 17), 1),
    ((0, 5), 1),
    ((5, 12, 3), 1),
    ((4, 10, 1), 1),
    ((33, 7, 3), 1),
    ((7, 5), 0),
    ((6, 4, 3), 0),
    ((2, 9, 4, 3), 1),
    ((3, 4, 9, 2), 2),
    ((0, 5, 3), 1),
    ((4, 0, 2), 1),
    ((3, 5, 0), 1),
]


def _data(rng, shape, axis, dtype, masked):
    x, y, mask = sequence_data(rng, shape, axis, masked)
    return tf.cast(x, dtype), tf.cast(y, dtype), mask


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
def test_corr_loss_matches_reference(rng, impl, dtype, run, shape, axis, masked, method):
    x, y, mask = _data(rng, shape, axis, dtype, masked)
    got = run(corrops.corr_loss, x, y, axis=axis, mask=mask, method=method, impl=impl)
    want = ref.corr_loss(as_f64(x), as_f64(y), mask, axis=axis, method=method)
    assert got.dtype == dtype
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(as_f64(got), want, **tolerance(dtype))


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
def test_corrcoef_matches_reference(rng, impl, shape, axis, masked, method):
    x, y, mask = _data(rng, shape, axis, tf.float64, masked)
    got = corrops.corrcoef(x, y, axis=axis, mask=mask, method=method, impl=impl)
    want = ref.corrcoef(as_f64(x), as_f64(y), mask, axis=axis, method=method)
    assert tuple(got.shape) == want.shape
    np.testing.assert_allclose(as_f64(got), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_one_minus_corrcoef_is_mean_loss_over_valid_steps(rng, impl, method):
    x, y, mask = _data(rng, (6, 40, 2), 1, tf.float64, masked=True)
    mask[1] = True  # a fully valid row next to partly and fully masked ones
    coef = corrops.corrcoef(x, y, mask=mask, method=method, impl=impl)  # (6, 2)
    # Per-channel loss via one call per channel.
    for c in range(2):
        loss = corrops.corr_loss(x[..., c], y[..., c], mask=mask, method=method, impl=impl)
        n = mask.sum(axis=1)
        mean = np.asarray(loss).sum(axis=1) / np.maximum(n, 1)
        np.testing.assert_allclose(
            np.where(n > 0, 1 - np.asarray(coef[:, c]), 0), mean, rtol=1e-10, atol=1e-12
        )


def test_naive_my_loss_parity(rng, impl):
    """The naive formula as users write it (a widely copied Keras `my_loss`),
    ported line for line to Keras 3 ops."""
    import keras
    from keras import ops as K

    def my_loss(seq1, seq2):  # the naive per-step correlation loss
        seq1 = K.squeeze(seq1, axis=-1)
        seq2 = K.squeeze(seq2, axis=-1)
        seq1_mean = K.mean(seq1, axis=-1, keepdims=True)
        seq2_mean = K.mean(seq2, axis=-1, keepdims=True)
        nominator = (seq1 - seq1_mean) * (seq2 - seq2_mean)
        denominator = K.sqrt(
            K.mean(K.square(seq1 - seq1_mean), axis=-1, keepdims=True)
            * K.mean(K.square(seq2 - seq2_mean), axis=-1, keepdims=True)
        )
        corr = nominator / (denominator + keras.config.epsilon())
        corr_loss = 1.0 - corr
        return corr_loss

    a1 = rng.random((20, 100, 1)).astype(np.float32)
    a2 = rng.random((20, 100, 1)).astype(np.float32)
    want = np.asarray(my_loss(tf.constant(a1), tf.constant(a2)))
    got = np.asarray(corrops.corr_loss(a1, a2, impl=impl))
    assert got.shape == want.shape == (20, 100)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # float64: the same formula to rounding.
    want64 = np.asarray(my_loss(tf.constant(a1, tf.float64), tf.constant(a2, tf.float64)))
    got64 = np.asarray(corrops.corr_loss(a1.astype(np.float64), a2.astype(np.float64), impl=impl))
    np.testing.assert_allclose(got64, want64, rtol=1e-12, atol=1e-12)


def test_keras_style_shapes_and_dtype_cast(rng, impl):
    y_true = rng.random((4, 9))  # float64 numpy, (B, T)
    y_pred = tf.constant(rng.random((4, 9, 1)), tf.float32)  # (B, T, 1)
    got = corrops.corr_loss(y_true, y_pred, impl=impl)
    assert got.shape == (4, 9) and got.dtype == tf.float32
    want = ref.corr_loss(y_true.astype(np.float32), np.asarray(y_pred)[..., 0])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
    got_rev = corrops.corr_loss(y_pred, tf.constant(y_true, tf.float32), impl=impl)
    assert got_rev.shape == (4, 9)


def test_unknown_dims_in_tf_function(rng, impl):
    fn = tf.function(
        lambda a, b, m: corrops.corr_loss(a, b, mask=m, impl=impl),
        input_signature=[
            tf.TensorSpec([None, None, 2], tf.float32),
            tf.TensorSpec([None, None, 2], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
        ],
    )
    x = rng.random((3, 11, 2)).astype(np.float32)
    y = rng.random((3, 11, 2)).astype(np.float32)
    m = rng.random((3, 11)) > 0.2
    np.testing.assert_allclose(
        np.asarray(fn(x, y, m)), ref.corr_loss(x, y, m), rtol=1e-4, atol=1e-5
    )
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        fn(x, y, m[:, :5])  # wrong mask shape only known at run time


def test_env_var_sets_default_impl(monkeypatch, rng):
    x, y = rng.random((2, 8)), rng.random((2, 8))
    monkeypatch.setenv("CORROPS_IMPL", "tf")
    corrops.corr_loss(x, y)
    assert corrops.last_choice()["impl"] == "tf"
    monkeypatch.setenv("CORROPS_IMPL", "fused")
    corrops.corr_loss(x, y)
    assert corrops.last_choice()["impl"] == "fused"
    monkeypatch.setenv("CORROPS_IMPL", "bogus")
    with pytest.raises(ValueError, match="CORROPS_IMPL"):
        corrops.corr_loss(x, y)

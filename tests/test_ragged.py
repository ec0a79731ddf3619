"""tf.RaggedTensor inputs (corrops/tensorflow/_ragged.py): time ragged, equal to the
padded tensor with the mask of each row's steps, gradients to the ragged
values, empty rows, the Keras loss, and training from tf.data.ragged_batch."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests.helpers import as_f64, call_in_mode, tolerance

LENGTHS = [7, 0, 12, 1, 5]


@pytest.fixture(params=["eager", "function"])
def run(request: pytest.FixtureRequest):
    """conftest's run without "jit": ragged inputs cannot be compiled by XLA
    (test_ragged_under_jit_compile_is_a_clear_error)."""

    return functools.partial(call_in_mode, request.param)


def test_ragged_under_jit_compile_is_a_clear_error(rng, impl):
    y_true, y_pred = _ragged_pair(rng, [3, 5])
    compiled = tf.function(lambda a, b: corrops.corr_loss(a, b, impl=impl), jit_compile=True)
    with pytest.raises(ValueError, match="ragged y_true/y_pred cannot be used inside an XLA"):
        compiled(y_true, y_pred)


def _ragged_pair(rng, lengths, channels=None, dtype=tf.float64):
    def make(values):
        return tf.RaggedTensor.from_row_lengths(tf.constant(values, dtype), lengths)

    n = sum(lengths)
    tail = () if channels is None else (channels,)
    x = rng.normal(size=(n, *tail))
    y = 0.5 * x + rng.normal(size=(n, *tail))
    return make(x), make(y)


def _padded_mask(rt: tf.RaggedTensor) -> tf.Tensor:
    return tf.sequence_mask(rt.row_lengths(), maxlen=tf.shape(rt.to_tensor())[1])


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("channels", [None, 1, 3], ids=["BT", "BT1", "BT3"])
def test_loss_equals_padded_with_mask(rng, impl, run, dtype, method, channels):
    x, y = _ragged_pair(rng, LENGTHS, channels, dtype)
    got = run(lambda a, b: corrops.corr_loss(a, b, method=method, impl=impl), x, y)
    assert isinstance(got, tf.RaggedTensor)
    assert got.shape.rank == 2 and got.dtype == dtype
    np.testing.assert_array_equal(got.row_lengths().numpy(), LENGTHS)
    mask = _padded_mask(y)
    want = corrops.corr_loss(x.to_tensor(), y.to_tensor(), mask=mask, method=method, impl=impl)
    want = tf.RaggedTensor.from_tensor(want, lengths=LENGTHS)
    np.testing.assert_allclose(
        as_f64(got.flat_values), as_f64(want.flat_values), **tolerance(dtype)
    )


def test_row_statistics_are_each_rows_own(rng):
    # Each row of the ragged loss is the dense loss of that row alone.
    x, y = _ragged_pair(rng, LENGTHS)
    got = corrops.corr_loss(x, y)
    for k, n in enumerate(LENGTHS):
        if n == 0:
            continue
        alone = corrops.corr_loss(x[k : k + 1].to_tensor(), y[k : k + 1].to_tensor())
        np.testing.assert_allclose(got[k].numpy(), alone.numpy()[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [None, 2], ids=["BT", "BTC"])
def test_corrcoef_dense_per_row(rng, impl, run, channels):
    x, y = _ragged_pair(rng, LENGTHS, channels)
    got = run(lambda a, b: corrcoef_ragged(a, b, impl), x, y)
    assert isinstance(got, tf.Tensor)
    assert got.shape == ((len(LENGTHS),) if channels is None else (len(LENGTHS), channels))
    mask = _padded_mask(y)
    want = corrops.corrcoef(x.to_tensor(), y.to_tensor(), mask=mask, impl=impl)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
    # Empty rows follow the edge-case table: coefficient 0.
    np.testing.assert_array_equal(got.numpy()[1], 0.0)


def corrcoef_ragged(a, b, impl):
    return corrops.corrcoef(a, b, impl=impl)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_gradient_reaches_ragged_values_float64(rng, impl, method):
    x, y = _ragged_pair(rng, [6, 3, 9], channels=2)
    weights = tf.RaggedTensor.from_row_lengths(tf.constant(rng.normal(size=18)), y.row_lengths())

    def loss_of(values):
        pred = y.with_flat_values(values)
        return corrops.corr_loss(x, pred, method=method, impl=impl) * weights

    def f(values):
        return loss_of(values).flat_values

    theoretical, numerical = tf.test.compute_gradient(f, [y.flat_values], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)
    # And equal to the padded tensor's gradient at the real steps.
    with tf.GradientTape() as tape:
        tape.watch(y.flat_values)
        total = tf.reduce_sum(loss_of(y.flat_values).flat_values)
    got = tf.convert_to_tensor(tape.gradient(total, y.flat_values))
    dense = y.to_tensor()
    with tf.GradientTape() as tape:
        tape.watch(dense)
        loss = corrops.corr_loss(x.to_tensor(), dense, mask=_padded_mask(y), method=method)
        total = tf.reduce_sum(loss * weights.to_tensor())
    want = tf.RaggedTensor.from_tensor(tape.gradient(total, dense), lengths=y.row_lengths())
    np.testing.assert_allclose(got.numpy(), want.flat_values.numpy(), rtol=1e-10, atol=1e-12)


def test_all_rows_empty(impl):
    empty = tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.float32), [0, 0])
    loss = corrops.corr_loss(empty, empty, impl=impl)
    np.testing.assert_array_equal(loss.row_lengths().numpy(), [0, 0])
    np.testing.assert_array_equal(corrops.corrcoef(empty, empty, impl=impl).numpy(), [0.0, 0.0])


def test_y_true_and_y_pred_of_different_ranks(rng):
    # (B, None) labels against (B, None, 1) predictions, as for dense inputs.
    x, y = _ragged_pair(rng, LENGTHS, channels=1)
    x2 = tf.RaggedTensor.from_row_lengths(x.flat_values[:, 0], LENGTHS)
    np.testing.assert_allclose(
        corrops.corr_loss(x2, y).flat_values.numpy(),
        corrops.corr_loss(x, y).flat_values.numpy(),
        rtol=0,
        atol=0,
    )


def test_loss_keeps_y_preds_row_partition(rng):
    # The loss can be combined elementwise with anything sharing y_pred's rows.
    x, y = _ragged_pair(rng, LENGTHS)

    @tf.function
    def weighted(a, b):
        return corrops.corr_loss(a, b) * tf.ones_like(b)

    assert weighted(x, y).row_lengths().numpy().tolist() == LENGTHS


def test_keras_loss_equals_masked_padded(rng):
    x, y = _ragged_pair(rng, LENGTHS, channels=1, dtype=tf.float32)
    loss = corrops.CorrelationLoss()
    got = loss(x, y)
    padded = y.to_tensor()
    padded._keras_mask = _padded_mask(y)
    want = loss(x.to_tensor(), padded)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    # Keras' default reduction is the mean over the real steps.
    per_step = corrops.corr_loss(x, y).flat_values
    np.testing.assert_allclose(got.numpy(), tf.reduce_mean(per_step).numpy(), rtol=1e-5)


def test_custom_loop_from_ragged_batch(rng):
    # The documented recipe: tf.data's ragged_batch and a custom training loop.
    lengths = [30, 45, 12, 60, 25, 50, 38, 20]
    signals = [rng.normal(size=(n, 1)).astype(np.float32) for n in lengths]
    targets = [np.cumsum(s, axis=0) * 0.1 + 0.5 * s for s in signals]
    data = tf.data.Dataset.from_generator(
        lambda: zip(signals, targets, strict=True),
        output_signature=(
            tf.TensorSpec([None, 1], tf.float32),
            tf.TensorSpec([None, 1], tf.float32),
        ),
    ).ragged_batch(4)
    dense = keras.layers.Dense(1)
    dense.build((None, 2))
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            features = tf.concat([x, tf.math.cumsum(x, axis=1) * 0.1], axis=-1)
            pred = tf.ragged.map_flat_values(dense, features)
            loss = tf.reduce_mean(corrops.corr_loss(y, pred).flat_values)
        grads = tape.gradient(loss, dense.trainable_variables)
        optimizer.apply_gradients(zip(grads, dense.trainable_variables, strict=True))
        return loss

    losses = [float(step(x, y)) for _ in range(15) for x, y in data]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1

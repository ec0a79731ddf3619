"""CorrelationLoss: serialization, Keras masks, sample weights, mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests import reference as ref


def _model(masking: bool = False) -> keras.Model:
    layers = [keras.Input((None, 5))]
    if masking:
        layers.append(keras.layers.Masking(mask_value=0.0))
    layers += [keras.layers.LSTM(8, return_sequences=True), keras.layers.Dense(1)]
    return keras.Sequential(layers)


def _data(n=32, t=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, 5)).astype(np.float32)
    y = (x[..., :1] * 0.7 + 0.3 * rng.normal(size=(n, t, 1))).astype(np.float32)
    return x, y


def test_config_round_trip():
    loss = corrops.CorrelationLoss(method="ccc", eps=1e-5, axis=1, reduction="sum", name="c")
    clone = corrops.CorrelationLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, corrops.CorrelationLoss) and restored.method == "ccc"
    with pytest.raises(ValueError, match="method"):
        corrops.CorrelationLoss(method="spearman")
    with pytest.raises(ValueError, match="eps"):
        corrops.CorrelationLoss(eps=-1.0)


def test_keras_file_round_trip_keeps_training_identically(tmp_path):
    keras.utils.set_random_seed(1)
    x, y = _data()
    model = _model()
    model.compile(
        optimizer="adam",
        loss=corrops.CorrelationLoss(method="ccc"),
        metrics=[corrops.metrics.PearsonCorrelation()],
    )
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.loss, corrops.CorrelationLoss) and loaded.loss.method == "ccc"
    a = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    b = loaded.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def _padded_batch(rng):
    lengths = [20, 13, 7, 1, 16]
    t = max(lengths)
    x = np.zeros((len(lengths), t, 5), np.float32)
    y = np.zeros((len(lengths), t, 1), np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, 5)) + 0.1
        y[i, :n] = rng.normal(size=(n, 1))
    return lengths, x, y


@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_keras_mask_equals_unpadded_sequences(rng, impl, method, monkeypatch):
    monkeypatch.setenv("CORROPS_IMPL", impl)
    lengths, x, y = _padded_batch(rng)
    model = _model(masking=True)
    y_pred = model(x)  # carries the Masking layer's mask
    assert getattr(y_pred, "_keras_mask", None) is not None
    per_step = corrops.CorrelationLoss(method=method, reduction="none")(y, y_pred)
    for i, n in enumerate(lengths):
        alone = corrops.corr_loss(y[i : i + 1, :n], model(x[i : i + 1, :n]), method=method)
        np.testing.assert_allclose(
            np.asarray(per_step[i, :n]), np.asarray(alone[0]), rtol=1e-5, atol=1e-5
        )
        assert (np.asarray(per_step[i, n:]) == 0).all()
    # The function form picks up the Keras mask too; an explicit mask= agrees.
    fn = corrops.corr_loss(y, y_pred, method=method)
    explicit = corrops.corr_loss(
        y, tf.identity(y_pred), method=method, mask=np.any(x != 0, axis=-1)
    )
    np.testing.assert_allclose(np.asarray(per_step), np.asarray(fn), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(explicit), np.asarray(fn), rtol=1e-6, atol=1e-6)


def test_masked_model_reduction_is_mean_over_valid_steps(rng):
    lengths, x, y = _padded_batch(rng)
    model = _model(masking=True)
    model.compile(loss=corrops.CorrelationLoss())
    got = model.evaluate(x, y, batch_size=len(lengths), verbose=0)
    pred = np.asarray(model(x))
    want = np.concatenate(
        [ref.corr_loss(y[i, :n, 0][None], pred[i, :n, 0][None])[0] for i, n in enumerate(lengths)]
    ).mean()
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("weight_shape", ["batch", "temporal"])
def test_sample_weight(rng, weight_shape):
    y_true = rng.normal(size=(6, 15, 1)).astype(np.float32)
    y_pred = (y_true + rng.normal(size=(6, 15, 1))).astype(np.float32)
    sw = rng.random(6 if weight_shape == "batch" else (6, 15)).astype(np.float32)
    per_step = ref.corr_loss(y_true, y_pred)
    w = sw[:, None] * np.ones((6, 15)) if weight_shape == "batch" else sw
    want = (per_step * w).sum() / per_step.size  # Keras' sum_over_batch_size
    got = corrops.CorrelationLoss()(y_true, y_pred, sample_weight=sw)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # Through model.fit / evaluate as well.
    x = rng.normal(size=(6, 15, 5)).astype(np.float32)
    model = _model()
    model.compile(optimizer="adam", loss=corrops.CorrelationLoss())
    hist = model.fit(x, y_true, sample_weight=sw, epochs=2, batch_size=6, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    pred = np.asarray(model(x))
    want_eval = (ref.corr_loss(y_true, pred) * w).sum() / per_step.size
    got_eval = model.evaluate(x, y_true, sample_weight=sw, batch_size=6, verbose=0)
    np.testing.assert_allclose(got_eval, want_eval, rtol=1e-4)


def test_weights_of_another_rank_on_one_compiled_model_say_what_to_do():
    """(B,) weights in one fit, (B, T) in the next: Keras retraces its train
    step with the weight's rank unknown; the error says so and what to do,
    and compiling again is the way out."""
    x, y = _data(n=16)
    model = _model()
    model.compile(optimizer="adam", loss=corrops.CorrelationLoss())
    model.fit(x, y, sample_weight=np.ones(16, np.float32), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"unknown rank.*model\.compile\(\) again"):
        model.fit(x, y, sample_weight=np.ones((16, 20), np.float32), batch_size=8, verbose=0)
    model.compile(optimizer="adam", loss=corrops.CorrelationLoss())
    hist = model.fit(x, y, sample_weight=np.ones((16, 20), np.float32), batch_size=8, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("loss", ["function", "class"])
def test_mixed_precision_trains(policy, loss):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        x, y = _data(n=64, t=30)
        model = _model()
        assert model.layers[-1].compute_dtype == policy.split("_")[1]
        loss_fn = corrops.corr_loss if loss == "function" else corrops.CorrelationLoss()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss_fn)
        if policy == "mixed_float16":
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        hist = model.fit(x, y, batch_size=16, epochs=5, verbose=0).history["loss"]
        assert np.isfinite(hist).all()
        assert hist[-1] < hist[0]
        weights = [np.asarray(w, np.float32) for w in model.weights]
        assert all(np.isfinite(w).all() for w in weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_half_inputs_accumulate_in_float32(rng, impl):
    # A float16 row whose float16 sum would overflow (65504): float32 stats.
    x = (rng.normal(size=(2, 4000)) + 50.0).astype(np.float16)
    y = (rng.normal(size=(2, 4000)) + 50.0).astype(np.float16)
    got = corrops.corrcoef(x, y, impl=impl)
    want = ref.corrcoef(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=2e-3)

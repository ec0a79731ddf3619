"""A Keras 3 sequence labeller trains with loss=corrops.corr_loss, with and
without jit_compile, and its loss goes down."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import corrops


def _data(n=64, t=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, 5)).astype(np.float32)
    # Target: a smoothed mix of the inputs, so it is learnable and correlated.
    mix = x @ np.array([0.8, -0.5, 0.3, 0.0, 0.1], np.float32)
    kernel = np.ones(5, np.float32) / 5
    y = np.stack([np.convolve(row, kernel, mode="same") for row in mix])[..., None]
    return x, y + 0.1 * rng.normal(size=y.shape).astype(np.float32)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_lstm_trains_with_corr_loss(jit_compile):
    keras.utils.set_random_seed(0)
    x, y = _data()
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.LSTM(16, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=corrops.corr_loss, jit_compile=jit_compile
    )
    hist = model.fit(x, y, batch_size=16, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(hist).all()
    assert hist[-1] < 0.7 * hist[0], hist
    pred = model.predict(x, verbose=0)
    r = np.asarray(corrops.corrcoef(y, pred))
    assert r.mean() > 0.5

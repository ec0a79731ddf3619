"""Correlation metrics: exact against NumPy on the concatenated data, batch-
invariant, masked and weighted, reset between epochs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import corrops
from corrops.metrics import ConcordanceCorrelation, PearsonCorrelation

METRICS = [PearsonCorrelation, ConcordanceCorrelation]


def _np_coef(x, y, w, method):
    w = w / 1.0
    n = w.sum()
    mx, my = (w * x).sum() / n, (w * y).sum() / n
    vx, vy = (w * (x - mx) ** 2).sum() / n, (w * (y - my) ** 2).sum() / n
    cxy = (w * (x - mx) * (y - my)).sum() / n
    if method == "pearson":
        return cxy / np.sqrt(vx * vy)
    return 2 * cxy / (vx + vy + (mx - my) ** 2)


def _expected(x, y, mask, sw, mode, method):
    """x, y: (B, T, C); mask (B, T) bool; sw None, (B,) or (B, T)."""
    b, _, c = x.shape
    w = mask.astype(np.float64)
    if mode == "pooled":
        if sw is not None:
            w = w * (sw[:, None] if sw.ndim == 1 else sw)
        return np.mean(
            [_np_coef(x[..., k].ravel(), y[..., k].ravel(), w.ravel(), method) for k in range(c)]
        )
    step_w = w * sw if (sw is not None and sw.ndim == 2) else w
    seq_w = sw if (sw is not None and sw.ndim == 1) else np.ones(b)
    total = count = 0.0
    for i in range(b):
        if step_w[i].sum() == 0:
            continue
        for k in range(c):
            total += seq_w[i] * _np_coef(x[i, :, k], y[i, :, k], step_w[i], method)
            count += seq_w[i]
    return total / count


def _data(rng, b=12, t=25, c=2, offset=0.0):
    x = rng.normal(size=(b, t, c)) + offset
    y = 0.5 * x + rng.normal(size=(b, t, c)) + 0.3
    mask = rng.random((b, t)) > 0.2
    mask[3] = False  # a sequence with no valid step
    return x, y, mask


@pytest.mark.parametrize("metric_cls", METRICS)
@pytest.mark.parametrize("mode", ["per_sequence", "pooled"])
@pytest.mark.parametrize("weights", [None, "batch", "temporal"])
def test_matches_numpy_and_is_batch_invariant(rng, metric_cls, mode, weights):
    x, y, mask = _data(rng)
    sw = None
    if weights == "batch":
        sw = rng.random(12) + 0.1
    elif weights == "temporal":
        sw = rng.random((12, 25))
    want = _expected(x, y, mask, sw, mode, metric_cls.method)
    results = []
    for splits in ([12], [5, 7], [1, 4, 3, 4]):
        m = metric_cls(mode=mode, num_channels=2)
        start = 0
        for size in splits:
            sl = slice(start, start + size)
            pred = keras.ops.convert_to_tensor(y[sl])
            pred._keras_mask = keras.ops.convert_to_tensor(mask[sl])
            m.update_state(x[sl], pred, sample_weight=None if sw is None else sw[sl])
            start += size
        results.append(float(m.result()))
    np.testing.assert_allclose(results, want, rtol=1e-5)


@pytest.mark.parametrize("metric_cls", METRICS)
def test_pooled_is_stable_for_large_offsets(rng, metric_cls):
    x, y, _ = _data(rng, offset=1e6)
    m = metric_cls(mode="pooled", num_channels=2)
    for sl in (slice(0, 4), slice(4, 12)):
        m.update_state(x[sl], y[sl])
    want = _expected(x, y, np.ones((12, 25), bool), None, "pooled", metric_cls.method)
    np.testing.assert_allclose(float(m.result()), want, rtol=1e-5)


def test_reset_and_config(rng):
    x, y, _ = _data(rng)
    m = ConcordanceCorrelation(mode="pooled", num_channels=2, name="ccc")
    m.update_state(x, y)
    assert float(m.result()) != 0.0
    m.reset_state()
    assert float(m.result()) == 0.0
    clone = ConcordanceCorrelation.from_config(m.get_config())
    assert clone.get_config() == m.get_config()
    with pytest.raises(ValueError, match="num_channels"):
        m.update_state(x[..., :1], y[..., :1])
    with pytest.raises(ValueError, match="mode"):
        PearsonCorrelation(mode="global")


def test_metric_in_model_fit_resets_between_epochs(rng):
    x = rng.normal(size=(32, 20, 5)).astype(np.float32)
    y = x[..., :1] + rng.normal(size=(32, 20, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((20, 5)), keras.layers.Dense(1)])
    model.compile(loss=corrops.corr_loss, metrics=[PearsonCorrelation(mode="pooled")])
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    pred = np.asarray(model(x))
    want = _np_coef(y.ravel(), pred.ravel(), np.ones(y.size), "pearson")
    np.testing.assert_allclose(logs["pearson_correlation"], want, rtol=1e-5)

"""Test helpers shared across modules (importable, unlike conftest)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

IMPLS = ["fused", "tf"]
DTYPES = {
    # dtype: (rtol, atol) against the float64 reference on the same (rounded) inputs
    tf.float64: (1e-10, 1e-10),
    tf.float32: (2e-4, 2e-4),
    tf.float16: (2e-2, 2e-2),
    tf.bfloat16: (5e-2, 5e-2),
}
MODES = ["eager", "function", "jit"]


def call_in_mode(mode: str, fn, *args, **kwargs):
    """fn(*args, **kwargs) eagerly ("eager"), inside a fresh tf.function
    ("function") or a fresh tf.function(jit_compile=True) ("jit": XLA, where
    the fused op runs as custom calls)."""
    if mode == "eager":
        return fn(*args, **kwargs)
    return tf.function(lambda *a: fn(*a, **kwargs), jit_compile=mode == "jit")(*args)


def tolerance(dtype: tf.DType) -> dict[str, float]:
    rtol, atol = DTYPES[dtype]
    return {"rtol": rtol, "atol": atol}


def as_f64(t) -> np.ndarray:
    return np.asarray(tf.cast(t, tf.float64))


def sequence_data(rng: np.random.Generator, shape, axis: int, masked: bool):
    """float64 (y_true, y_pred, mask) for the shape classes of tests/test_api.py:
    y_pred correlated with y_true; the mask (of the loss shape, or None) always
    has a fully masked row and a row with one valid step."""
    x = rng.normal(size=shape) + 0.5
    y = 0.6 * x + rng.normal(size=shape)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = None
    if masked:
        mask = rng.random(loss_shape) > 0.3
        if mask.size:
            flat = np.moveaxis(mask, axis, -1).reshape(-1, loss_shape[axis])
            flat[0] = False
            if flat.shape[0] > 1:
                flat[1] = False
                flat[1, 0] = True
            mask = np.moveaxis(flat.reshape(np.moveaxis(mask, axis, -1).shape), -1, axis)
    return x, y, mask

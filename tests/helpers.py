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

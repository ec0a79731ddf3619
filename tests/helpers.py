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
MODES = ["eager", "function"]


def tolerance(dtype: tf.DType) -> dict[str, float]:
    rtol, atol = DTYPES[dtype]
    return {"rtol": rtol, "atol": atol}


def as_f64(t) -> np.ndarray:
    return np.asarray(tf.cast(t, tf.float64))

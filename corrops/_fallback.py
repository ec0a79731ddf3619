"""Pure-TF implementation of docs/DESIGN.md on the canonical layout.

Inputs are (outer, time, groups, channels), the mask (outer, time, groups) or
None; or (outer, time) with a mask of that shape (one group, one channel).
Written as a handful of elementwise ops and reductions so XLA fuses it;
masked steps are selected out with ``tf.where`` (never multiplied) so that a
NaN at a masked step cannot leak, and the square roots are guarded so that a
constant row has a finite gradient (the edge-case table of docs/DESIGN.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf


class RowMoments(NamedTuple):
    dx: tf.Tensor  # centered and scaled x, (x - mx) * inv_s; 0 at masked steps
    dy: tf.Tensor
    mx: tf.Tensor  # (outer, 1, groups, channels), unscaled
    my: tf.Tensor
    vx: tf.Tensor  # moments of the scaled row
    vy: tf.Tensor
    cxy: tf.Tensor
    denom: tf.Tensor  # D of the scaled row (eps scaled too)
    scale: tf.Tensor  # 1/D (Pearson) or 2/D (CCC)


# Rows are scaled by 2^-e, 2^(e-1) <= max|x|,|y| < 2^e, e clamped to +-100, as
# in csrc/core/row_math.h: correlation is scale-invariant, and squares of
# values from 1e-30 to 1e30 then neither overflow nor underflow in float32.
MAX_SCALE_EXPONENT = 100.0


def _inv_scale(x: tf.Tensor, y: tf.Tensor, valid: tf.Tensor | None) -> tf.Tensor:
    ax, ay = tf.abs(x), tf.abs(y)
    if valid is not None:
        ax = tf.where(valid, ax, tf.zeros_like(ax))
        ay = tf.where(valid, ay, tf.zeros_like(ay))
    top = tf.maximum(
        tf.reduce_max(ax, axis=1, keepdims=True), tf.reduce_max(ay, axis=1, keepdims=True)
    )
    ok = (top > 0) & tf.math.is_finite(top)
    safe = tf.where(ok, top, tf.ones_like(top))
    e = tf.floor(tf.math.log(safe) / tf.math.log(tf.constant(2.0, x.dtype))) + 1.0
    e = tf.clip_by_value(e, -MAX_SCALE_EXPONENT, MAX_SCALE_EXPONENT)
    inv_s = tf.where(ok, tf.pow(tf.constant(2.0, x.dtype), -e), tf.ones_like(top))
    # Any positive scale gives the same function: no gradient through it.
    return tf.stop_gradient(inv_s)


def accumulation_dtype(dtype: tf.DType) -> tf.DType:
    """float32 for half types (statistics accumulate in float32), else dtype."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def _smallest_normal(dtype: tf.DType) -> tf.Tensor:
    return tf.constant(np.finfo(dtype.as_numpy_dtype).tiny, dtype)


def _safe_sqrt(v: tf.Tensor) -> tf.Tensor:
    # sqrt with a zero (not infinite) derivative at 0: the "sqrt term taken as 0".
    positive = v > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, v, tf.ones_like(v))), tf.zeros_like(v))


def row_moments(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float | tf.Tensor
) -> RowMoments:
    """Centered two-pass statistics of every row of the canonical layout.

    ``eps`` is a Python float or a float64 scalar tensor (the fused op's own
    eps input, when its second derivative is taken through this code)."""
    # Means are shift + mean(x - shift), the shift being each row's first valid
    # value: a constant row then has deviations of exactly 0 (as in csrc/core).
    if mask is None:
        steps = tf.cast(tf.shape(x, out_type=tf.int64)[1], x.dtype)
        inv_n = 1.0 / tf.maximum(steps, 1.0)
        # keepdims sum of the first step: the first value, or 0 when T = 0.
        kx = tf.reduce_sum(x[:, :1], axis=1, keepdims=True)
        ky = tf.reduce_sum(y[:, :1], axis=1, keepdims=True)
        mx = kx + tf.reduce_sum(x - kx, axis=1, keepdims=True) * inv_n
        my = ky + tf.reduce_sum(y - ky, axis=1, keepdims=True) * inv_n
        inv_s = _inv_scale(x, y, None)
        dx, dy = (x - mx) * inv_s, (y - my) * inv_s
    else:
        valid = mask if mask.shape.rank == x.shape.rank else mask[..., tf.newaxis]
        zeros = tf.zeros_like(x)
        n = tf.reduce_sum(tf.cast(valid, x.dtype), axis=1, keepdims=True)
        inv_n = tf.where(n > 0, 1.0 / tf.maximum(n, 1.0), tf.zeros_like(n))
        valid_i = tf.cast(valid, tf.int32)
        first = valid & (tf.cumsum(valid_i, axis=1) == 1)  # the first valid step
        kx = tf.reduce_sum(tf.where(first, x, zeros), axis=1, keepdims=True)
        ky = tf.reduce_sum(tf.where(first, y, zeros), axis=1, keepdims=True)
        mx = kx + tf.reduce_sum(tf.where(valid, x - kx, zeros), axis=1, keepdims=True) * inv_n
        my = ky + tf.reduce_sum(tf.where(valid, y - ky, zeros), axis=1, keepdims=True) * inv_n
        inv_s = _inv_scale(x, y, valid)
        dx = tf.where(valid, (x - mx) * inv_s, zeros)
        dy = tf.where(valid, (y - my) * inv_s, zeros)
    vx = tf.reduce_sum(tf.square(dx), axis=1, keepdims=True) * inv_n
    vy = tf.reduce_sum(tf.square(dy), axis=1, keepdims=True) * inv_n
    cxy = tf.reduce_sum(dx * dy, axis=1, keepdims=True) * inv_n
    # eps scaled like the squares, in float64 first (it may underflow in float32).
    eps_s = tf.cast(eps * tf.square(tf.cast(inv_s, tf.float64)), x.dtype)
    if method == "pearson":
        denom = _safe_sqrt(vx) * _safe_sqrt(vy) + eps_s
    else:
        denom = vx + vy + tf.square((mx - my) * inv_s) + eps_s
    # D is below the smallest normal only if the scaled eps underflowed on a
    # constant row (where every dx*dy is 0): raise it so 1/D stays finite.
    tiny = _smallest_normal(x.dtype)
    denom = tf.where((denom >= tiny) | tf.math.is_nan(denom), denom, tiny)
    scale = (1.0 if method == "pearson" else 2.0) / denom
    return RowMoments(dx, dy, mx, my, vx, vy, cxy, denom, scale)


def corr_loss(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float | tf.Tensor
) -> tf.Tensor:
    """Per-step loss (outer, time, groups), averaged over channels."""
    out_dtype = y.dtype
    acc = accumulation_dtype(out_dtype)
    x, y = tf.cast(x, acc), tf.cast(y, acc)
    mom = row_moments(x, y, mask, method, eps)
    per_channel = 1.0 - mom.dx * mom.dy * mom.scale
    if x.shape.rank == 2:  # (outer, time): one sequence per row, no channel axis
        loss = per_channel
    else:
        # Mean over channels, defined as 0 for zero channels (not 0/0).
        channels = tf.cast(tf.shape(x, out_type=tf.int64)[-1], acc)
        loss = tf.reduce_sum(per_channel, axis=-1) / tf.maximum(channels, 1.0)
    if mask is not None:
        loss = tf.where(mask, loss, tf.zeros_like(loss))
    return tf.cast(loss, out_dtype)


def corrcoef(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float | tf.Tensor
) -> tf.Tensor:
    """Per-row coefficient (outer, groups, channels): k * cxy / D (0 if n = 0)."""
    out_dtype = y.dtype
    acc = accumulation_dtype(out_dtype)
    x, y = tf.cast(x, acc), tf.cast(y, acc)
    mom = row_moments(x, y, mask, method, eps)
    coef = mom.cxy * mom.scale
    return tf.cast(tf.squeeze(coef, axis=1), out_dtype)

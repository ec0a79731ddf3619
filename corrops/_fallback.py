"""Pure-TF implementation of DESIGN.md on the canonical layout.

Inputs are (outer, time, groups, channels), the mask (outer, time, groups) or
None. Written as a handful of elementwise ops and reductions so XLA fuses it;
masked steps are selected out with ``tf.where`` (never multiplied) so that a
NaN at a masked step cannot leak, and the square roots are guarded so that a
constant row has a finite gradient (DESIGN.md's edge-case table).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class RowMoments(NamedTuple):
    dx: tf.Tensor  # centered x, 0 at masked steps
    dy: tf.Tensor
    mx: tf.Tensor  # (outer, 1, groups, channels)
    my: tf.Tensor
    vx: tf.Tensor
    vy: tf.Tensor
    cxy: tf.Tensor
    denom: tf.Tensor  # D
    scale: tf.Tensor  # 1/D (Pearson) or 2/D (CCC)


def accumulation_dtype(dtype: tf.DType) -> tf.DType:
    """float32 for half types (statistics accumulate in float32), else dtype."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def _safe_sqrt(v: tf.Tensor) -> tf.Tensor:
    # sqrt with a zero (not infinite) derivative at 0: the "sqrt term taken as 0".
    positive = v > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, v, tf.ones_like(v))), tf.zeros_like(v))


def row_moments(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float
) -> RowMoments:
    """Centered two-pass statistics of every row of the canonical layout."""
    if mask is None:
        steps = tf.cast(tf.shape(x)[1], x.dtype)
        inv_n = 1.0 / tf.maximum(steps, 1.0)
        mx = tf.reduce_sum(x, axis=1, keepdims=True) * inv_n
        my = tf.reduce_sum(y, axis=1, keepdims=True) * inv_n
        dx, dy = x - mx, y - my
    else:
        valid = mask[..., tf.newaxis]
        zeros = tf.zeros_like(x)
        n = tf.reduce_sum(tf.cast(valid, x.dtype), axis=1, keepdims=True)
        inv_n = tf.where(n > 0, 1.0 / tf.maximum(n, 1.0), tf.zeros_like(n))
        mx = tf.reduce_sum(tf.where(valid, x, zeros), axis=1, keepdims=True) * inv_n
        my = tf.reduce_sum(tf.where(valid, y, zeros), axis=1, keepdims=True) * inv_n
        dx = tf.where(valid, x - mx, zeros)
        dy = tf.where(valid, y - my, zeros)
    vx = tf.reduce_sum(tf.square(dx), axis=1, keepdims=True) * inv_n
    vy = tf.reduce_sum(tf.square(dy), axis=1, keepdims=True) * inv_n
    cxy = tf.reduce_sum(dx * dy, axis=1, keepdims=True) * inv_n
    eps_t = tf.constant(eps, dtype=x.dtype)
    if method == "pearson":
        denom = _safe_sqrt(vx) * _safe_sqrt(vy) + eps_t
        scale = 1.0 / denom
    else:
        denom = vx + vy + tf.square(mx - my) + eps_t
        scale = 2.0 / denom
    return RowMoments(dx, dy, mx, my, vx, vy, cxy, denom, scale)


def corr_loss(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float
) -> tf.Tensor:
    """Per-step loss (outer, time, groups), averaged over channels."""
    out_dtype = y.dtype
    acc = accumulation_dtype(out_dtype)
    x, y = tf.cast(x, acc), tf.cast(y, acc)
    mom = row_moments(x, y, mask, method, eps)
    per_channel = 1.0 - mom.dx * mom.dy * mom.scale
    # Mean over channels, defined as 0 for zero channels (not 0/0).
    channels = tf.cast(tf.shape(x)[-1], acc)
    loss = tf.reduce_sum(per_channel, axis=-1) / tf.maximum(channels, 1.0)
    if mask is not None:
        loss = tf.where(mask, loss, tf.zeros_like(loss))
    return tf.cast(loss, out_dtype)


def corrcoef(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float
) -> tf.Tensor:
    """Per-row coefficient (outer, groups, channels): k * cxy / D (0 if n = 0)."""
    out_dtype = y.dtype
    acc = accumulation_dtype(out_dtype)
    x, y = tf.cast(x, acc), tf.cast(y, acc)
    mom = row_moments(x, y, mask, method, eps)
    coef = mom.cxy * mom.scale
    return tf.cast(tf.squeeze(coef, axis=1), out_dtype)

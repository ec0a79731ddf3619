"""Pure-TF implementation of docs/DESIGN.md on the canonical layout.

Inputs are (outer, time, groups, channels), the mask (outer, time, groups) or
None; or (outer, time) with a mask of that shape (one group, one channel).
Written as a handful of elementwise ops and reductions so XLA fuses it;
masked steps are selected out with ``tf.where`` (never multiplied) so that a
NaN at a masked step cannot leak, and the square roots are guarded so that a
constant row has a finite gradient (the edge-case table of docs/DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from corrops import _contract
from corrops.tensorflow import _row_reduce, _upstream


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
    inv_s: tf.Tensor  # the row's scale 2^-e (no gradient)
    inv_n: tf.Tensor  # 1/n, 0 for a row with no valid step
    n: tf.Tensor  # valid steps per row (the step count without a mask)


# Rows are scaled by 2^-e, 2^(e-1) <= max|x|,|y| < 2^e, e clamped to +-100, as
# in csrc/core/row_math.h: correlation is scale-invariant, and squares of
# values from 1e-30 to 1e30 then neither overflow nor underflow in float32.
MAX_SCALE_EXPONENT = 100.0


def _inv_scale(top: tf.Tensor) -> tf.Tensor:
    """2^-e from a row's largest |x|, |y| (0 or -inf for a row without steps)."""
    ok = (top > 0) & tf.math.is_finite(top)
    safe = tf.where(ok, top, tf.ones_like(top))
    e = tf.floor(tf.math.log(safe) / tf.math.log(tf.constant(2.0, top.dtype))) + 1.0
    e = tf.clip_by_value(e, -MAX_SCALE_EXPONENT, MAX_SCALE_EXPONENT)
    # Any positive scale gives the same function: top carries no gradient.
    return tf.where(ok, tf.pow(tf.constant(2.0, top.dtype), -e), tf.ones_like(top))


def accumulation_dtype(dtype: tf.DType) -> tf.DType:
    """float32 for half types (statistics accumulate in float32), else dtype."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def _valid_only(t: tf.Tensor, valid: tf.Tensor | None) -> tf.Tensor:
    """t at valid steps, 0 at masked ones (selected, never multiplied)."""
    return t if valid is None else tf.where(valid, t, tf.zeros_like(t))


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
    # Means are shift + mean(x - shift), the shift being a value of the row
    # (its largest valid one): a constant row then has deviations of exactly
    # 0, as in csrc/core (which shifts by the first valid value). The largest
    # value is a row reduction, taken in the same pass as the scale's; the
    # first value would be a slice that XLA fuses into, and slows down, every
    # elementwise pass over x.
    magnitude = tf.maximum(tf.abs(x), tf.abs(y))
    if mask is None:
        valid = None
        n = tf.cast(tf.shape(x, out_type=tf.int64)[1], x.dtype)
        has_steps = n > 0
        inv_n = 1.0 / tf.maximum(n, 1.0)
        kx, ky, top = _row_reduce.row_maxima([x, y, magnitude])
    else:
        valid = mask if mask.shape.rank == x.shape.rank else mask[..., tf.newaxis]
        n = tf.reduce_sum(tf.cast(valid, x.dtype), axis=1, keepdims=True)
        has_steps = n > 0
        inv_n = tf.where(has_steps, 1.0 / tf.maximum(n, 1.0), tf.zeros_like(n))
        lowest = tf.fill(tf.shape(x), tf.constant(-np.inf, x.dtype))
        kx, ky, top = _row_reduce.row_maxima(
            [tf.where(valid, t, lowest) for t in (x, y, magnitude)]
        )
    kx = tf.where(has_steps, kx, tf.zeros_like(kx))  # no steps: -inf, not a shift
    ky = tf.where(has_steps, ky, tf.zeros_like(ky))
    inv_s = _inv_scale(top)
    sx, sy = _row_reduce.row_sums([_valid_only(x - kx, valid), _valid_only(y - ky, valid)])
    mx, my = kx + sx * inv_n, ky + sy * inv_n
    dx = _valid_only((x - mx) * inv_s, valid)
    dy = _valid_only((y - my) * inv_s, valid)
    # cxy in the same pass: the gradient of a mean needs it (S2 = g * n * cxy).
    sums = _row_reduce.row_sums([tf.square(dx), tf.square(dy), dx * dy])
    vx, vy, cxy = (s * inv_n for s in sums)
    # eps scaled like the squares, in float64 first (it may underflow in float32).
    eps_s = tf.cast(eps * tf.square(tf.cast(inv_s, tf.float64)), x.dtype)
    spec = _contract.METHODS[method]
    denom = spec.denominator(vx, vy, (mx - my) * inv_s, _safe_sqrt) + eps_s
    # D is below the smallest normal only if the scaled eps underflowed on a
    # constant row (where every dx*dy is 0): raise it so 1/D stays finite.
    tiny = _smallest_normal(x.dtype)
    denom = tf.where((denom >= tiny) | tf.math.is_nan(denom), denom, tiny)
    scale = spec.scale / denom
    return RowMoments(dx, dy, mx, my, vx, vy, cxy, denom, scale, inv_s, inv_n, n)


def corr_loss(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float | tf.Tensor
) -> tf.Tensor:
    """Per-step loss (outer, time, groups), averaged over channels.

    Its gradient is the analytic one of docs/DESIGN.md (the engine's
    grad_coeffs in csrc/core/row_math.h), not autodiff of the forward: a few
    elementwise passes and two or three row sums instead of the reverse of
    every forward op, which XLA compiles into far fewer full-size
    intermediates."""
    out_dtype = y.dtype
    acc = accumulation_dtype(out_dtype)

    @tf.custom_gradient
    def per_step(x_in: tf.Tensor, y_in: tf.Tensor) -> tuple[tf.Tensor, Callable]:
        mom = row_moments(tf.cast(x_in, acc), tf.cast(y_in, acc), mask, method, eps)
        loss = _mean_over_channels(1.0 - mom.dx * mom.dy * mom.scale, x_in.shape.rank)
        if mask is not None:
            loss = tf.where(mask, loss, tf.zeros_like(loss))

        def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            # The moments are computed again from the inputs: custom_gradient
            # does not connect the forward's tensors to x and y on an outer
            # tape, and a second derivative needs them connected. XLA merges
            # the two computations into one.
            again = row_moments(tf.cast(x_in, acc), tf.cast(y_in, acc), mask, method, eps)
            # The gradient of a mean or sum of the loss, recognised in the
            # graph (as for the fused op): one row sum fewer and no per-step g.
            compact = _upstream.time_constant_grad(upstream, x_in)
            gx, gy = input_gradients(
                again,
                tf.cast(upstream if compact is None else compact, acc),
                mask,
                method,
                eps,
                time_constant=compact is not None,
            )
            return tf.cast(gx, x_in.dtype), tf.cast(gy, y_in.dtype)

        return tf.cast(loss, out_dtype), grad

    return per_step(x, y)


def _mean_over_channels(per_channel: tf.Tensor, rank: int | None) -> tf.Tensor:
    if rank == 2:  # (outer, time): one sequence per row, no channel axis
        return per_channel
    # Mean over channels, defined as 0 for zero channels (not 0/0).
    channels = tf.cast(tf.shape(per_channel, out_type=tf.int64)[-1], per_channel.dtype)
    return tf.reduce_sum(per_channel, axis=-1) / tf.maximum(channels, 1.0)


def input_gradients(
    mom: RowMoments,
    upstream: tf.Tensor,
    mask: tf.Tensor | None,
    method: str,
    eps: float | tf.Tensor,
    time_constant: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Gradients of sum(upstream * loss) with respect to x and y.

    ``upstream`` has the loss shape, or that shape with time 1 when
    ``time_constant`` (one value per row); per valid step, with dx', dy' the scaled
    deviations and g the upstream gradient of the step (over channels)::

        dL/dx = a * g * dy' + bx + cx * dx'
        dL/dy = a * g * dx' + by + cy * dy'

    with a, b, c per row from S1 = sum g*dx', S1' = sum g*dy',
    S2 = sum g*dx'*dy' (csrc/core/row_math.h, grad_coeffs); for a row's
    constant g, S1 = S1' = 0 and S2 = g * sum dx'*dy' (time_const_grad_coeffs).
    Masked steps get 0, whatever their upstream gradient."""
    dx, dy = mom.dx, mom.dy
    g = upstream
    if dx.shape.rank != 2:  # per channel: the loss is their mean
        channels = tf.cast(tf.shape(dx, out_type=tf.int64)[-1], g.dtype)
        g = g[..., tf.newaxis] / tf.maximum(channels, 1.0)
    valid = None
    if mask is not None:
        valid = mask if mask.shape.rank == dx.shape.rank else mask[..., tf.newaxis]
    if time_constant:
        s1 = s1p = tf.zeros_like(g)
        s2 = g * mom.n * mom.cxy  # as time_const_grad_coeffs
    else:
        if valid is not None:
            g = tf.where(valid, g, tf.zeros_like(g))
        g = tf.broadcast_to(g, tf.shape(dx))
        s1, s1p, s2 = _row_reduce.row_sums([g * dx, g * dy, g * dx * dy])
    inv_n = mom.inv_n
    inv_d = 1.0 / mom.denom
    inv_s = mom.inv_s
    if _contract.METHODS[method].geometric:
        a = -inv_s * inv_d
        bx = inv_s * s1p * inv_n * inv_d
        by = inv_s * s1 * inv_n * inv_d
        # The sqrt term is taken as 0 on a constant row (q == 0): no NaN/Inf.
        q = _safe_sqrt(mom.vx) * _safe_sqrt(mom.vy)
        positive = q > 0
        k = tf.where(
            positive,
            inv_s * (s2 * inv_d) * (inv_n * inv_d) / tf.where(positive, q, tf.ones_like(q)),
            tf.zeros_like(q),
        )
        cx, cy = k * mom.vy, k * mom.vx
    else:
        e = 4.0 * (s2 * inv_d) * (inv_n * inv_d)
        dm = (mom.mx - mom.my) * inv_s
        a = -2.0 * inv_s * inv_d
        bx = inv_s * (2.0 * s1p * inv_n * inv_d + e * dm)
        by = inv_s * (2.0 * s1 * inv_n * inv_d - e * dm)
        cx = cy = inv_s * e
    gx = a * g * dy + bx + cx * dx
    gy = a * g * dx + by + cy * dy
    # Masked steps (and so every step of a row with none valid) get 0.
    return _valid_only(gx, valid), _valid_only(gy, valid)


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

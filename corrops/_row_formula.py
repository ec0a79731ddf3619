"""The per-row formulas of docs/DESIGN.md, written once against a NumPy-like
``ops`` namespace: ``keras.ops`` for the keras.ops implementation
(corrops/keras/_portable.py), ``jax.numpy`` for corrops.jax's derivatives beyond
the first (corrops/jax/_formula.py). Framework-free: it imports neither.

Each row is shifted by its largest valid value and scaled by a power of two
(so 1e-30 and 1e30 neither underflow nor overflow), moments are centered and
two-pass, masked steps are selected out with ``where`` (a NaN there cannot
leak), and square roots are guarded so that a constant row has a finite
gradient. The shift and the scale carry no gradient (any value gives the
same function).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from corrops import _contract

MAX_SCALE_EXPONENT = 100.0  # as csrc/core/row_math.h and the TF fallback


def _valid_only(ops: Any, t: Any, valid: Any) -> Any:
    return t if valid is None else ops.where(valid, t, ops.zeros_like(t))


def _safe_sqrt(ops: Any, v: Any) -> Any:
    # sqrt with a zero (not infinite) derivative at 0: the "sqrt term taken as 0".
    positive = v > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, v, ops.ones_like(v))), 0.0)


def _scale_exponent(ops: Any, top: Any) -> Any:
    """e with 2^(e-1) <= top < 2^e, clamped to +-100, from a row's largest
    |x|, |y| (0 for a row whose top is 0, not finite or absent)."""
    ok = ops.logical_and(top > 0, ops.isfinite(top))
    e = ops.floor(ops.log2(ops.where(ok, top, ops.ones_like(top)))) + 1.0
    return ops.where(ok, ops.clip(e, -MAX_SCALE_EXPONENT, MAX_SCALE_EXPONENT), 0.0)


def row_coefficients(
    x: Any, y: Any, mask: Any, method: str, eps: float, ops: Any, dtype_name: Any
) -> tuple[Any, Any, Any]:
    """Scaled deviations dx, dy (0 at masked steps) and each row's 1/D or 2/D,
    for (outer, time, groups, channels) inputs in the accumulation dtype.
    ``ops``: keras.ops or a namespace of the same functions (``JaxOps`` of
    corrops/jax/_formula.py); ``dtype_name(t)``: t's dtype as a string."""
    time = x.shape[1]
    valid = None if mask is None else ops.expand_dims(mask, -1)
    lowest = float("-inf")
    candidates = (x, y, ops.maximum(ops.abs(x), ops.abs(y)))
    if valid is None:
        has_steps = time > 0
        inv_n = 1.0 / max(time, 1)
    else:
        valid = ops.broadcast_to(valid, x.shape)
        n = ops.sum(ops.cast(valid, x.dtype), axis=1, keepdims=True)
        has_steps = n > 0
        inv_n = ops.where(has_steps, 1.0 / ops.maximum(n, 1.0), 0.0)
        candidates = tuple(ops.where(valid, t, lowest) for t in candidates)
    # The shift (largest valid value, as the TF fallback) and the scale's top.
    kx, ky, top = (
        ops.stop_gradient(ops.max(t, axis=1, keepdims=True, initial=lowest)) for t in candidates
    )
    kx = ops.where(has_steps, kx, 0.0)  # a row without steps: -inf is no shift
    ky = ops.where(has_steps, ky, 0.0)
    e = ops.stop_gradient(_scale_exponent(ops, top))
    two = ops.cast(2.0, x.dtype)
    inv_s = ops.power(two, -e)
    mx = kx + ops.sum(_valid_only(ops, x - kx, valid), axis=1, keepdims=True) * inv_n
    my = ky + ops.sum(_valid_only(ops, y - ky, valid), axis=1, keepdims=True) * inv_n
    dx = _valid_only(ops, (x - mx) * inv_s, valid)
    dy = _valid_only(ops, (y - my) * inv_s, valid)
    vx = ops.sum(ops.square(dx), axis=1, keepdims=True) * inv_n
    vy = ops.sum(ops.square(dy), axis=1, keepdims=True) * inv_n
    # eps scaled like the squares, eps * 2^-2e = mantissa * 2^(k - 2e): no
    # overflow of eps itself in the dtype (1e53 for rows near 1e30).
    mantissa, k = math.frexp(eps)
    eps_s = mantissa * ops.power(two, k - 2.0 * e)
    spec = _contract.METHODS[method]
    denom = spec.denominator(vx, vy, (mx - my) * inv_s, lambda v: _safe_sqrt(ops, v)) + eps_s
    # Below the smallest normal only if the scaled eps underflowed on a
    # constant row (every dx*dy is 0 there): raised so that 1/D stays finite.
    tiny = float(np.finfo(dtype_name(x)).tiny)
    denom = ops.where(ops.logical_or(denom >= tiny, ops.isnan(denom)), denom, tiny)
    scale = spec.scale / denom
    return dx, dy, scale

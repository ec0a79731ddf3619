"""The per-step loss of docs/DESIGN.md in ``jax.numpy``: corrops.jax's path
for the derivatives the fused custom calls do not compute (the derivative of
the fused backward: second and higher derivatives, Hessian-vector products).
The row formulas are corrops/_row_formula.py's, run with jax.numpy.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp

from corrops import _row_formula

# The keras.ops functions corrops/_row_formula.py uses, from jax.numpy.
JaxOps = SimpleNamespace(
    abs=jnp.abs,
    broadcast_to=jnp.broadcast_to,
    cast=jnp.asarray,
    clip=jnp.clip,
    expand_dims=jnp.expand_dims,
    floor=jnp.floor,
    isfinite=jnp.isfinite,
    isnan=jnp.isnan,
    log2=jnp.log2,
    logical_and=jnp.logical_and,
    logical_or=jnp.logical_or,
    max=jnp.max,
    maximum=jnp.maximum,
    ones_like=jnp.ones_like,
    power=jnp.power,
    sqrt=jnp.sqrt,
    square=jnp.square,
    stop_gradient=jax.lax.stop_gradient,
    sum=jnp.sum,
    where=jnp.where,
    zeros_like=jnp.zeros_like,
)


def corr_loss(x: Any, y: Any, *, mask: Any, method: str, eps: float) -> jax.Array:
    """Per-step loss (outer, time, groups) of canonical (outer, time, groups,
    channels) inputs, in their dtype (statistics in float32 for half types);
    ``mask``: (outer, time, groups) bool, or None."""
    acc = jnp.float32 if x.dtype in (jnp.float16, jnp.bfloat16) else x.dtype
    dx, dy, scale = _row_formula.row_coefficients(
        x.astype(acc), y.astype(acc), mask, method, eps, JaxOps, lambda t: str(t.dtype)
    )
    loss = jnp.sum(1.0 - dx * dy * scale, axis=3) / max(x.shape[3], 1)
    if mask is not None:
        loss = jnp.where(mask, loss, 0.0)
    return loss.astype(x.dtype)

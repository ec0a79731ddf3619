"""The tangent of the fused loss as a JAX primitive, ``corrops_loss_tangent``:
linear in the input tangents, evaluated with the jax.numpy formula's JVP
(forward mode: ``jax.jvp`` of corr_loss), and transposed to the fused
backward custom call (reverse mode: ``jax.grad``). corr_loss's custom JVP
rule binds it, so forward mode, reverse mode and their compositions work
while first reverse-mode derivatives stay fused.

It uses JAX's interfaces for primitive authors, in this module only:
``jax.extend.core.Primitive`` and the rule tables of ``jax.interpreters``
(``ad.primitive_jvps``, ``ad.primitive_transposes``,
``batching.primitive_batchers``, ``mlir.register_lowering`` with
``mlir.lower_fun``); tests/test_private_apis.py names each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

tangent_p = Primitive("corrops_loss_tangent")

# Operands: x, y (outer, time, groups, channels), the mask (outer, time,
# groups) or its (0,) placeholder, the forward's statistics, then the input
# tangents present (has_tx, has_ty). Parameters: method, eps, has_mask,
# has_tx, has_ty, and two callables: formula(mask, method, eps) -> loss of
# (x, y), and the fused backward(g, x, y, m, stats, method, eps, has_mask,
# want_true, want_pred) -> (grad_true, grad_pred).
_RESIDUALS = 4


def bind(
    x: Any,
    y: Any,
    m: Any,
    stats: Any,
    tx: Any,
    ty: Any,
    *,
    method: int,
    eps: float,
    has_mask: bool,
    formula: Callable,
    backward: Callable,
) -> Any:
    """The loss tangent for input tangents tx, ty (None: zero)."""
    lin = tuple(t for t in (tx, ty) if t is not None)
    return tangent_p.bind(
        x,
        y,
        m,
        stats,
        *lin,
        method=method,
        eps=eps,
        has_mask=has_mask,
        has_tx=tx is not None,
        has_ty=ty is not None,
        formula=formula,
        backward=backward,
    )


def _evaluate(x, y, m, stats, *lin, method, eps, has_mask, has_tx, has_ty, formula, backward):
    """The formula's JVP: the loss tangent, the inputs' dtype."""
    del stats, backward
    it = iter(lin)
    tx = next(it) if has_tx else jnp.zeros_like(x)
    ty = next(it) if has_ty else jnp.zeros_like(y)
    return jax.jvp(formula(m if has_mask else None, method, eps), (x, y), (tx, ty))[1]


def _abstract(x, y, m, stats, *lin, **params):
    return ShapedArray(x.shape[:3], x.dtype)


def _transpose(ct, x, y, m, stats, *lin, **params):
    """The cotangents of the input tangents: the fused backward."""
    if any(ad.is_undefined_primal(a) for a in (x, y, m, stats)):
        raise NotImplementedError("corrops: the loss tangent is linear in the tangents only")
    none = [None] * (_RESIDUALS + len(lin))
    if type(ct) is ad.Zero:
        return none
    want = (params["has_tx"], params["has_ty"])
    grads = params["backward"](
        ct, x, y, m, stats, params["method"], params["eps"], params["has_mask"], *want
    )
    return none[:_RESIDUALS] + [g for g, w in zip(grads, want, strict=True) if w]


def _jvp(primals, tangents, **params):
    """Derivatives of the tangent itself (jvp of jvp): the formula's."""
    tangents = [ad.instantiate_zeros(t) for t in tangents]
    return jax.jvp(functools.partial(_evaluate, **params), tuple(primals), tuple(tangents))


def _batch(args, dims, **params):
    """A mapped axis folded into the rows (outer axis): one primitive. An
    operand's batch dimension is None where it is not mapped."""
    size = next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)
    folded = []
    for i, (a, d) in enumerate(zip(args, dims, strict=True)):
        if i == 2 and not params["has_mask"]:  # the mask's placeholder has no rows
            folded.append(jnp.zeros((0,), jnp.bool_))
            continue
        full = jnp.broadcast_to(a, (size, *a.shape)) if d is None else jnp.moveaxis(a, d, 0)
        folded.append(full.reshape((size * full.shape[1], *full.shape[2:])))
    out = tangent_p.bind(*folded, **params)
    return out.reshape((size, out.shape[0] // size, *out.shape[1:])), 0


tangent_p.def_impl(_evaluate)
tangent_p.def_abstract_eval(_abstract)
ad.primitive_jvps[tangent_p] = _jvp
ad.primitive_transposes[tangent_p] = _transpose
batching.primitive_batchers[tangent_p] = _batch
mlir.register_lowering(tangent_p, mlir.lower_fun(_evaluate, multiple_results=False))

"""corrops for JAX: ``corr_loss`` and ``corrcoef`` as plain JAX functions.

They run the fused engine inside XLA through ``jax.ffi``: the custom-call
handlers TF's XLA runs (csrc/xla_ffi/host_handlers.h, and cuda_handlers.h
in a build with CUDA), built against jaxlib's FFI headers into
``_corrops_jax.so`` when jax is importable at build time
(``build_info()["jax"]``). The gradient is the fused backward: the loss is a
``jax.custom_jvp`` whose tangent transposes to it (corrops/jax/_tangent.py);
results are bitwise those of the TF fused op on the same inputs. They
compose with ``jax.jit``, ``jax.grad``, ``jax.jvp`` (forward mode), their
higher orders, and ``jax.vmap`` (a mapped axis is folded into the rows of
one call). README's GPU section says
what has been verified on which backend.

The shape contract is that of :func:`corrops.corr_loss` (corrops/_layout.py):
inputs ``(B, T)`` or ``(B, T, C)`` (time on ``axis``, channels last), a bool
mask of the loss shape, methods ``"pearson"`` and ``"ccc"``.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from corrops import _build, _contract, _layout
from corrops.jax import _formula, _sharding, _tangent

FORWARD_TARGET = "corrops_corr_loss_forward"  # as csrc/xla_ffi/corr_loss_custom_call.h
BACKWARD_TARGET = "corrops_corr_loss_backward"
LIBRARY_NAME = "_corrops_jax.so"
_STATS_WORDS = 14  # 7 float64 statistics per row, as uint32 pairs (no x64 needed)


def available() -> bool:
    """Whether this build has the JAX binding (jax was importable at build time)."""
    return bool(_build.build_info().get("jax")) and _library_path().exists()


def _library_path() -> Path:
    return _build.sibling_library(LIBRARY_NAME)


@functools.cache
def _register() -> None:
    if not available():
        raise RuntimeError(
            "corrops.jax needs the JAX binding, which this build does not have: jax was not "
            "importable when corrops was built. Install jax, then rebuild corrops where its "
            "build sees it: pip install --no-build-isolation 'corrops[jax]' (or '.[jax]' "
            "from a source tree)"
        )
    lib = ctypes.cdll.LoadLibrary(str(_library_path()))
    handlers = [
        ("cpu", FORWARD_TARGET, lib.CorropsCorrLossForwardCpu),
        ("cpu", BACKWARD_TARGET, lib.CorropsCorrLossBackwardCpu),
    ]
    if "CUDA" in platforms():
        # Queued by jaxlib until a CUDA backend starts; a CPU-only jax never runs them.
        handlers += [
            ("CUDA", FORWARD_TARGET, lib.CorropsCorrLossForwardCuda),
            ("CUDA", BACKWARD_TARGET, lib.CorropsCorrLossBackwardCuda),
        ]
    for platform, name, symbol in handlers:
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(symbol), platform=platform)


def platforms() -> list[str]:
    """The jax.ffi platforms this build has handlers for: "cpu", and "CUDA"
    when it was built with CUDA (those handlers launch the same kernels as
    TF's GPU custom calls)."""
    return list(_build.build_info().get("jax_platforms", ["cpu"] if available() else []))


def corr_loss(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
) -> jax.Array:
    """Per-step correlation loss, shape = the input shape without channels.

    ``y_true``, ``y_pred``: float arrays ``(B, T)`` or ``(B, T, C)`` (time on
    ``axis``; rank 4+ as in :func:`corrops.corr_loss`); y_true is cast to
    y_pred's dtype. ``mask``: bool (or 0/1) array of the loss shape; masked
    steps get loss 0 and gradient 0 and are left out of the statistics.
    ``method``: ``"pearson"`` (``1 - dx*dy / (sx*sy + eps)``) or ``"ccc"``.
    ``eps``: None means 1e-7. ``impl``: ``"fused"`` (None; the custom calls,
    differentiable in reverse mode to any order) or ``"formula"`` (jax.numpy
    ops: not fused, differentiable in every mode, forward mode included).
    """
    explicit = _explicit_spec(y_true, y_pred, axis, drop="channels")
    if explicit is not None:
        return _on_auto_axes(corr_loss, explicit, y_true, y_pred, mask, axis, method, eps, impl)
    impl = _check_impl(impl)
    x, y, m, layout, method_code, eps = _canonical(y_true, y_pred, axis, mask, method, eps)
    loss = _loss_of(impl)(x, y, m, method_code, eps, mask is not None)
    return loss.reshape(layout.loss_shape)


def corrcoef(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
) -> jax.Array:
    """Per-sequence coefficient (Pearson r or CCC, with eps): the input shape
    without the time axis; ``1 - corrcoef`` is the mean of ``corr_loss`` over
    a sequence's valid steps, 0 for a sequence with none. Differentiable;
    ``impl`` as for :func:`corr_loss`."""
    explicit = _explicit_spec(y_true, y_pred, axis, drop="time")
    if explicit is not None:
        return _on_auto_axes(corrcoef, explicit, y_true, y_pred, mask, axis, method, eps, impl)
    impl = _check_impl(impl)
    x, y, m, layout, method_code, eps = _canonical(y_true, y_pred, axis, mask, method, eps)
    outer, time, groups, channels = x.shape
    # One row per (group, channel): the per-step loss is then per row.
    rows = (outer, time, groups * channels, 1)
    has_mask = mask is not None
    if has_mask:
        m = jnp.broadcast_to(m[..., None], x.shape).reshape(rows[:3])
    loss = _loss_of(impl)(x.reshape(rows), y.reshape(rows), m, method_code, eps, has_mask)
    acc = jnp.float32 if loss.dtype in (jnp.float16, jnp.bfloat16) else loss.dtype
    total = jnp.sum(loss.astype(acc), axis=1)
    n = jnp.sum(m, axis=1, dtype=acc) if has_mask else jnp.full_like(total, time)
    coef = jnp.where(n > 0, 1.0 - total / jnp.maximum(n, 1), 0.0).astype(loss.dtype)
    return coef.reshape(layout.coef_shape)


IMPLS = ("fused", "formula")


def _explicit_spec(y_true: Any, y_pred: Any, axis: Any, drop: str) -> Any:
    """For inputs typed with a mesh's Explicit axes (jax.sharding.AxisType):
    the result's PartitionSpec, the inputs' without the channel axis
    (``drop="channels"``, the loss) or the time axis (``"time"``, the
    coefficient); else None."""
    try:
        sharding = jax.typeof(y_pred).sharding
        spec = tuple(sharding.spec)
    except (AttributeError, TypeError):  # not a JAX array or tracer
        return None
    if not any(s is not None for s in spec):
        return None
    ndim = len(np.shape(y_pred))
    spec = spec + (None,) * (ndim - len(spec))
    layout = _layout.check(np.shape(y_true), np.shape(y_pred), axis)
    if drop == "time":
        dropped = layout.axis
    else:
        dropped = ndim - 1 if layout.has_channels else None
    return jax.sharding.PartitionSpec(*(s for i, s in enumerate(spec) if i != dropped))


def _on_auto_axes(fn, spec, y_true, y_pred, mask, axis, method, eps, impl):
    """fn with the mesh's axes Auto (its custom calls are partitioned by
    their sharding rules), the result typed with ``spec``: the layout's
    reshapes merge sharded axes, which Explicit axes would reject."""

    def call(a, b, m):
        return fn(a, b, axis=axis, mask=m, method=method, eps=eps, impl=impl)

    return jax.sharding.auto_axes(call, out_sharding=spec)(y_true, y_pred, mask)


def _check_impl(impl: Any) -> str:
    if impl is None:
        return "fused"
    if not isinstance(impl, str) or impl.lower() not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} (or None), got {impl!r}")
    return impl.lower()


def _loss_of(impl: str):
    """(x, y, m, method code, eps, has_mask) -> per-step loss, for impl."""
    return _loss if impl == "fused" else _formula_canonical


def _formula_canonical(x, y, m, method, eps, has_mask):
    return _formula_loss(m if has_mask else None, method, eps)(x, y)


def _canonical(y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any):
    """Validated inputs on the canonical layout (outer, time, groups, channels),
    the mask (outer, time, groups) or an empty bool array, the layout, the
    method's code and eps. Errors name the argument, as the TF API's do."""
    method = _contract.check_method(method)
    eps = _contract.check_eps(eps)
    y_pred = _as_float(y_pred, "y_pred", None)
    y_true = _as_float(y_true, "y_true", y_pred.dtype)
    layout = _layout.check(y_true.shape, y_pred.shape, axis)
    dims = layout.canonical_dims()
    x, y = y_true.reshape(dims), y_pred.reshape(dims)
    if mask is None:
        m = jnp.zeros((0,), jnp.bool_)
    else:
        m = jnp.asarray(_layout.bool_mask(_as_array(mask, "mask"), jnp.issubdtype))
        _layout.check_loss_shaped(m.shape, layout, "mask")
        m = m.reshape(dims[:3])
    return x, y, m, layout, _contract.METHODS[method].code, eps


def _as_array(value: Any, name: str) -> Any:
    """A JAX array (or tracer) as is; anything else as a NumPy array, so that
    its dtype can be checked before JAX sees it."""
    if isinstance(value, jax.Array):
        return value
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to an array: {err}") from err


def _as_float(value: Any, name: str, dtype: Any) -> jax.Array:
    a = _as_array(value, name)
    if dtype is None:
        if not jnp.issubdtype(a.dtype, jnp.floating):
            if jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == np.bool_:
                return jnp.asarray(a, jnp.float32)
            raise TypeError(f"{name} must be a float array, got dtype {a.dtype}")
        return jnp.asarray(a)
    if not (jnp.issubdtype(a.dtype, jnp.floating) or jnp.issubdtype(a.dtype, jnp.integer)):
        raise TypeError(f"{name} must be a float array, got dtype {a.dtype}")
    return jnp.asarray(a, dtype)


# ---------------------------------------------------------------- the custom calls


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def _loss(x: jax.Array, y: jax.Array, m: jax.Array, method: int, eps: float, has_mask: bool):
    return _forward(x, y, m, method, eps, has_mask)[0]


@functools.partial(_loss.defjvp, symbolic_zeros=True)
def _loss_jvp(method, eps, has_mask, primals, tangents):
    # The tangent is a primitive linear in (tx, ty) whose transpose is the
    # fused backward (corrops/jax/_tangent.py): jax.jvp evaluates the
    # formula's JVP, jax.grad runs the fused backward. A tangent JAX knows to
    # be zero (symbolic_zeros) stays out: a training step differentiates
    # y_pred only, and the backward then skips dL/dy_true, a quarter of its
    # memory traffic.
    x, y, m = primals
    loss, stats = _forward(x, y, m, method, eps, has_mask)
    tx, ty = (None if isinstance(t, SymbolicZero) else t for t in tangents[:2])
    if tx is None and ty is None:
        return loss, jnp.zeros_like(loss)
    return loss, _tangent.bind(
        x,
        y,
        m,
        stats,
        tx,
        ty,
        method=method,
        eps=eps,
        has_mask=has_mask,
        formula=_formula_loss,
        backward=_backward,
    )


def _attributes(method: int, eps: float, has_mask: bool) -> dict[str, Any]:
    return {"method": np.int32(method), "eps": np.float64(eps), "has_mask": np.int32(has_mask)}


# The fused custom calls carry derivatives of their own, those of the
# jax.numpy formula (corrops/jax/_formula.py): gradients of gradients and
# Hessian-vector products differentiate the fused calls of the first
# derivative through it. First reverse-mode derivatives stay fused (_loss's
# tangent transposes to the fused backward).
@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def _forward(x, y, m, method, eps, has_mask):
    _register()
    return _forward_call(method, eps, has_mask)(x, y, m)


@_forward.defjvp
def _forward_jvp(method, eps, has_mask, primals, tangents):
    x, y, m = primals
    loss, stats = _forward(x, y, m, method, eps, has_mask)
    formula = _formula_loss(m if has_mask else None, method, eps)
    _, dloss = jax.jvp(formula, (x, y), tuple(tangents[:2]))
    return (loss, stats), (dloss, np.zeros(stats.shape, jax.dtypes.float0))


def _formula_loss(mask, method, eps):
    return functools.partial(
        _formula.corr_loss, mask=mask, method=_contract.METHODS_BY_CODE[method].name, eps=eps
    )


@functools.cache
def _forward_call(method: int, eps: float, has_mask: bool):
    """The forward custom call, partitioned per shard, with its vmap rule."""
    attributes = _attributes(method, eps, has_mask)

    def call(x, y, m):
        # Result types from the shapes of this call (per shard; a vmap rule folds rows in).
        outer, time, groups, channels = x.shape
        types = (
            jax.ShapeDtypeStruct((outer, time, groups), x.dtype),
            jax.ShapeDtypeStruct((outer, groups * channels, _STATS_WORDS), jnp.uint32),
        )
        return jax.ffi.ffi_call(FORWARD_TARGET, types)(x, y, m, **attributes)

    return _rows_vmap(_sharding.forward(call, has_mask))


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6, 7, 8, 9))
def _backward(g, x, y, m, stats, method, eps, has_mask, want_true, want_pred):
    _register()
    return _backward_call(method, eps, has_mask, want_true, want_pred)(g, x, y, m, stats)


@_backward.defjvp
def _backward_jvp(method, eps, has_mask, want_true, want_pred, primals, tangents):
    g, x, y, m, stats = primals
    out = _backward(g, x, y, m, stats, method, eps, has_mask, want_true, want_pred)
    formula = _formula_loss(m if has_mask else None, method, eps)

    def formula_backward(g, x, y):
        return jax.vjp(formula, x, y)[1](g)

    _, (dgx, dgy) = jax.jvp(formula_backward, (g, x, y), tuple(tangents[:3]))
    tangent = tuple(
        d if want else jnp.zeros_like(o)
        for d, o, want in zip((dgx, dgy), out, (want_true, want_pred), strict=True)
    )
    return out, tangent


@functools.cache
def _backward_call(method: int, eps: float, has_mask: bool, want_true: bool, want_pred: bool):
    """The backward custom call, partitioned per shard, with its vmap rule."""
    attributes = _attributes(method, eps, has_mask)

    def call(g, x, y, m, stats):
        # A gradient not asked for is the contract's [0] result.
        types = tuple(
            jax.ShapeDtypeStruct(x.shape if want else (0,), x.dtype)
            for want in (want_true, want_pred)
        )
        return jax.ffi.ffi_call(BACKWARD_TARGET, types)(g, x, y, m, stats, **attributes)

    return _rows_vmap(_sharding.backward(call, has_mask, want_true, want_pred))


def _rows_vmap(call):
    """``call`` (arrays whose leading axis is the rows' outer axis, or the
    empty mask) with a vmap rule that folds a mapped axis into that outer
    axis: one custom call for the whole batch, whatever the nesting."""
    fn = jax.custom_batching.custom_vmap(call)

    @fn.def_vmap
    def rule(axis_size, in_batched, *args):
        folded = []
        for a, mapped in zip(args, in_batched, strict=True):
            if a.ndim - mapped == 1:  # the [0] placeholder of no mask: no rows
                folded.append(jnp.zeros((0,), a.dtype))
                continue
            full = a if mapped else jnp.broadcast_to(a, (axis_size, *a.shape))
            folded.append(full.reshape((axis_size * full.shape[1], *full.shape[2:])))
        outs = fn(*folded)
        unfolded = tuple(
            o.reshape((axis_size, o.shape[0] // axis_size, *o.shape[1:])) for o in outs
        )
        return unfolded, (True,) * len(outs)

    return fn

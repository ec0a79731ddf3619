"""Argument validation and the reshape of user tensors to the canonical layout.

Every bad argument raises ValueError/TypeError naming it; the reshapes are
metadata-only (no copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from corrops import _contract, _layout

IMPLS = ("auto", "fused", "tf")
FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
check_method = _contract.check_method
check_eps = _contract.check_eps


def check_impl(impl: Any) -> str:
    return _contract.check_impl(impl, IMPLS)


@dataclass(frozen=True)
class Canonical:
    """User tensors reshaped to (outer, time, groups, channels)."""

    x: tf.Tensor
    y: tf.Tensor
    mask: tf.Tensor | None  # (outer, time, groups) bool
    loss_shape: tf.Tensor  # dynamic shape of the per-step loss
    loss_static: tf.TensorShape
    coef_shape: tf.Tensor  # dynamic shape of corrcoef's output
    coef_static: tf.TensorShape
    method: str
    eps: float


def _to_tensor(value: Any, name: str, dtype: tf.DType | None = None) -> tf.Tensor:
    try:
        if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "dtype"):
            return tf.convert_to_tensor(value)
        return tf.convert_to_tensor(value, dtype_hint=dtype)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} could not be converted to a tensor: {err}") from err


def _check_float(t: tf.Tensor, name: str) -> None:
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(_contract.float_dtype_error(name, t.dtype.name))


def _prod(dims: tf.Tensor) -> tf.Tensor:
    return tf.reduce_prod(dims)


def canonicalize(
    y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any
) -> Canonical:
    """Validates the arguments of corr_loss/corrcoef and reshapes them."""
    method = check_method(method)
    eps = check_eps(eps)
    y_pred = _to_tensor(y_pred, "y_pred", tf.float32)
    _check_float(y_pred, "y_pred")
    y_true = _to_tensor(y_true, "y_true", y_pred.dtype)
    _check_float(y_true, "y_true")
    if y_true.dtype != y_pred.dtype:
        y_true = tf.cast(y_true, y_pred.dtype)

    if y_true.shape.rank is None or y_pred.shape.rank is None:
        raise ValueError("y_true and y_pred must have a known rank")
    layout = _layout.check(tuple(y_true.shape), tuple(y_pred.shape), axis)
    if layout.expand == "y_pred":
        y_pred = tf.expand_dims(y_pred, -1)
    elif layout.expand == "y_true":
        y_true = tf.expand_dims(y_true, -1)
    rank, axis, has_channels = layout.rank, layout.axis, layout.has_channels
    static = tf.TensorShape(layout.shape)
    loss_static = tf.TensorShape(layout.loss_shape)
    coef_static = tf.TensorShape(layout.coef_shape)
    if static.is_fully_defined():
        # Known shapes (the usual tf.function / Keras case): constant target
        # shapes, so the graph holds no shape arithmetic (~15 ops fewer; at
        # small sizes the executor's per-op cost dominates the loss itself).
        shape4 = tf.constant(layout.canonical_dims(), tf.int64)
        dyn = tf.constant(static.as_list(), tf.int64)
        loss_shape = tf.constant(loss_static.as_list(), tf.int64)
        coef_shape = tf.constant(coef_static.as_list(), tf.int64)
    else:
        dyn = tf.shape(y_pred, out_type=tf.int64)  # int64: dims may exceed 2**31
        outer = _prod(dyn[:axis])
        time = dyn[axis]
        groups = _prod(dyn[axis + 1 : rank - 1]) if has_channels else _prod(dyn[axis + 1 :])
        channels = dyn[-1] if has_channels else tf.constant(1, tf.int64)
        shape4 = tf.stack([outer, time, groups, channels])
        loss_shape = dyn[:-1] if has_channels else dyn
        coef_shape = tf.concat([dyn[:axis], dyn[axis + 1 :]], axis=0)
    x = tf.reshape(y_true, shape4)
    y = tf.reshape(y_pred, shape4)

    mask3 = None
    if mask is not None:
        m = _to_tensor(mask, "mask", tf.bool)
        if m.dtype != tf.bool:
            if not (m.dtype.is_integer or m.dtype.is_floating):
                raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {m.dtype.name}")
            m = tf.not_equal(m, tf.zeros([], m.dtype))
        if m.shape.rank is None:
            raise ValueError("mask must have a known rank")
        _layout.check_loss_shaped(tuple(m.shape), layout, "mask")
        mask3 = tf.reshape(m, shape4[:3])
        # Dynamic dims are checked by the fused op itself and here for the fallback.
        mask3 = _assert_same_shape(m, loss_static, loss_shape, mask3, "mask")
    x = _assert_same_shape(y_true, static, dyn, x, "y_true")
    return Canonical(x, y, mask3, loss_shape, loss_static, coef_shape, coef_static, method, eps)


def _assert_same_shape(
    t: tf.Tensor, want_static: tf.TensorShape, want: tf.Tensor, out: tf.Tensor, name: str
) -> tf.Tensor:
    """Guards `out` with a runtime shape check where static shapes cannot prove
    that `t` has shape `want` (a same-size but different shape would otherwise
    be silently reshaped)."""
    if t.shape.is_fully_defined() and want_static.is_fully_defined():
        return out  # already proven equal by the static checks
    check = tf.debugging.assert_equal(
        tf.shape(t, out_type=tf.int64), want, message=f"{name} must have shape {want_static}"
    )
    with tf.control_dependencies([check]):
        return tf.identity(out)

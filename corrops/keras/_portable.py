"""The contract of docs/DESIGN.md in ``keras.ops``: corrops on any Keras
backend (JAX, PyTorch, TensorFlow) where the fused op cannot run.

The row formulas are corrops/_row_formula.py's (those of the pure-TF
fallback, corrops/tensorflow/_fallback.py), run with ``keras.ops``. Gradients are the
backend's autodiff of these ops; the shift and the scale carry none (any
value gives the same function).

Inputs are validated with the shape contract of corrops/_layout.py and must
have static shapes (as on JAX and PyTorch, and in eager TF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from corrops import _contract, _layout, _row_formula

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Canonical:
    """User tensors reshaped to (outer, time, groups, channels)."""

    x: Any
    y: Any
    mask: Any  # (outer, time, groups) bool, or None
    layout: _layout.Layout


def _dtype(t: Any) -> str:
    try:
        return keras.backend.standardize_dtype(t.dtype)
    except ValueError:  # strings, objects
        return str(t.dtype)


def _as_array(value: Any, name: str, default: str) -> Any:
    """A tensor or array as it is; anything else (lists, scalars) as a NumPy
    array, numbers without a dtype as ``default``, so that the dtype can be
    checked before the backend sees it."""
    if hasattr(value, "dtype"):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to a tensor: {err}") from err
    return array.astype(default) if array.dtype.kind in "biu" else array


def _check_float(t: Any, name: str) -> None:
    if _dtype(t) not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {_dtype(t)}"
        )


def canonicalize(y_true: Any, y_pred: Any, axis: Any, mask: Any) -> Canonical:
    """Validates y_true, y_pred, axis and mask and reshapes them (errors name
    the argument, as the TF API's do). y_true is cast to y_pred's dtype."""
    y_pred = _as_array(y_pred, "y_pred", keras.config.floatx())
    _check_float(y_pred, "y_pred")
    y_true = _as_array(y_true, "y_true", _dtype(y_pred))
    _check_float(y_true, "y_true")
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), _dtype(y_pred))
    layout = _layout.check(tuple(ops.shape(y_true)), tuple(ops.shape(y_pred)), axis)
    if any(d is None for d in layout.shape):
        raise ValueError(
            f"y_true and y_pred must have static shapes on the {keras.backend.backend()} "
            f"backend, got {layout.shape}"
        )
    dims = layout.canonical_dims()
    x, y = ops.reshape(y_true, dims), ops.reshape(y_pred, dims)
    mask3 = None
    if mask is not None:
        m = _as_array(mask, "mask", "bool")
        kind = _dtype(m)
        if kind != "bool" and not (kind.startswith(("int", "uint", "float")) or kind == "bfloat16"):
            raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {kind}")
        m = ops.convert_to_tensor(m)
        if kind != "bool":
            m = ops.not_equal(m, 0)
        _layout.check_loss_shaped(tuple(ops.shape(m)), layout, "mask")
        mask3 = ops.reshape(m, dims[:3])
    return Canonical(x, y, mask3, layout)


def _accumulation_dtype(dtype: str) -> str:
    return "float32" if dtype in ("float16", "bfloat16") else dtype


class _Rows(NamedTuple):
    c: Canonical
    dx: Any  # scaled deviations, (outer, time, groups, channels), accumulation dtype
    dy: Any
    scale: Any  # 1/D or 2/D per row
    out_dtype: str


def _rows(y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any) -> _Rows:
    """The arguments checked and reshaped, and the rows' statistics."""
    method, eps = _contract.check_method(method), _contract.check_eps(eps)
    c = canonicalize(y_true, y_pred, axis, mask)
    out_dtype = _dtype(c.y)
    acc = _accumulation_dtype(out_dtype)
    dx, dy, scale = _row_formula.row_coefficients(
        ops.cast(c.x, acc), ops.cast(c.y, acc), c.mask, method, eps, ops, _dtype
    )
    return _Rows(c, dx, dy, scale, out_dtype)


def corr_loss(y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any) -> Any:
    """Per-step loss, the input shape without the channel axis, in y_pred's
    dtype (statistics in float32 for half types); see corrops.corr_loss."""
    r = _rows(y_true, y_pred, axis, mask, method, eps)
    channels = r.dx.shape[3]
    loss = ops.sum(1.0 - r.dx * r.dy * r.scale, axis=3) / max(channels, 1)
    if r.c.mask is not None:
        loss = ops.where(r.c.mask, loss, 0.0)
    return ops.reshape(ops.cast(loss, r.out_dtype), r.c.layout.loss_shape)


def corrcoef(y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any) -> Any:
    """Per-sequence coefficient, the input shape without the time axis (0 for
    a sequence without a valid step); see corrops.corrcoef."""
    r = _rows(y_true, y_pred, axis, mask, method, eps)
    if r.c.mask is None:
        inv_n = 1.0 / max(r.dx.shape[1], 1)
    else:
        n = ops.sum(ops.cast(r.c.mask, r.dx.dtype), axis=1)[:, None, :, None]
        inv_n = ops.where(n > 0, 1.0 / ops.maximum(n, 1.0), 0.0)
    coef = ops.sum(r.dx * r.dy, axis=1, keepdims=True) * inv_n * r.scale
    return ops.reshape(ops.cast(coef, r.out_dtype), r.c.layout.coef_shape)

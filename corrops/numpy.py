"""NumPy front end over the same csrc/core engine as the TF op (pybind11).

Same semantics and shapes as the TF functions, without building a graph: for
evaluation scripts, data pipelines and cross-checking. Any float16/float32/
float64 array layout is accepted (non-contiguous, negative strides, Fortran
order: converted where needed); float16 is computed in float32 and returned as
float16. The GIL is released while computing, and large inputs run on several
threads (``threads=0``: all cores); results do not depend on the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from corrops import _layout
from corrops._contract import check_eps, check_method

try:
    from corrops import _corrops_numpy as _native
except ImportError as err:  # pragma: no cover - exercised only without a build
    _native = None
    _IMPORT_ERROR = str(err)

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


@dataclass(frozen=True)
class _Prepared:
    x: np.ndarray  # (outer, time, groups, channels), contiguous, compute dtype
    y: np.ndarray
    mask: np.ndarray | None  # (outer, time, groups) bool
    dims: tuple[int, int, int, int]
    true_shape: tuple[int, ...]  # the caller's shapes (for gradients)
    pred_shape: tuple[int, ...]
    loss_shape: tuple[int, ...]
    coef_shape: tuple[int, ...]
    dtype: np.dtype  # result dtype
    method: str
    eps: float


def _native_module():
    if _native is None:
        raise ImportError(f"the corrops NumPy extension is not built: {_IMPORT_ERROR}")
    return _native


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} could not be converted to an array: {err}") from err
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float16, float32 or float64 array, got dtype {arr.dtype}"
        )
    return arr


def _prepare(
    y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any, grad: Any = None
) -> tuple[_Prepared, np.ndarray | None]:
    method = check_method(method)
    eps = check_eps(eps)
    y_pred = _as_float_array(y_pred, "y_pred")
    y_true = _as_float_array(y_true, "y_true")
    true_shape, pred_shape = y_true.shape, y_pred.shape
    layout = _layout.check(true_shape, pred_shape, axis)
    if layout.expand == "y_pred":
        y_pred = y_pred[..., np.newaxis]
    elif layout.expand == "y_true":
        y_true = y_true[..., np.newaxis]
    dims = layout.canonical_dims()
    loss_shape = tuple(int(d) for d in layout.loss_shape)
    coef_shape = tuple(int(d) for d in layout.coef_shape)
    compute = np.float32 if y_pred.dtype == np.float16 else y_pred.dtype

    def canon(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(compute, copy=False).reshape(dims))

    mask3 = None
    if mask is not None:
        m = _layout.bool_mask(np.asarray(mask))
        _layout.check_loss_shaped(m.shape, layout, "mask")
        mask3 = np.ascontiguousarray(m.reshape(dims[:3]))
    g3 = None
    if grad is not None:
        g = _as_float_array(grad, "grad")
        _layout.check_loss_shaped(g.shape, layout, "grad")
        g3 = np.ascontiguousarray(g.astype(compute, copy=False).reshape(dims[:3]))
    prepared = _Prepared(
        canon(y_true),
        canon(y_pred),
        mask3,
        dims,
        true_shape,
        pred_shape,
        loss_shape,
        coef_shape,
        y_pred.dtype,
        method,
        eps,
    )
    return prepared, g3


def _forward(p: _Prepared, threads: int) -> tuple[np.ndarray, np.ndarray]:
    native = _native_module()
    fn = native.forward_f64 if p.x.dtype == np.float64 else native.forward_f32
    return fn(p.x, p.y, p.mask, p.method, p.eps, threads)


def corr_loss(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    threads: int = 0,
) -> np.ndarray:
    """Per-time-step correlation loss of NumPy arrays.

    Shapes as :func:`corrops.corr_loss`: ``(B, T)`` or ``(B, T, C)`` inputs
    (time axis ``axis``), output shape = input shape without the channel axis,
    in ``y_pred``'s float dtype.
    """
    p, _ = _prepare(y_true, y_pred, axis, mask, method, eps)
    loss, _stats = _forward(p, threads)
    return loss.reshape(p.loss_shape).astype(p.dtype, copy=False)


def corrcoef(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    threads: int = 0,
) -> np.ndarray:
    """Per-sequence coefficient, shape = input shape without the time axis
    (``(B,)`` or ``(B, C)``); 0 for a sequence without a valid step."""
    p, _ = _prepare(y_true, y_pred, axis, mask, method, eps)
    _loss, stats = _forward(p, threads)
    coef = _native_module().coefficients_f64(stats, p.method, p.eps)
    return coef.reshape(p.coef_shape).astype(p.dtype, copy=False)


def corr_loss_grad(
    y_true: Any,
    y_pred: Any,
    grad: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``sum(grad * corr_loss(y_true, y_pred))``.

    ``grad`` has the loss shape; returns ``(d/dy_true, d/dy_pred)`` with the
    shapes of ``y_true`` and ``y_pred``.
    """
    p, g3 = _prepare(y_true, y_pred, axis, mask, method, eps, grad=grad)
    _loss, stats = _forward(p, threads)
    native = _native_module()
    fn = native.backward_f64 if p.x.dtype == np.float64 else native.backward_f32
    gx, gy = fn(g3, p.x, p.y, p.mask, stats, p.method, p.eps, threads)
    return (
        gx.reshape(p.true_shape).astype(p.dtype, copy=False),
        gy.reshape(p.pred_shape).astype(p.dtype, copy=False),
    )

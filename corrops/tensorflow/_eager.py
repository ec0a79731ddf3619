"""The lean eager call: one fused-op call on the user's own tensors.

An eager ``corr_loss`` in the common case (EagerTensors of one float dtype and
the same shape, ``(B, T)`` or ``(B, T, C)``, time on axis 1, no mask) needs
none of the general path's work: the fused op takes these layouts as they are
and returns the ``(B, T)`` loss, so the call is the op plus a few attribute
checks. Anything else returns None and takes the general path, which
validates, reshapes and reports errors; graphs always take it.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from corrops.tensorflow import _dispatch, _fused, _inputs, _private


def _common_case(y_true: Any, y_pred: Any, axis: Any, mask: Any) -> bool:
    """EagerTensors of one float dtype and one shape, (B, T) or (B, T, C),
    time on axis 1, no mask and no Keras mask."""
    if mask is not None or not isinstance(y_pred, _private.EagerTensor):
        return False
    if not isinstance(y_true, _private.EagerTensor) or y_true.dtype != y_pred.dtype:
        return False
    shape = _private.eager_shape(y_pred)
    rank = len(shape)
    return (
        rank in (2, 3)
        and _private.eager_shape(y_true) == shape
        and type(axis) is int
        and axis in (1, 1 - rank)
        and y_pred.dtype in _inputs.FLOAT_DTYPES
        and _private.attached_mask(y_pred) is None
    )


def corr_loss(
    y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any, impl: str
) -> tf.Tensor | None:
    """The per-step loss ``(B, T)`` by the fused op, or None where the general
    path is needed. ``impl`` is already checked."""
    if impl == "tf" or not _common_case(y_true, y_pred, axis, mask):
        return None
    method = _inputs.check_method(method)
    eps = _inputs.check_eps(eps)
    if _dispatch.choose(impl)[0] != "fused":
        return None
    loss, _stats = _fused.forward(y_true, y_pred, None, method, eps)
    return loss

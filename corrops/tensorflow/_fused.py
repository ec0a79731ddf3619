"""Fused op wrappers and the gradient registration (exactly once)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from corrops.tensorflow import _loader, _second_order, _upstream

_OP_NAME = "Corrops>CorrLoss"
_GRAD_OP_NAME = "Corrops>CorrLossGrad"


# Eager calls reuse these constants (a fresh one costs a few us per call);
# graphs get their own, so no eager tensor is ever captured.
_eager_constants: dict[tuple, tf.Tensor] = {}


def _constant(value: float | list, dtype: tf.DType) -> tf.Tensor:
    if not tf.executing_eagerly():
        return tf.constant(value, dtype)
    key = (repr(value), dtype)
    cached = _eager_constants.get(key)
    if cached is None:
        if len(_eager_constants) >= 64:  # a few eps values in practice
            _eager_constants.clear()
        cached = _eager_constants[key] = tf.constant(value, dtype)
    return cached


def _empty_mask() -> tf.Tensor:
    return _constant([], tf.bool)


def forward(
    x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor | None, method: str, eps: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Runs Corrops>CorrLoss; returns (loss, stats).

    ``x``, ``y``: (outer, time, groups, channels), or (outer, time, channels)
    or (outer, time) with one group; ``mask`` None or bool of the loss shape,
    which is the data shape without its channel axis.
    """
    ops = _loader.load_ops()
    return ops.corrops_corr_loss(
        y_true=x,
        y_pred=y,
        mask=_empty_mask() if mask is None else mask,
        eps=_constant(eps, tf.float64),
        method=method,
        has_mask=mask is not None,
    )


def grad_of_forward(op: tf.Operation, grad_loss: tf.Tensor, grad_op: Callable) -> list:
    """The gradient of a forward op with Corrops>CorrLoss's interface through
    ``grad_op``, an op with Corrops>CorrLossGrad's (the fused pair, or the
    benchmarks' memory-pattern bound pair, wired identically). Returns the
    gradients of (y_true, y_pred, mask, eps)."""
    # The stats output is an implementation detail consumed only by this
    # gradient; corrops never exposes it to differentiation.
    # A GradientTape passes the inputs it does not need in skip_input_indices
    # (a training step needs dL/dy_pred only): the op then skips the other
    # gradient, which saves a quarter of the backward's memory traffic.
    # Graph-mode tf.gradients passes a real Operation without it: both.
    skip = getattr(op, "skip_input_indices", None) or ()
    want_true, want_pred = 0 not in skip, 1 not in skip
    if not (want_true or want_pred):
        return [None, None, None, None]
    # The gradient of a mean or sum of the loss is one value broadcast: pass it
    # as the loss shape with time 1, so the full-size broadcast is never built
    # and the CPU kernel makes one pass (see _upstream).
    compact = _upstream.time_constant_grad(grad_loss, op.inputs[0])
    grad_true, grad_pred = grad_op(
        grad=grad_loss if compact is None else compact,
        y_true=op.inputs[0],
        y_pred=op.inputs[1],
        mask=op.inputs[2],
        stats=op.outputs[1],
        eps=op.inputs[3],
        # Lent, not read: the kernel may write the gradient into the loss's
        # buffer once nothing else needs it (one allocation fewer per step).
        loss=op.outputs[0],
        method=op.get_attr("method"),
        has_mask=op.get_attr("has_mask"),
        want_grad_true=want_true,
        want_grad_pred=want_pred,
    )
    return [grad_true if want_true else None, grad_pred if want_pred else None, None, None]


def _corr_loss_grad(op: tf.Operation, grad_loss: tf.Tensor, _grad_stats: tf.Tensor) -> list:
    return grad_of_forward(op, grad_loss, _loader.load_ops().corrops_corr_loss_grad)


def _register_gradients() -> None:
    gradients = (
        (_OP_NAME, _corr_loss_grad),
        # Second and higher orders (a tape inside a tape).
        (_GRAD_OP_NAME, _second_order.corr_loss_grad_grad),
    )
    for name, fn in gradients:
        try:
            tf.RegisterGradient(name)(fn)
        except KeyError:  # already registered (module re-imported): keep the first
            pass


_register_gradients()

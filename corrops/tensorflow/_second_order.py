"""The gradient of Corrops>CorrLossGrad, so that the fused path can be
differentiated to any order (gradient penalties, Hessian-vector products).

The gradient op maps (upstream ``g``, ``x``, ``y``) to ``(J_x^T g, J_y^T g)``,
where ``J`` is the Jacobian of the per-step loss. Its own vector-Jacobian
product is the second derivative of the loss: it is computed here by
differentiating the pure-TF fallback (``_fallback.corr_loss``) twice, with
nested tapes, on the op's own canonical inputs. The fallback's first
derivative equals the fused op's (tests/test_gradients.py), every op it uses is
differentiable, and so the result is differentiable again: any order works.

The op's ``stats`` input is a function of ``x`` and ``y`` (the forward's second
output); the derivative computed here is the total one with respect to ``x``
and ``y``, so ``stats`` gets none (it would otherwise be counted twice).
``mask``, ``eps`` and the lent ``loss`` buffer get none either.
"""

from __future__ import annotations

import tensorflow as tf

from corrops.tensorflow import _fallback


def _attr_str(op: tf.Operation, name: str) -> str:
    value = op.get_attr(name)
    return value.decode() if isinstance(value, bytes) else str(value)


def corr_loss_grad_grad(op: tf.Operation, up_true: tf.Tensor, up_pred: tf.Tensor) -> list:
    """Gradient function of Corrops>CorrLossGrad.

    Inputs of ``op``: ``grad`` (the loss shape ``(outer, time, groups)``, or
    ``(outer, 1, groups)`` when constant along time), ``y_true`` and ``y_pred``
    ``(outer, time, groups, channels)``, ``mask``, ``stats``, ``eps``, ``loss``.
    ``up_true``/``up_pred`` are the upstream gradients of its two outputs
    (shape ``[0]`` or None for an output the op did not compute). Returns the
    gradients of ``grad``, ``y_true`` and ``y_pred`` (None for the others).
    """
    g, x, y, mask_in, _stats, eps, _loss = op.inputs
    wanted = [
        (out, up)
        for out, up in ((0, up_true), (1, up_pred))
        if up is not None and op.get_attr(("want_grad_true", "want_grad_pred")[out])
    ]
    skip = set(getattr(op, "skip_input_indices", None) or ())
    sources = [k for k in (0, 1, 2) if k not in skip]
    if not wanted or not sources:
        return [None] * 7
    mask = mask_in if op.get_attr("has_mask") else None
    method = _attr_str(op, "method")
    inputs = [g, x, y]
    with tf.GradientTape() as outer:
        outer.watch([inputs[k] for k in sources])
        # The fallback takes the canonical layout: (outer, time, channels)
        # and (outer, time) data are one group (and one channel).
        canon = _canonical if x.shape.rank < 4 else (lambda t, rank: t)
        x4, y4 = canon(x, 4), canon(y, 4)
        with tf.GradientTape() as inner:
            inner.watch([x4, y4])
            loss = _fallback.corr_loss(x4, y4, canon(mask, 3), method, eps)
        # The compact form stands for its value at every step.
        g_full = tf.broadcast_to(canon(g, 3), tf.shape(loss))
        first = inner.gradient(loss, [x4, y4], output_gradients=g_full)
    targets = [first[out] for out, _ in wanted]
    grads = outer.gradient(
        targets,
        [inputs[k] for k in sources],
        output_gradients=[tf.reshape(up, tf.shape(x4)) for _, up in wanted],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    result: list = [None] * 7
    for k, grad in zip(sources, grads, strict=True):
        result[k] = grad
    return result


def _canonical(t: tf.Tensor | None, rank: int) -> tf.Tensor | None:
    """(outer, time[, channels]) data as (outer, time, 1, channels), or an
    (outer, time) loss-shaped tensor as (outer, time, 1)."""
    if t is None:
        return None
    if rank == 4 and t.shape.rank == 3:
        return tf.expand_dims(t, 2)
    return tf.reshape(t, tf.concat([tf.shape(t), tf.ones([rank - t.shape.rank], tf.int32)], 0))

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

from corrops import _fallback


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
        with tf.GradientTape() as inner:
            inner.watch([x, y])
            loss = _fallback.corr_loss(x, y, mask, method, eps)
        # The compact form stands for its value at every step.
        first = inner.gradient(loss, [x, y], output_gradients=tf.broadcast_to(g, tf.shape(loss)))
    targets = [first[out] for out, _ in wanted]
    grads = outer.gradient(
        targets,
        [inputs[k] for k in sources],
        output_gradients=[up for _, up in wanted],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    result: list = [None] * 7
    for k, grad in zip(sources, grads, strict=True):
        result[k] = grad
    return result

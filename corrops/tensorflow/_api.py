"""Public TF functions: corr_loss and corrcoef."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from corrops.tensorflow import _dispatch, _eager, _fallback, _fused, _inputs, _private, _ragged


def _prepare(
    y_true: Any, y_pred: Any, axis: Any, mask: Any, method: Any, eps: Any, impl: str
) -> tuple[_inputs.Canonical, str, _ragged.Padded | None]:
    """The preamble of corr_loss and corrcoef: ragged inputs padded with the
    mask of their steps (or the Keras mask of y_pred taken), the arguments
    checked and reshaped to the canonical layout, the implementation chosen."""
    padded = _ragged.pad(y_true, y_pred, axis, mask)
    if padded is not None:
        y_true, y_pred, mask = padded.y_true, padded.y_pred, padded.mask
    elif mask is None:
        mask = _private.attached_mask(y_pred)
    c = _inputs.canonicalize(y_true, y_pred, axis, mask, method, eps)
    choice, _ = _dispatch.choose(impl)
    return c, choice, padded


@tf.autograph.experimental.do_not_convert
def corr_loss(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
) -> tf.Tensor:
    """Per-time-step correlation loss.

    Shapes: ``y_true`` and ``y_pred`` of shape ``(B, T)`` or ``(B, T, C)``
    (any rank >= 2; the time axis is ``axis``, and with rank >= 3 the last axis
    is channels). Returns the per-step loss, shape = input shape without the
    channel axis (``(B, T)``), averaged over channels. ``y_true`` of shape
    ``(B, T)`` with ``y_pred`` ``(B, T, 1)`` (or the reverse) is accepted, and
    ``y_true`` is cast to ``y_pred``'s float dtype.

    Variable-length sequences may come as ``tf.RaggedTensor`` with time as the
    ragged dimension, ``(B, None)`` or ``(B, None, C)``, both ragged with the
    same row lengths: the result is then the ragged per-step loss ``(B,
    None)`` with those row lengths, and each row's statistics are those of
    its own steps (as a padded tensor with a mask). ``axis`` must be 1 and
    ``mask`` None.

    Args:
      method: ``"pearson"`` (the naive formula's ``1 - dx*dy / (sqrt(vx*vy)
        + eps)``) or ``"ccc"`` (``1 - 2*dx*dy / (vx + vy + (mx-my)^2 + eps)``).
        The mean of the loss over a sequence's valid steps is ``1 - r`` (or
        ``1 - CCC``) of that sequence, up to eps.
      mask: bool or 0/1 tensor of the loss shape; statistics use only valid
        steps; masked steps get loss 0 and gradient 0. When None and
        ``y_pred`` carries a Keras mask (``Masking``, ``mask_zero=True``, a
        masked RNN), that mask is used.
      eps: added to the denominator; None means ``corrops.DEFAULT_EPS`` (1e-7).
      impl: ``"auto"`` (fused op where it can run, else the pure-TF fallback),
        ``"fused"`` (raise if it cannot run), ``"tf"``; None reads
        ``$CORROPS_IMPL`` (default ``"auto"``).
    """
    impl = _inputs.check_impl(impl)
    if tf.executing_eagerly():
        lean = _eager.corr_loss(y_true, y_pred, axis, mask, method, eps, impl)
        if lean is not None:
            return lean
    c, choice, padded = _prepare(y_true, y_pred, axis, mask, method, eps, impl)
    # Inside XLA, with one group (and for the fallback one channel), both
    # run on views without those axes, so that no reduction, theirs or a
    # training step's mean of the loss, sees a trailing axis of 1: XLA's CPU
    # reductions are several times slower with one. The views are free inside
    # XLA (in a graph they would be more ops).
    one_group = c.x.shape[2] == 1 and _dispatch.in_xla_context()
    mask = None if c.mask is None or not one_group else c.mask[:, :, 0]
    if choice == "fused" and one_group:
        loss3, _stats = _fused.forward(c.x[:, :, 0], c.y[:, :, 0], mask, c.method, c.eps)
    elif choice == "fused":
        loss3, _stats = _fused.forward(c.x, c.y, c.mask, c.method, c.eps)
    elif one_group and c.x.shape[3] == 1:
        loss3 = _fallback.corr_loss(c.x[:, :, 0, 0], c.y[:, :, 0, 0], mask, c.method, c.eps)
    else:
        loss3 = _fallback.corr_loss(c.x, c.y, c.mask, c.method, c.eps)
    loss = tf.reshape(loss3, c.loss_shape)
    loss.set_shape(c.loss_static)
    return loss if padded is None else padded.restore(loss)


@tf.autograph.experimental.do_not_convert
def corrcoef(
    y_true: Any,
    y_pred: Any,
    *,
    axis: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
) -> tf.Tensor:
    """Per-sequence correlation coefficient (Pearson r or CCC, with eps).

    Same arguments as :func:`corr_loss`. Returns shape ``(B,)`` for ``(B, T)``
    inputs and ``(B, C)`` for ``(B, T, C)`` (the input shape without the time
    axis). ``1 - corrcoef`` equals the mean of ``corr_loss`` over each row's
    valid steps; a row with no valid step has coefficient 0. Differentiable.
    Ragged ``(B, None)``/``(B, None, C)`` inputs give a dense ``(B,)``/``(B,
    C)``.
    """
    impl = _inputs.check_impl(impl)
    c, choice, _padded = _prepare(y_true, y_pred, axis, mask, method, eps, impl)
    if choice == "fused":
        coef = _fused_corrcoef(c)
    else:
        coef = _fallback.corrcoef(c.x, c.y, c.mask, c.method, c.eps)
    coef = tf.reshape(coef, c.coef_shape)
    coef.set_shape(c.coef_static)
    return coef


def _fused_corrcoef(c: _inputs.Canonical) -> tf.Tensor:
    # One row per (group, channel), so the per-step loss is per row; then
    # coefficient = 1 - mean over valid steps (differentiable via the op).
    shape4 = tf.shape(c.x, out_type=tf.int64)
    rows3 = tf.stack([shape4[0], shape4[1], shape4[2] * shape4[3]])
    x = tf.reshape(c.x, tf.concat([rows3, tf.ones([1], tf.int64)], 0))
    y = tf.reshape(c.y, tf.concat([rows3, tf.ones([1], tf.int64)], 0))
    mask = None
    if c.mask is not None:
        mask = tf.reshape(tf.broadcast_to(c.mask[..., tf.newaxis], shape4), rows3)
    loss, _stats = _fused.forward(x, y, mask, c.method, c.eps)
    acc = _fallback.accumulation_dtype(loss.dtype)
    total = tf.reduce_sum(tf.cast(loss, acc), axis=1)
    if mask is None:
        n = tf.cast(shape4[1], acc) * tf.ones_like(total)
    else:
        n = tf.reduce_sum(tf.cast(mask, acc), axis=1)
    coef = tf.where(n > 0, 1.0 - total / tf.maximum(n, 1.0), tf.zeros_like(total))
    return tf.cast(coef, loss.dtype)

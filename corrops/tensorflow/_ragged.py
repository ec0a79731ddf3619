"""tf.RaggedTensor inputs: variable-length sequences with time as the ragged
dimension, ``(B, None)`` or ``(B, None, C)``.

Ragged inputs are padded to ``(B, T_max, ...)`` with a mask of each row's
steps, so they take the masked path of every implementation: the statistics
of a row are those of its own steps, exactly as for a padded tensor with that
mask. The per-step loss is cut back to the rows' lengths, sharing ``y_pred``'s
row partition. ``to_tensor`` and ``from_tensor`` are differentiable, so
gradients reach the ragged values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from corrops.tensorflow import _dispatch


@dataclass(frozen=True)
class Padded:
    """Ragged inputs padded to dense tensors, with the mask of their steps."""

    y_true: tf.Tensor  # (B, T_max, ...)
    y_pred: tf.Tensor
    mask: tf.Tensor  # (B, T_max, ...) bool: the loss shape
    partition: tf.RaggedTensor  # y_pred: the loss gets its row partition

    def restore(self, loss: tf.Tensor) -> tf.RaggedTensor:
        """The dense per-step loss ``(B, T_max, ...)`` as a ragged ``(B, None, ...)``."""
        lengths = self.partition.row_lengths()
        values = tf.RaggedTensor.from_tensor(loss, lengths=lengths).flat_values
        return self.partition.with_flat_values(values)


def is_ragged(value: Any) -> bool:
    return isinstance(value, tf.RaggedTensor)


def _check_time_ragged(rt: tf.RaggedTensor, name: str) -> None:
    if rt.ragged_rank != 1:
        raise ValueError(
            f"{name} must be ragged along time only, shape (B, None) or (B, None, C) "
            f"(ragged_rank 1), got shape {rt.shape} with ragged_rank {rt.ragged_rank}"
        )


def _check_same_row_lengths(y_true: tf.RaggedTensor, y_pred: tf.RaggedTensor) -> tf.Tensor:
    """y_pred's row splits, guarded by a check that they equal y_true's."""
    splits_true = tf.cast(y_true.row_splits, tf.int64)
    splits_pred = tf.cast(y_pred.row_splits, tf.int64)
    if y_true.row_splits is y_pred.row_splits:
        return splits_pred
    message = "y_pred must have the same row lengths (sequence lengths) as y_true"
    if tf.executing_eagerly():
        a, b = splits_true.numpy(), splits_pred.numpy()
        if a.shape != b.shape or (a != b).any():
            lengths_true, lengths_pred = (s[1:] - s[:-1] for s in (a, b))
            raise ValueError(
                f"{message}: y_true has row lengths {lengths_true.tolist()}, "
                f"y_pred {lengths_pred.tolist()}"
            )
        return splits_pred
    same_rows = tf.debugging.assert_equal(
        tf.size(splits_true), tf.size(splits_pred), message=f"{message} (number of rows)"
    )
    with tf.control_dependencies([same_rows]):
        check = tf.debugging.assert_equal(splits_true, splits_pred, message=message)
    with tf.control_dependencies([check]):
        return tf.identity(splits_pred)


def pad(y_true: Any, y_pred: Any, axis: Any, mask: Any) -> Padded | None:
    """Pads ragged ``y_true``/``y_pred``; None when neither is ragged.

    Raises ValueError/TypeError naming the argument when only one is ragged,
    a mask is given (the row lengths are the mask), ``axis`` is not the
    ragged time axis 1, a channel axis is ragged, or the row lengths differ.
    """
    ragged_true, ragged_pred = is_ragged(y_true), is_ragged(y_pred)
    if not (ragged_true or ragged_pred):
        return None
    if ragged_true != ragged_pred:
        which, other = ("y_true", "y_pred") if ragged_true else ("y_pred", "y_true")
        raise TypeError(
            f"{which} is a tf.RaggedTensor but {other} is not: pass both ragged "
            "(time as the ragged dimension) or both dense"
        )
    if mask is not None:
        raise ValueError(
            "mask cannot be combined with ragged y_true/y_pred: the row lengths mark "
            "each sequence's valid steps"
        )
    if _dispatch.in_xla_context():
        raise ValueError(
            "ragged y_true/y_pred cannot be used inside an XLA-compiled function "
            "(jit_compile=True): padding them makes a shape that depends on the row "
            "lengths, which XLA cannot compile; pass padded tensors with a mask instead"
        )
    _check_time_ragged(y_true, "y_true")
    _check_time_ragged(y_pred, "y_pred")
    rank = y_pred.shape.rank
    if isinstance(axis, bool) or not isinstance(axis, int) or axis % rank != 1:
        raise ValueError(
            f"axis must be 1 (the ragged time axis) for ragged y_true/y_pred, got {axis!r}"
        )
    splits = _check_same_row_lengths(y_true, y_pred)
    # Both padded through the checked splits, so that in a graph the check
    # runs before anything that could fail on a mismatch with a vaguer error.
    dense_true, dense_pred = (
        tf.RaggedTensor.from_row_splits(t.flat_values, splits, validate=False).to_tensor()
        for t in (y_true, y_pred)
    )
    lengths = splits[1:] - splits[:-1]
    steps = tf.sequence_mask(lengths, maxlen=tf.shape(dense_pred, out_type=tf.int64)[1])
    # The loss shape: (B, T_max), plus the axes between time and channels.
    loss_rank = max(rank - 1, 2)
    for _ in range(loss_rank - 2):
        steps = steps[..., tf.newaxis]
    mask = tf.broadcast_to(steps, tf.shape(dense_pred)[:loss_rank])
    return Padded(dense_true, dense_pred, mask, y_pred)

"""Keras 3 loss class: CorrelationLoss."""

from __future__ import annotations

import contextvars
from typing import Any

import keras
from keras import ops

from corrops import _contract, _layout
from corrops.keras import _backends, _private

# The Keras mask of y_pred, captured before Loss.__call__ casts y_pred (a cast
# makes a new tensor without the mask).
_KERAS_MASK: contextvars.ContextVar[Any] = contextvars.ContextVar("corrops_keras_mask")


@keras.saving.register_keras_serializable(package="corrops")
class CorrelationLoss(keras.losses.Loss):
    """Per-time-step correlation loss (Pearson or CCC) as a Keras loss.

    ``loss(y_true, y_pred)`` with ``(B, T)`` or ``(B, T, C)`` inputs computes
    :func:`corrops.corr_loss` per step, shape ``(B, T)``, then Keras' reduction
    (``"sum_over_batch_size"`` by default) with ``sample_weight`` of shape
    ``(B,)`` or ``(B, T)``.

    Keras masks: when ``y_pred`` carries a Keras mask (``Masking``,
    ``Embedding(mask_zero=True)``, a masked RNN), the per-sequence statistics
    use only the unmasked steps, and masked steps get loss 0. The mean of the
    per-step loss over a sequence's valid steps is ``1 - r`` of that sequence;
    with the default reduction the reported loss is the mean over all valid
    steps of the batch, i.e. the mean of ``1 - r`` weighted by each sequence's
    number of valid steps.

    Ragged ``(B, None)``/``(B, None, C)`` inputs (time ragged, both with the
    same row lengths) are taken as padded sequences with the mask of their
    steps: the same loss as above, over each sequence's own steps (TensorFlow
    backend).

    Every Keras backend: on TensorFlow it runs :func:`corrops.corr_loss`; on
    JAX (CPU) the fused engine through :mod:`corrops.jax`; elsewhere, or
    without those bindings, a ``keras.ops`` implementation of the same
    contract. A model saved with it loads on any backend.
    """

    def __init__(
        self,
        method: str = "pearson",
        eps: float | None = None,
        axis: int = 1,
        reduction: str = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        method = _contract.check_method(method)
        if eps is not None:
            eps = _contract.check_eps(eps)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {axis!r}")
        super().__init__(
            name=name or f"{method}_correlation_loss", reduction=reduction, dtype=dtype
        )
        self.method = method
        self.eps = eps
        self.axis = axis

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        padded = None
        if _backends.is_tensorflow():
            from corrops.tensorflow import _ragged

            padded = _ragged.pad(y_true, y_pred, self.axis, None)
        if padded is not None:
            # Ragged sequences as padded ones with the Keras mask of their
            # steps: the statistics and Keras' reduction see only real steps.
            y_true, y_pred = padded.y_true, padded.y_pred
            _private.set_keras_mask(y_pred, padded.mask)  # what Keras reads
            if hasattr(sample_weight, "to_tensor"):  # ragged
                sample_weight = sample_weight.to_tensor()
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight)
            if getattr(sample_weight.shape, "rank", 0) is None:  # a TF shape of unknown rank
                raise ValueError(
                    f"{type(self).__name__}: sample_weight has an unknown rank. Keras traces "
                    "the train step with the rank unknown after fit() saw sample weights of "
                    "different ranks on one compiled model, for example (B,) in one fit and "
                    "(B, T) in the next. Use one weight rank per compiled model, or call "
                    "model.compile() again before fitting with the other rank."
                )
            if len(sample_weight.shape) == 1:
                # (B,) weights a whole sequence: (B, 1) broadcasts over time
                # (Keras' own reduction would not broadcast it against (B, T)).
                sample_weight = ops.expand_dims(sample_weight, 1)
                if not _backends.is_tensorflow():
                    # Keras multiplies it by the mask in place on PyTorch: it
                    # must be a (B, T) tensor of its own, not a view.
                    shape = _layout.check(ops.shape(y_true), ops.shape(y_pred), self.axis)
                    sample_weight = sample_weight * ops.ones(shape.loss_shape, sample_weight.dtype)
        token = _KERAS_MASK.set(_backends.keras_mask(y_pred))
        try:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        finally:
            _KERAS_MASK.reset(token)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _backends.corr_loss(
            y_true, y_pred, self.axis, _KERAS_MASK.get(None), self.method, self.eps
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "method": self.method, "eps": self.eps, "axis": self.axis}

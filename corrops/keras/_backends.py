"""The implementation the Keras objects (CorrelationLoss, the metrics) use on
the active Keras backend.

* TensorFlow: corrops.corr_loss (the fused op where it can run, else the
  pure-TF fallback; corrops/tensorflow/_dispatch.py chooses).
* JAX with the JAX binding built, on the CPU (or a CUDA GPU when the
  binding was built with CUDA): corrops.jax (the fused engine through
  jax.ffi).
* PyTorch with the PyTorch ops built: corrops.torch (the fused engine as
  native ops; tensors on devices the ops have no kernels for run its
  pure-torch formula).
* Anything else (JAX without the binding or on other devices, PyTorch
  without the ops): the keras.ops implementation of the same contract
  (corrops/keras/_portable.py).

Only the active backend's framework is imported.
"""

from __future__ import annotations

import functools
from typing import Any

import keras

from corrops import _choice, _contract
from corrops.keras import _portable, _private

JAX_FUSED = "fused (JAX FFI custom call): the fused engine through corrops.jax"
PORTABLE = "keras.ops"


def keras_mask(t: Any) -> Any:
    """The Keras mask a layer attached to `t` (Masking, mask_zero=True, RNNs)."""
    return _private.get_keras_mask(t)


def is_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


@functools.cache
def _jax_fused_reason() -> str | None:
    """None when corrops.jax can run here, else why not."""
    import jax

    from corrops import jax as corrops_jax

    if not corrops_jax.available():
        return "the JAX binding is not built (jax was not importable when corrops was built)"
    device = jax.default_backend()
    if device == "cpu" or (device == "gpu" and "CUDA" in corrops_jax.platforms()):
        return None
    return f"JAX's default device is {device}, and the JAX binding has no handlers for it"


def _torch_fused_reason() -> str | None:
    """None when corrops.torch's native ops load, else why not."""
    from corrops.torch import _library

    return _library.unavailable_reason()


def corr_loss(y_true: Any, y_pred: Any, axis: int, mask: Any, method: str, eps: Any) -> Any:
    """Per-step loss on the active backend (see the module doc)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from corrops.tensorflow import _api

        return _api.corr_loss(y_true, y_pred, axis=axis, mask=mask, method=method, eps=eps)
    if backend == "jax":
        reason = _jax_fused_reason()
        if reason is None:
            from corrops import jax as corrops_jax

            _choice.record("fused", JAX_FUSED)
            return corrops_jax.corr_loss(
                y_true, y_pred, axis=axis, mask=mask, method=method, eps=_contract.check_eps(eps)
            )
        _choice.record(PORTABLE, f"Keras' JAX backend, and {reason}")
    elif backend == "torch":
        reason = _torch_fused_reason()
        if reason is None:
            from corrops import torch as corrops_torch

            return corrops_torch.corr_loss(
                y_true, y_pred, dim=axis, mask=mask, method=method, eps=eps, impl="auto"
            )
        _choice.record(PORTABLE, f"Keras' torch backend, and {reason}")
    else:
        _choice.record(PORTABLE, f"Keras' {backend} backend")
    return _portable.corr_loss(y_true, y_pred, axis, mask, method, eps)

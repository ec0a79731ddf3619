"""Every private Keras API corrops uses, in one place; tests/test_private_apis.py
names each one and fails, saying which, when a Keras release changes it.

* ``keras.src.backend.get_keras_mask`` / ``set_keras_mask``: the mask a
  layer attached to a tensor (Masking, ``mask_zero=True``, RNNs); Keras keeps
  masks of JAX arrays, which take no attributes, beside them.

The TF front end reads the attribute Keras keeps a TF tensor's mask in
without importing Keras (corrops/tensorflow/_private.py).
"""

from __future__ import annotations

from typing import Any


def get_keras_mask(t: Any) -> Any:
    """The Keras mask of ``t`` on any backend, or None."""
    from keras.src.backend import get_keras_mask as _get

    return _get(t)


def set_keras_mask(t: Any, mask: Any) -> None:
    """Attaches ``mask`` to ``t`` as Keras' mask."""
    from keras.src.backend import set_keras_mask as _set

    _set(t, mask)

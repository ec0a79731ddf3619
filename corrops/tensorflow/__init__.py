"""corrops' TensorFlow front end: the fused op (graph, eager, XLA custom
calls), its registered gradients, ragged inputs and the pure-TF fallback.

import corrops.tensorflow as ct
loss = ct.corr_loss(y_true, y_pred)   # (B, T): the same as corrops.corr_loss

Imports TensorFlow and corrops' framework-free core only (Keras' own objects
are corrops.keras).
"""

from __future__ import annotations

from corrops._build import FusedOpUnavailableError
from corrops._choice import last_choice
from corrops.tensorflow._api import corr_loss, corrcoef
from corrops.tensorflow._loader import fused_available, load_ops, unavailable_reason

__all__ = [
    "FusedOpUnavailableError",
    "corr_loss",
    "corrcoef",
    "fused_available",
    "last_choice",
    "load_ops",
    "unavailable_reason",
]

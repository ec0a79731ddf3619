"""corrops: fused per-time-step correlation losses for TensorFlow / Keras.

import corrops
loss = corrops.corr_loss(y_true, y_pred)           # (B, T)
model.compile(optimizer="adam", loss=corrops.corr_loss)
"""

from corrops import metrics
from corrops._api import corr_loss, corrcoef
from corrops._dispatch import last_choice
from corrops._loader import (
    FusedOpUnavailableError,
    build_info,
    fused_available,
    load_ops,
    unavailable_reason,
)
from corrops.losses import CorrelationLoss

__version__ = "0.1.0"

__all__ = [
    "CorrelationLoss",
    "FusedOpUnavailableError",
    "__version__",
    "build_info",
    "corr_loss",
    "corrcoef",
    "fused_available",
    "last_choice",
    "load_ops",
    "metrics",
    "unavailable_reason",
]

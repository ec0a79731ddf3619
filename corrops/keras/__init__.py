"""corrops' Keras front end, on every Keras backend: CorrelationLoss and the
metrics PearsonCorrelation and ConcordanceCorrelation. Each call runs the
active backend's front end (corrops/keras/_backends.py): corrops.tensorflow,
corrops.jax or corrops.torch where their fused op can run, else the
keras.ops implementation of the same contract.

Importing it registers the classes with Keras' serialization (package
"corrops"), so saved .keras files load.
"""

from __future__ import annotations

from corrops.keras import losses, metrics
from corrops.keras.losses import CorrelationLoss
from corrops.keras.metrics import ConcordanceCorrelation, PearsonCorrelation

__all__ = ["ConcordanceCorrelation", "CorrelationLoss", "PearsonCorrelation", "losses", "metrics"]

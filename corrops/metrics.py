"""``corrops.metrics``: the Keras metrics, defined in corrops.keras.metrics."""

from corrops.keras.metrics import ConcordanceCorrelation, PearsonCorrelation

__all__ = ["ConcordanceCorrelation", "PearsonCorrelation"]

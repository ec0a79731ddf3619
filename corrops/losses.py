"""``corrops.losses``: the Keras loss class, defined in corrops.keras.losses."""

from corrops.keras.losses import CorrelationLoss

__all__ = ["CorrelationLoss"]

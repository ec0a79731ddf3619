"""The shape contract shared by the TF and NumPy front ends: how user shapes
map to the canonical layout (outer, time, groups, channels), the loss and
coefficient shapes, the errors for shapes and axes that do not fit, and the
mask dtype rule of the array front ends (NumPy, JAX).

Pure Python over shape tuples; a dimension may be None (unknown until a
graph runs), which matches any size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Dims = tuple[int | None, ...]


@dataclass(frozen=True)
class Layout:
    """Where the axes of validated inputs are."""

    rank: int
    axis: int  # the time axis, in [0, rank)
    # Which input gains a trailing axis of 1 to match the other ((B, T)
    # against (B, T, 1)): "y_true", "y_pred" or None.
    expand: str | None
    shape: Dims  # the common shape after that expansion

    @property
    def has_channels(self) -> bool:
        return self.rank >= 3

    @property
    def loss_shape(self) -> Dims:
        """The input shape without the channel axis."""
        return self.shape[:-1] if self.has_channels else self.shape

    @property
    def coef_shape(self) -> Dims:
        """The input shape without the time axis."""
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]

    def canonical_dims(self) -> tuple[int, int, int, int]:
        """(outer, time, groups, channels) for fully known shapes."""
        dims = [int(d) for d in self.shape]  # type: ignore[arg-type]
        inner = dims[self.axis + 1 : -1] if self.has_channels else dims[self.axis + 1 :]
        channels = dims[-1] if self.has_channels else 1
        return math.prod(dims[: self.axis]), dims[self.axis], math.prod(inner), channels


def _compatible(a: Dims, b: Dims) -> bool:
    if len(a) != len(b):
        return False
    return all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


def _merge(a: Dims, b: Dims) -> Dims:
    return tuple(x if x is not None else y for x, y in zip(a, b, strict=True))


def _text(shape: Dims) -> str:
    """As TensorShape and tuples print: (2, 5), (None, 3), (5,)."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def check(true_shape: Dims, pred_shape: Dims, axis: Any) -> Layout:
    """Validates the shapes of y_true and y_pred and the time axis.

    Raises ValueError/TypeError naming the argument: shapes that differ (other
    than (B, T) against (B, T, 1)), rank below 2, an axis that is not an int,
    out of range, or the channel axis.
    """
    true_shape, pred_shape = tuple(true_shape), tuple(pred_shape)
    t, p = true_shape, pred_shape
    expand = None
    if len(t) == len(p) + 1 and t[-1:] == (1,):
        expand, p = "y_pred", (*p, 1)
    elif len(p) == len(t) + 1 and p[-1:] == (1,):
        expand, t = "y_true", (*t, 1)
    if not _compatible(t, p):
        raise ValueError(
            f"y_true and y_pred must have the same shape, got y_true {_text(true_shape)} "
            f"and y_pred {_text(pred_shape)}"
        )
    rank = len(p)
    if rank < 2:
        raise ValueError(
            "y_true and y_pred must have rank >= 2 (batch, time[, ..., channels]), "
            f"got shape {_text(pred_shape)}"
        )
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {type(axis).__name__} {axis!r}")
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for inputs of rank {rank}")
    axis %= rank
    if rank >= 3 and axis == rank - 1:
        raise ValueError(
            f"axis {axis} is the channel axis (the last axis of rank-{rank} inputs); "
            "the time axis must come before it"
        )
    return Layout(rank, axis, expand, _merge(p, t))


def check_loss_shaped(shape: Dims, layout: Layout, name: str) -> None:
    """Raises ValueError unless ``shape`` (of ``name``: a mask or an upstream
    gradient) fits the loss shape."""
    if not _compatible(tuple(shape), layout.loss_shape):
        raise ValueError(
            f"{name} must have the loss shape {_text(layout.loss_shape)} (the input shape "
            f"without the channel axis), got {_text(tuple(shape))}"
        )


def bool_mask(mask: Any, issubdtype: Callable[[Any, Any], bool] = np.issubdtype) -> Any:
    """An array mask (NumPy or JAX) as bool: 0/1 numbers compared with 0.
    Raises TypeError for other dtypes. ``issubdtype``: the array library's own
    (JAX's knows bfloat16)."""
    if mask.dtype == np.bool_:
        return mask
    if not (issubdtype(mask.dtype, np.integer) or issubdtype(mask.dtype, np.floating)):
        raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {mask.dtype}")
    return mask != 0

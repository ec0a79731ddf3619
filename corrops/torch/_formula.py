"""The per-step loss of docs/DESIGN.md in plain PyTorch: corrops.torch's
fallback where the native ops are missing (``impl="torch"``), and its path
for derivatives beyond the first. The row formulas are
corrops/_row_formula.py's, run with torch functions.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from corrops import _row_formula


def _where(cond: Any, a: Any, b: Any) -> torch.Tensor:
    if not isinstance(cond, torch.Tensor):
        cond = torch.tensor(bool(cond))
    return torch.where(cond, a, b)


def _maximum(a: Any, b: Any) -> torch.Tensor:
    return torch.maximum(a, b) if isinstance(b, torch.Tensor) else torch.clamp(a, min=b)


def _max(t: torch.Tensor, axis: int, keepdims: bool, initial: float) -> torch.Tensor:
    if t.shape[axis] == 0:  # amax of nothing: the initial value, as NumPy's max
        shape = list(t.shape)
        shape[axis] = 1
        out = t.new_full(shape, initial)
        return out if keepdims else out.squeeze(axis)
    return torch.amax(t, dim=axis, keepdim=keepdims)


def _cast(t: Any, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype) if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=dtype)


# The keras.ops functions corrops/_row_formula.py uses, from torch.
TorchOps = SimpleNamespace(
    abs=torch.abs,
    broadcast_to=torch.broadcast_to,
    cast=_cast,
    clip=torch.clamp,
    expand_dims=torch.unsqueeze,
    floor=torch.floor,
    isfinite=torch.isfinite,
    isnan=torch.isnan,
    log2=torch.log2,
    logical_and=torch.logical_and,
    logical_or=torch.logical_or,
    max=_max,
    maximum=_maximum,
    ones_like=torch.ones_like,
    power=torch.pow,
    sqrt=torch.sqrt,
    square=torch.square,
    stop_gradient=torch.Tensor.detach,
    sum=lambda t, axis, keepdims=False: torch.sum(t, dim=axis, keepdim=keepdims),
    where=_where,
    zeros_like=torch.zeros_like,
)


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the statistics are computed in: float32 for half types."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def corr_loss(
    x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, method: str, eps: float
) -> torch.Tensor:
    """Per-step loss (outer, time, groups) of canonical (outer, time, groups,
    channels) inputs, in their dtype (statistics in float32 for half types);
    ``mask``: (outer, time, groups) bool, or None."""
    acc = compute_dtype(x.dtype)
    dx, dy, scale = _row_formula.row_coefficients(
        x.to(acc), y.to(acc), mask, method, eps, TorchOps, _dtype_name
    )
    loss = torch.sum(1.0 - dx * dy * scale, dim=3) / max(x.shape[3], 1)
    if mask is not None:
        loss = torch.where(mask, loss, 0.0)
    return loss.to(x.dtype)

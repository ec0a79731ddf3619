"""corrops for PyTorch: ``corr_loss`` and ``corrcoef`` on torch tensors.

They run the fused engine as native ops (``corrops::corr_loss_forward`` and
``corrops::corr_loss_backward``, registered with TORCH_LIBRARY; see
corrops/torch/_library.py): on CPU tensors using torch's intra-op threads,
results not depending on the thread count; on CUDA tensors, in a build with
CUDA, the CUDA kernels on torch's current stream. The ops have fake kernels and
registered autograd, so they work in eager mode, under ``torch.compile``
(``fullgraph=True``, dynamic shapes) and ``torch.export``, and to any order of
derivatives (beyond the first through the formula). Where the ops cannot run
(not built, or a tensor on a device the build has no kernels for) the
pure-PyTorch formula of the same contract runs instead (``impl="auto"``);
``corrops.last_choice()`` says which ran and why. Imports torch and no other
framework.

The contract is that of every corrops front end (docs/DESIGN.md): inputs
``(B, T)`` or ``(B, T, C)`` with time on ``dim`` and channels last, a bool
(or 0/1) mask of the loss shape, methods ``"pearson"`` and ``"ccc"``,
``eps=None`` meaning ``corrops.DEFAULT_EPS``; float16, bfloat16, float32 and
float64, ``y_true`` cast to ``y_pred``'s dtype (half types computed in
float32, as corrops.numpy does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from corrops import _build, _choice, _contract, _layout
from corrops.torch import _formula, _library

IMPLS = ("auto", "fused", "torch")
_IMPL_ENV = _contract.IMPL_ENV
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
FUSED = "fused (PyTorch op): the fused engine as corrops::corr_loss_forward/backward"


def available() -> bool:
    """Whether the native ops are built and load into this torch."""
    return _library.unavailable_reason() is None


@dataclass(frozen=True)
class _Canonical:
    x: torch.Tensor  # (outer, time, groups, channels), y_pred's dtype
    y: torch.Tensor
    mask: torch.Tensor | None  # (outer, time, groups) bool
    loss_shape: tuple
    coef_shape: tuple
    method: str
    eps: float


def _as_tensor(value: Any, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, device=None if like is None else like.device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} could not be converted to a tensor: {err}") from err
    if like is not None and value.device != like.device:
        raise ValueError(f"{name} is on {value.device} but y_pred is on {like.device}")
    return value


def _check_float(t: torch.Tensor, name: str) -> None:
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(_contract.float_dtype_error(name, str(t.dtype).removeprefix("torch.")))


def _bool_mask(mask: torch.Tensor) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex():
        raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {mask.dtype}")
    return mask != 0


def _canonicalize(
    y_true: Any, y_pred: Any, dim: Any, mask: Any, method: Any, eps: Any
) -> _Canonical:
    """Validates the arguments (errors name them) and reshapes the inputs to
    the canonical layout; metadata-only where the strides allow it."""
    method = _contract.check_method(method)
    eps = _contract.check_eps(eps)
    y_pred = _as_tensor(y_pred, "y_pred")
    _check_float(y_pred, "y_pred")
    y_true = _as_tensor(y_true, "y_true", like=y_pred)
    _check_float(y_true, "y_true")
    y_true = y_true.to(y_pred.dtype)
    layout = _layout.check(tuple(y_true.shape), tuple(y_pred.shape), dim)
    if layout.expand == "y_pred":
        y_pred = y_pred.unsqueeze(-1)
    elif layout.expand == "y_true":
        y_true = y_true.unsqueeze(-1)
    shape, axis = layout.shape, layout.axis
    inner = shape[axis + 1 : -1] if layout.has_channels else shape[axis + 1 :]
    channels = shape[-1] if layout.has_channels else 1
    dims = (_prod(shape[:axis]), shape[axis], _prod(inner), channels)
    mask3 = None
    if mask is not None:
        m = _bool_mask(_as_tensor(mask, "mask", like=y_pred))
        _layout.check_loss_shaped(tuple(m.shape), layout, "mask")
        mask3 = m.reshape(dims[:3])
    return _Canonical(
        y_true.reshape(dims),
        y_pred.reshape(dims),
        mask3,
        layout.loss_shape,
        layout.coef_shape,
        method,
        eps,
    )


def _prod(dims: tuple) -> Any:
    out = 1
    for d in dims:
        out = out * d
    return out


def _choose(impl: Any, device: torch.device) -> str:
    """ "fused" or "torch" for one call; raises if impl="fused" cannot run."""
    impl = _contract.check_impl(impl, IMPLS)
    if impl == "torch":
        choice, reason = "torch", "impl='torch' requested"
    else:
        reason = _library.unavailable_reason()
        if reason is None and device.type not in _library.platforms():
            reason = (
                f"the tensors are on {device.type}, and this build's PyTorch ops have kernels "
                f"for {', '.join(_library.platforms())} only"
            )
        if reason is not None and impl == "fused":
            raise _build.FusedOpUnavailableError(f"impl='fused' cannot run: {reason}")
        choice, reason = ("torch", reason) if reason is not None else ("fused", FUSED)
    if not torch.compiler.is_compiling():
        _choice.record(choice, reason)
    return choice


def _fused(c: _Canonical, sum_time: bool) -> torch.Tensor:
    """The native forward's loss in the compute dtype: per step, or with
    ``sum_time`` summed over time (outer, 1, groups)."""
    compute = _formula.compute_dtype(c.x.dtype)
    x, y = c.x.to(compute).contiguous(), c.y.to(compute).contiguous()
    mask = None if c.mask is None else c.mask.contiguous()
    loss, _stats = _library.forward(x, y, mask, c.method, c.eps, sum_time)
    return loss


def _loss(c: _Canonical, choice: str) -> torch.Tensor:
    """The per-step loss (outer, time, groups) in the inputs' dtype."""
    if choice == "torch":
        return _formula.corr_loss(c.x, c.y, c.mask, c.method, c.eps)
    return _fused(c, sum_time=False).to(c.x.dtype)


def _time_sums(c: _Canonical, choice: str) -> torch.Tensor:
    """The per-step loss summed over time, (outer, 1, groups), in the compute
    dtype; the native op takes it from the statistics, writing no per-step loss."""
    if choice == "torch":
        loss = _formula.corr_loss(c.x, c.y, c.mask, c.method, c.eps)
        return loss.to(_formula.compute_dtype(loss.dtype)).sum(dim=1, keepdim=True)
    return _fused(c, sum_time=True)


def _reduce(sums: torch.Tensor, reduction: str, steps: Any, dtype: torch.dtype) -> torch.Tensor:
    """The per-step loss's sum or mean over all its ``steps`` elements (a
    0-dim tensor in ``dtype``) from its sums over time."""
    total = sums.sum()
    return (total if reduction == "sum" else total / steps).to(dtype)


def corr_loss(
    y_true: Any,
    y_pred: Any,
    *,
    dim: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """Per-time-step correlation loss, differentiable in both inputs.

    Args:
      y_true, y_pred: ``(B, T)`` or ``(B, T, C)`` (more leading axes allowed;
        time on ``dim``, channels last; ``(B, T)`` against ``(B, T, 1)`` is
        accepted). Any strides; ``y_true`` is cast to ``y_pred``'s dtype.
      mask: the loss shape, bool or 0/1; masked steps are left out of the
        statistics and get loss 0.
      method: ``"pearson"`` (``1 - dx*dy / (sx*sy + eps)``) or ``"ccc"``
        (``1 - 2*dx*dy / (vx + vy + (mx-my)^2 + eps)``).
      eps: added to the denominator; None means ``corrops.DEFAULT_EPS``.
      impl: ``"auto"`` (the native op where it can run, else the formula),
        ``"fused"`` (raise if the op cannot run) or ``"torch"``; None reads
        ``$CORROPS_IMPL``, default "auto".
      reduction: ``"none"`` (the per-step loss), ``"mean"`` or ``"sum"``:
        the per-step loss's mean or sum over all its elements, as
        ``.mean()`` / ``.sum()`` of it (masked steps count, with loss 0),
        up to rounding. The native op then reduces over time from its
        statistics, so no per-step loss is written and the backward gets
        the compact gradient: the fastest training step.

    Returns:
      The input shape without the channel axis (``(B, T)``), in ``y_pred``'s
      dtype; a 0-dim tensor for ``reduction="mean"`` or ``"sum"``.
    """
    lean = _lean_call(y_true, y_pred, dim, mask, method, eps, impl, reduction)
    if lean is not None:
        return lean
    reduction = _contract.check_reduction(reduction)
    c = _canonicalize(y_true, y_pred, dim, mask, method, eps)
    choice = _choose(impl, c.y.device)
    if reduction != "none":
        steps = c.x.shape[0] * c.x.shape[1] * c.x.shape[2]
        return _reduce(_time_sums(c, choice), reduction, steps, c.x.dtype)
    return _loss(c, choice).reshape(c.loss_shape)


_LEAN_DTYPES = (torch.float32, torch.float64)


def _lean_call(
    y_true: Any,
    y_pred: Any,
    dim: Any,
    mask: Any,
    method: Any,
    eps: Any,
    impl: Any,
    reduction: Any,
) -> torch.Tensor | None:
    """The common call straight to the op, or None: CPU tensors of one
    float32/float64 dtype and one shape, ``(B, T)`` or ``(B, T, C)``, time on
    dim 1, no mask, a method and reduction name as spelled in METHODS and
    REDUCTIONS, default impl. The general path costs tens of microseconds of
    Python per call, as much as the op itself at (64, 1000, 1); this one
    gives the same bits."""
    if (
        mask is not None
        or reduction not in _contract.REDUCTIONS
        or impl is not None
        or type(dim) is not int
        or dim != 1
        or type(y_pred) is not torch.Tensor
        or type(y_true) is not torch.Tensor
        or y_pred.dtype not in _LEAN_DTYPES
        or y_true.dtype != y_pred.dtype
        or y_pred.device.type != "cpu"
        or y_true.device.type != "cpu"
        or y_pred.dim() not in (2, 3)
        or y_true.shape != y_pred.shape
        or method not in _contract.METHODS
        or _library.unavailable_reason() is not None
        or _IMPL_ENV in os.environ
        or torch.compiler.is_compiling()
    ):
        return None
    eps = _contract.check_eps(eps)
    shape = y_pred.shape
    dims = (shape[0], shape[1], 1, shape[2] if len(shape) == 3 else 1)
    x, y = y_true.reshape(dims).contiguous(), y_pred.reshape(dims).contiguous()
    loss, _stats = _library.forward(x, y, None, method, eps, reduction != "none")
    _choice.record("fused", FUSED)
    if reduction != "none":
        return _reduce(loss, reduction, shape[0] * shape[1], y_pred.dtype)
    return loss.view(shape[:2])


def corrcoef(
    y_true: Any,
    y_pred: Any,
    *,
    dim: int = 1,
    mask: Any = None,
    method: str = "pearson",
    eps: float | None = None,
    impl: str | None = None,
) -> torch.Tensor:
    """Per-sequence coefficient (Pearson r or CCC, with eps), differentiable.

    Same arguments as :func:`corr_loss`. Returns the input shape without the
    time axis (``(B,)`` or ``(B, C)``). ``1 - corrcoef`` is the mean of the
    per-step loss over a row's valid steps; a row without one has 0.
    """
    c = _canonicalize(y_true, y_pred, dim, mask, method, eps)
    outer, time, groups, channels = c.x.shape
    rows = (outer, time, groups * channels, 1)
    mask = c.mask
    if mask is not None:
        mask = mask.unsqueeze(-1).expand(outer, time, groups, channels).reshape(rows[:3])
    per_row = _Canonical(c.x.reshape(rows), c.y.reshape(rows), mask, (), (), c.method, c.eps)
    total = _time_sums(per_row, _choose(impl, c.y.device)).squeeze(1)
    if mask is None:
        n = torch.ones_like(total) * time
    else:
        n = mask.to(total.dtype).sum(dim=1)
    coef = torch.where(n > 0, 1.0 - total / torch.clamp(n, min=1.0), 0.0)
    return coef.to(c.x.dtype).reshape(c.coef_shape)

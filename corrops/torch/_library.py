"""The native PyTorch ops (csrc/torch, ``_corrops_torch.so``; CPU kernels,
and CUDA kernels in a build with CUDA): loading, and
what torch needs around them: fake kernels (shapes for torch.compile and
torch.export) and autograd.

* ``corrops::corr_loss_forward(y_true, y_pred, mask, method, eps,
  sum_time=False) -> (loss, stats)``: canonical (outer, time, groups,
  channels) data, (outer, time, groups) mask and loss, float64 per-row
  statistics (outer, groups*channels, 7). With ``sum_time`` the loss is its
  sum over time, (outer, 1, groups), from the statistics (the CPU kernel
  writes no per-step loss), and its gradient reaches the backward op in the
  compact form.
* ``corrops::corr_loss_backward(grad, y_true, y_pred, mask, stats, method,
  eps, want_true=True, want_pred=True) -> (grad_true, grad_pred)``: the fused
  backward; ``grad`` has the loss shape, or time 1 when constant along time
  (the gradient of a mean; a per-step gradient that is constant along time
  is recognised too); a gradient not wanted is returned empty (shape [0]).

The gradient of the forward is the backward op (autograd kernels in C++,
csrc/torch/corr_loss_torch_autograd.cc, so a training step's backward runs
no Python, eager or compiled). The gradient of the backward op (second and
higher derivatives) is the formula of corrops/torch/_formula.py
differentiated by torch.func, as on the TensorFlow side: the autograd of
``corrops::corr_loss_backward_differentiable``, the backward op's kernels
that its autograd kernel calls when its own derivatives are recorded.
"""

from __future__ import annotations

from typing import Any

import torch

from corrops import _build

LIBRARY_NAME = "_corrops_torch.so"
STATS_PER_ROW = 7  # core's kStatsPerRow


def library_path() -> Any:
    return _build.sibling_library(LIBRARY_NAME)


def _load() -> str | None:
    """Loads the ops (at import of corrops.torch); None, or why they cannot load."""
    info = _build.build_info()
    path = library_path()
    if not info.get("torch") or not path.exists():
        return (
            "the PyTorch ops are not built: torch was not importable when corrops was built. "
            "Install torch, then rebuild corrops where its build sees it: pip install "
            "--no-build-isolation 'corrops[torch]' (or '.[torch]' from a source tree)"
        )
    built, running = info.get("torch_version", ""), torch.__version__
    if built.split(".")[:2] != running.split(".")[:2]:
        return f"the PyTorch ops were built for torch {built} but torch {running} is running"
    try:
        torch.ops.load_library(str(path))
    except OSError as err:
        return f"loading {path} failed: {err}"
    _register()
    return None


def platforms() -> tuple[str, ...]:
    """The devices the ops have kernels for: "cpu", and "cuda" in a build
    with CUDA (csrc/torch/corr_loss_torch_cuda.cc)."""
    return _PLATFORMS


def unavailable_reason() -> str | None:
    """None when the native ops are loaded, else why not. A plain read of
    the load's outcome, so that torch.compile traces it as a constant."""
    return _REASON


def _register() -> None:
    """Fake kernels for the ops, and the autograd of
    ``corr_loss_backward_differentiable`` (once, after loading): the
    backward op's C++ autograd kernel calls that op when its own
    derivatives are recorded, and the kernels directly otherwise
    (csrc/torch/corr_loss_torch_autograd.cc)."""
    torch.library.register_fake("corrops::corr_loss_forward")(_forward_fake)
    for op in ("corr_loss_backward", "corr_loss_backward_differentiable"):
        torch.library.register_fake(f"corrops::{op}")(_backward_fake)
    torch.library.register_autograd(
        "corrops::corr_loss_backward_differentiable",
        _backward_backward,
        setup_context=_backward_setup,
    )


def _forward_fake(y_true, y_pred, mask, method, eps, sum_time=False):  # type: ignore[no-untyped-def]
    outer, time, groups, channels = y_pred.shape
    loss = y_pred.new_empty((outer, 1 if sum_time else time, groups))
    stats = y_pred.new_empty((outer, groups * channels, STATS_PER_ROW), dtype=torch.float64)
    return loss, stats


def _backward_fake(grad, y_true, y_pred, mask, stats, method, eps, want_true=True, want_pred=True):  # type: ignore[no-untyped-def]
    def out(t: torch.Tensor, wanted: bool) -> torch.Tensor:
        return torch.empty_like(t) if wanted else t.new_empty((0,))

    return out(y_true, want_true), out(y_pred, want_pred)


def forward(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None,
    method: str,
    eps: float,
    sum_time: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.ops.corrops.corr_loss_forward(x, y, mask, method, eps, sum_time)


def _backward_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    grad, y_true, y_pred, mask, _stats, method, eps, *_wanted = inputs
    ctx.save_for_backward(grad, y_true, y_pred, mask)
    ctx.method, ctx.eps = method, eps


def _backward_backward(ctx: Any, ggx: torch.Tensor, ggy: torch.Tensor) -> tuple:
    from corrops.torch import _formula

    grad, y_true, y_pred, mask = ctx.saved_tensors
    method, eps = ctx.method, ctx.eps
    # A gradient the backward op did not compute (shape [0]) has no cotangent.
    ggx = ggx if ggx.shape == y_true.shape else torch.zeros_like(y_true)
    ggy = ggy if ggy.shape == y_pred.shape else torch.zeros_like(y_pred)

    def first(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple:
        loss, vjp = torch.func.vjp(lambda a, b: _formula.corr_loss(a, b, mask, method, eps), x, y)
        return vjp(g.expand(loss.shape))

    # The formula's statistics are functions of y_true and y_pred, so these
    # are total derivatives: nothing flows to the forward's stats.
    _, vjp2 = torch.func.vjp(first, grad, y_true, y_pred)
    dgrad, dx, dy = vjp2((ggx, ggy))
    return dgrad, dx, dy, None, None, None, None, None, None


_REASON = _load()
_PLATFORMS = tuple(_build.build_info().get("torch_platforms", ["cpu"])) if _REASON is None else ()

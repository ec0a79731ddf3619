"""Chooses the fused op or the fallback for one call, at trace time."""

from __future__ import annotations

import tensorflow as tf

from corrops import _choice
from corrops.tensorflow import _loader, _private

record = _choice.record
last_choice = _choice.last_choice


def in_xla_context() -> bool:
    """Whether the function being traced is XLA-compiled (jit_compile=True)."""
    return _private.in_xla_context(tf.compat.v1.get_default_graph())


def _gpu_without_kernels() -> bool:
    # Without CUDA kernels, TF's soft placement would silently copy GPU tensors
    # to the host around the op; the fallback stays on the GPU instead.
    if _loader.loaded_build_info().get("cuda"):
        return False
    if not tf.config.list_logical_devices("GPU"):
        return False
    device = _private.device_scope(tf.compat.v1.get_default_graph())
    spec = getattr(device, "display_name", None) if device is not None else None
    return not (spec and "CPU" in str(spec).upper())


FUSED_IN_XLA = "fused (XLA custom call): the fused op inside an XLA-compiled function"


def choose(impl: str) -> tuple[str, str]:
    """Returns ("fused" | "tf", reason). Raises if impl="fused" cannot run.

    Inside an XLA-compiled function (jit_compile=True) the fused op lowers to
    XLA custom calls that run the same engine (csrc/tf_xla); the reason then
    says "fused (XLA custom call)"."""
    if impl == "tf":
        choice = ("tf", "impl='tf' requested")
    else:
        reason = None
        in_xla = False
        if _loader.try_load() is None:
            reason = f"fused op library unavailable: {_loader.unavailable_reason()}"
        elif _gpu_without_kernels():
            reason = "a GPU is visible but the op library was built without CUDA kernels"
        elif in_xla_context():
            in_xla = True
            if "Host" not in _loader.loaded_build_info().get("xla_platforms", []):
                reason = (
                    "inside an XLA-compiled function (jit_compile=True), and the op library "
                    "was built without XLA custom calls"
                )
        if reason is not None and impl == "fused":
            raise _loader.FusedOpUnavailableError(f"impl='fused' cannot run: {reason}")
        if reason is not None:
            choice = ("tf", reason)
        else:
            choice = ("fused", FUSED_IN_XLA if in_xla else "fused op available")
    record(*choice)
    return choice

"""The argument contract every front end shares: the method table, the eps
policy, the float dtypes, the ``impl`` choice and their error messages.

Pure Python, no framework: each front end (TensorFlow, Keras, JAX, NumPy,
PyTorch) validates its arguments here and its shapes with corrops/_layout.py.
A new method is one more entry in METHODS, the C++ row maths
(csrc/core/row_math.h, core/validate.h's ParseMethod) and the tests.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# eps=None means this in every front end (docs/DESIGN.md, "Definitions"):
# with default arguments all of them give the same values.
DEFAULT_EPS = 1e-7

FLOAT_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")

IMPL_ENV = "CORROPS_IMPL"  # the default of ``impl`` when it is None


@dataclass(frozen=True)
class Method:
    """One correlation method: per-step loss ``1 - scale * dx_t*dy_t / D``.

    ``D = sqrt(vx)*sqrt(vy) + eps`` (``geometric``) or
    ``D = vx + vy + (mx - my)^2 + eps``; dx, dy are deviations from the row
    means and vx, vy the population variances over the valid steps.
    """

    name: str
    code: int  # core's Method (csrc/core/row_math.h)
    scale: float
    geometric: bool

    def denominator(self, vx: Any, vy: Any, mean_gap: Any, sqrt: Callable[[Any], Any]) -> Any:
        """D without eps, in any array library: ``sqrt`` is its square root and
        ``mean_gap`` is ``mx - my`` (unused by a geometric method)."""
        if self.geometric:
            return sqrt(vx) * sqrt(vy)
        return vx + vy + mean_gap * mean_gap


METHODS = {
    "pearson": Method("pearson", 0, 1.0, geometric=True),
    "ccc": Method("ccc", 1, 2.0, geometric=False),
}
METHODS_BY_CODE = {m.code: m for m in METHODS.values()}


def check_method(method: Any) -> str:
    """The method's name in lower case; ValueError naming ``method`` otherwise."""
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}")
    return method.lower()


def check_eps(eps: Any) -> float:
    """eps as a float (None: DEFAULT_EPS); finite and > 0, else an error naming it."""
    if eps is None:
        return DEFAULT_EPS
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__} {eps!r}")
    value = float(eps)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    return value


REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: Any) -> str:
    """``reduction`` in lower case: "none" (the per-step loss), "mean" or
    "sum" (of the per-step loss over all its elements); ValueError naming it
    otherwise."""
    if not isinstance(reduction, str) or reduction.lower() not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction.lower()


def check_impl(impl: Any, choices: tuple[str, ...]) -> str:
    """``impl`` in lower case; None reads $CORROPS_IMPL (default "auto")."""
    if impl is None:
        impl = os.environ.get(IMPL_ENV, "auto")
        source = f"the environment variable {IMPL_ENV}"
    else:
        source = "impl"
    if not isinstance(impl, str) or impl.lower() not in choices:
        raise ValueError(f"{source} must be one of {choices}, got {impl!r}")
    return impl.lower()


def float_dtype_error(name: str, dtype: Any, allowed: tuple[str, ...] = FLOAT_DTYPE_NAMES) -> str:
    """The message for an argument whose dtype is not one of ``allowed``."""
    listed = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
    return f"{name} must be a floating-point tensor ({listed}), got dtype {dtype}"

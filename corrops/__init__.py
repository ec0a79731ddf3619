"""corrops: fused per-time-step correlation losses (Pearson r, CCC) for
sequence models, one engine with a front end per framework.

import corrops
loss = corrops.corr_loss(y_true, y_pred)           # (B, T), TensorFlow
model.compile(optimizer="adam", loss=corrops.corr_loss)

``import corrops`` imports no framework. Its modules are laid out by layer:
the framework-free core (``_contract``: methods and argument checks,
``_layout``: shapes, ``_row_formula``: the maths as written for array
libraries, ``_build``: the native libraries, ``_choice``) and one front end
per framework, each importing only its framework and the core:
``corrops.tensorflow``, ``corrops.keras`` (every Keras backend),
``corrops.jax``, ``corrops.numpy`` and ``corrops.torch``. The names below
are the TensorFlow and Keras ones, loaded on first use; ``corrops.losses``
and ``corrops.metrics`` are the Keras classes.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from corrops._build import build_info
from corrops._contract import DEFAULT_EPS

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first access).
_LAZY = {
    "corr_loss": "corrops.tensorflow._api",
    "corrcoef": "corrops.tensorflow._api",
    "last_choice": "corrops._choice",
    "CorrelationLoss": "corrops.keras.losses",
    "FusedOpUnavailableError": "corrops._build",
    "fused_available": "corrops.tensorflow._loader",
    "load_ops": "corrops.tensorflow._loader",
    "unavailable_reason": "corrops.tensorflow._loader",
}
_SUBMODULES = ("jax", "keras", "losses", "metrics", "numpy", "tensorflow", "torch")

__all__ = [
    "DEFAULT_EPS",
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as err:
            if err.name not in ("tensorflow", "keras"):
                raise
            raise ImportError(
                f"corrops.{name} needs {err.name}, which is not installed: "
                "pip install 'corrops[tensorflow]' (the other front ends: corrops.numpy, "
                "corrops.jax, corrops.torch)"
            ) from err
        value = getattr(module, name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"corrops.{name}")
    else:
        raise AttributeError(f"module 'corrops' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


if "keras" in sys.modules:
    # Keras finds the classes of a saved .keras file only among registered
    # ones: with Keras already imported (and so its backend), register
    # CorrelationLoss and the metrics now, as `import corrops` always did.
    import corrops.keras  # noqa: F401

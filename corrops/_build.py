"""Where the native libraries are and what they were built with, read without
importing any framework: each front end loads its own library from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
OPS_LIBRARY_NAME = "_corrops_ops.so"
OPS_LIBRARY_GLOB = "_corrops_ops*.so"
BUILD_INFO_NAME = "_build_info.json"
# Overrides the TF op library's path (tests use it to make the library unloadable).
OPS_LIBRARY_ENV = "CORROPS_OPS_LIBRARY"


class FusedOpUnavailableError(RuntimeError):
    """The fused op cannot run here (``impl="fused"``); the message says why."""

    # Autograph re-raises errors from inside tf.function as their own type only
    # when it can rebuild them from the message; this keeps the type.
    __init__ = Exception.__init__


def ops_library_path() -> Path:
    """Path of the TF op library (``$CORROPS_OPS_LIBRARY`` overrides it).

    Built by setup.py as ``_corrops_ops.<python ABI tag>.so``; a plain CMake
    build names it ``_corrops_ops.so``.
    """
    override = os.environ.get(OPS_LIBRARY_ENV)
    if override:
        return Path(override)
    found = sorted(PACKAGE_DIR.glob(OPS_LIBRARY_GLOB))
    return found[0] if found else PACKAGE_DIR / OPS_LIBRARY_NAME


def sibling_library(name: str) -> Path:
    """A binding's library (``_corrops_jax.so``, ``_corrops_torch.so``), next
    to the op library."""
    return ops_library_path().with_name(name)


def build_info() -> dict[str, Any]:
    """What the libraries were built with: TF version, CUDA support, GPU archs,
    XLA custom-call platforms; whether the JAX binding was built (``jax``,
    ``jax_version``: the jax it was built against, ``jax_platforms``: the
    jax.ffi platforms it has handlers for, "cpu" and, built with CUDA, "CUDA");
    whether the PyTorch ops were built (``torch``, ``torch_version``).

    Empty when the package was not built (a source checkout without a build).
    """
    try:
        return json.loads(ops_library_path().with_name(BUILD_INFO_NAME).read_text())
    except (OSError, ValueError):
        return {}

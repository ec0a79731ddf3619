"""Loads the fused op library once, checking it was built for this TensorFlow.

Importing corrops never fails because of the library: when it is missing, was
built for another TensorFlow, or cannot be loaded, one warning is issued and the
pure-TF fallback is used (``impl="fused"`` then raises with the reason).
"""

from __future__ import annotations

import threading
import warnings
from types import ModuleType
from typing import Any

import tensorflow as tf

from corrops import _build

library_path = _build.ops_library_path
build_info = _build.build_info
BUILD_INFO_NAME = _build.BUILD_INFO_NAME
LIBRARY_ENV = _build.OPS_LIBRARY_ENV

_lock = threading.Lock()
_state: dict[str, Any] = {
    "tried": False,
    "module": None,
    "error": None,
    "warned": False,
    "info": {},  # build_info() of the loaded library, read once
}


FusedOpUnavailableError = _build.FusedOpUnavailableError


def _tf_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _load() -> ModuleType:
    path = library_path()
    if build_info().get("tf_version") == "" and not path.is_file():
        raise FusedOpUnavailableError(
            "this corrops build has no TensorFlow op library: TensorFlow was not importable "
            "when corrops was built. Install TensorFlow, then rebuild corrops where its build "
            "sees it: pip install --no-build-isolation 'corrops[tensorflow]' (or "
            "'.[tensorflow]' from a source tree)"
        )
    if not path.is_file():
        raise FusedOpUnavailableError(
            f"the corrops op library {path} does not exist (build it with "
            "`pip install .` or `python setup.py build_ext --inplace`)"
        )
    info = build_info()
    built_for = info.get("tf_version")
    if built_for is None:
        raise FusedOpUnavailableError(
            f"{path.with_name(BUILD_INFO_NAME)} is missing or unreadable, so the TensorFlow "
            "version the library was built for is unknown; rebuild corrops"
        )
    if _tf_minor(built_for) != _tf_minor(tf.__version__):
        raise FusedOpUnavailableError(
            f"the corrops op library was built for TensorFlow {built_for} but "
            f"TensorFlow {tf.__version__} is running; rebuild corrops against it"
        )
    try:
        module = tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, OSError) as err:  # undefined symbols, bad ELF, ...
        raise FusedOpUnavailableError(f"loading {path} failed: {err}") from err
    _state["info"] = info
    return module


def try_load() -> ModuleType | None:
    """Loads the library once; warns once and returns None if it cannot."""
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                _state["module"] = _load()
            except FusedOpUnavailableError as err:
                _state["error"] = str(err)
        if _state["module"] is None and not _state["warned"]:
            _state["warned"] = True
            warnings.warn(
                f"corrops: the fused op is unavailable ({_state['error']}); "
                "using the pure-TensorFlow fallback",
                RuntimeWarning,
                stacklevel=3,
            )
        return _state["module"]


def load_ops() -> ModuleType:
    """Loads the fused op library and returns its module; raises if it cannot.

    Call this before ``tf.saved_model.load`` of a graph that contains the op.
    """
    module = try_load()
    if module is None:
        raise FusedOpUnavailableError(f"corrops fused op unavailable: {_state['error']}")
    return module


def loaded_build_info() -> dict[str, Any]:
    """build_info() of the loaded library, read once at load (empty if none
    is loaded); the dispatch reads it on every call."""
    return _state["info"]


def fused_available() -> bool:
    """Whether the fused op library is loaded (loading it if not tried yet)."""
    return try_load() is not None


def unavailable_reason() -> str | None:
    """Why the library did not load, or None if it did (or was not tried)."""
    return _state["error"]

"""The implementation the last call chose, and why: recorded by every front
end (TensorFlow's dispatch, Keras on other backends, PyTorch), read by
``corrops.last_choice()``. No framework import.
"""

from __future__ import annotations

import logging

_log = logging.getLogger("corrops")
_logged: set[tuple[str, str]] = set()
_last: dict[str, str] = {}


def record(impl: str, reason: str) -> None:
    """Remembers (and logs once) the implementation a call chose and why."""
    _last["impl"], _last["reason"] = impl, reason
    if (impl, reason) not in _logged:
        _logged.add((impl, reason))
        _log.debug("corrops uses the %s implementation: %s", impl, reason)


def last_choice() -> dict[str, str]:
    """The implementation the last corr_loss/corrcoef call chose and why:
    ``{"impl": ..., "reason": ...}``. ``impl`` is "fused" (the engine, as a TF
    op, an XLA custom call, a jax.ffi call or a PyTorch op), "tf" (the
    pure-TF fallback), "keras.ops" (Keras on another backend without the
    engine) or "torch" (the pure-PyTorch fallback)."""
    return dict(_last)

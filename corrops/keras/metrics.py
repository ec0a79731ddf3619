"""Exact, mergeable correlation metrics for Keras 3: PearsonCorrelation and
ConcordanceCorrelation.

Two modes:

* ``"per_sequence"`` (default): the mean over sequences (and channels) of each
  sequence's coefficient. Each sequence lies in one batch, so the state (a
  weighted sum of coefficients and the sum of weights) is exact and additive.
* ``"pooled"``: the coefficient over all valid steps of all sequences
  concatenated, per channel, then averaged over channels (the way
  affect-recognition challenges score). The state is the sufficient
  statistics (n, means, centered second moments, co-moment) per channel,
  combined with Chan et al.'s parallel formulas: one batch or many, one
  replica or several, give the same value up to rounding.

Masks (a Keras mask on ``y_pred``) and ``sample_weight`` are honoured:
``sample_weight`` of the loss shape (``(B, T)``) weights steps; of shape
``(B,)`` it weights sequences (``"per_sequence"``) or all steps of a sequence
(``"pooled"``). In ``"per_sequence"`` mode with ``(B, T)`` weights each
sequence's coefficient is the weighted coefficient of its steps and sequences
count equally. Sequences without a valid step are left out.

Written in ``keras.ops``: the metrics run on every Keras backend. The state
is float64, except on JAX without 64-bit mode (``jax_enable_x64``), where it
is float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import keras
from keras import ops

from corrops import _contract
from corrops.keras import _backends, _portable

MODES = ("per_sequence", "pooled")


class Moments(NamedTuple):
    """Weighted sufficient statistics; second moments are sums, not means."""

    n: Any
    mx: Any
    my: Any
    m2x: Any
    m2y: Any
    cxy: Any


def chan_merge(a: Moments, b: Moments) -> Moments:
    """Combines the statistics of two disjoint sets (Chan, Golub, LeVeque)."""
    n = a.n + b.n
    some = n > 0
    safe = ops.where(some, n, 1.0)
    fb = ops.where(some, b.n / safe, 0.0)
    dx, dy = b.mx - a.mx, b.my - a.my
    cross = ops.where(some, a.n * b.n / safe, 0.0)
    return Moments(
        n,
        a.mx + dx * fb,
        a.my + dy * fb,
        a.m2x + b.m2x + dx * dx * cross,
        a.m2y + b.m2y + dy * dy * cross,
        a.cxy + b.cxy + dx * dy * cross,
    )


def coefficient(m: Moments, method: str) -> Any:
    """Pearson r or CCC from the statistics; 0 where undefined."""
    spec = _contract.METHODS[method]
    safe_n = ops.where(m.n > 0, m.n, 1.0)
    den = spec.denominator(m.m2x / safe_n, m.m2y / safe_n, m.mx - m.my, ops.sqrt)
    num = spec.scale * m.cxy / safe_n
    ok = ops.logical_and(den > 0, m.n > 0)
    return ops.where(ok, num / ops.where(ok, den, 1.0), 0.0)


def state_dtype() -> str:
    """float64, or float32 on JAX without 64-bit mode (it has no float64)."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"


class _Rows(NamedTuple):
    """Metric inputs on the canonical layout (outer, time, groups, channels)."""

    x: Any
    y: Any
    mask: Any  # (outer, time, groups) bool, or None
    loss_rank: int
    to_rows: Callable[[Any], Any]  # a tensor broadcastable to the loss shape -> (O, T, M)


def _canonical_rows(y_true: Any, y_pred: Any, axis: int) -> _Rows:
    mask = _backends.keras_mask(y_pred)
    if _backends.is_tensorflow():  # may have dynamic shapes: the TF front end's reshape
        import tensorflow as tf

        from corrops.tensorflow import _inputs

        c = _inputs.canonicalize(y_true, y_pred, axis, mask, "pearson", 1.0)
        shape3 = tf.shape(c.x, out_type=tf.int64)[:3]
        return _Rows(
            c.x,
            c.y,
            c.mask,
            c.loss_static.rank,
            lambda t: tf.reshape(tf.broadcast_to(t, c.loss_shape), shape3),
        )
    p = _portable.canonicalize(y_true, y_pred, axis, mask)
    rows3 = p.layout.canonical_dims()[:3]
    return _Rows(
        p.x,
        p.y,
        p.mask,
        len(p.layout.loss_shape),
        lambda t: ops.reshape(ops.broadcast_to(t, p.layout.loss_shape), rows3),
    )


class _CorrelationMetric(keras.metrics.Metric):
    method = "pearson"

    def __init__(
        self,
        mode: str = "per_sequence",
        num_channels: int = 1,
        axis: int = 1,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name or self._default_name(), dtype=dtype)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
        self.mode, self.num_channels, self.axis = mode, num_channels, axis
        self._acc = state_dtype()
        if mode == "per_sequence":
            self.total = self.add_variable((), "zeros", dtype=self._acc, name="total")
            self.count = self.add_variable((), "zeros", dtype=self._acc, name="count")
        else:
            self._state = [
                self.add_variable((num_channels,), "zeros", dtype=self._acc, name=field)
                for field in Moments._fields
            ]

    @classmethod
    def _default_name(cls) -> str:
        return f"{cls.method}_correlation"

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "num_channels": self.num_channels,
            "axis": self.axis,
        }

    # ---------------------------------------------------------------- update
    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        c = _canonical_rows(y_true, y_pred, self.axis)
        acc = self._acc
        x, y = ops.cast(c.x, acc), ops.cast(c.y, acc)  # (O, T, M, C)
        ones = ops.ones_like(x[..., 0])  # (O, T, M)
        w = ones if c.mask is None else ops.cast(c.mask, acc)
        seq_w = None
        if sample_weight is not None:
            sw = ops.cast(ops.convert_to_tensor(sample_weight), acc)
            per_sequence = len(sw.shape) == 1
            if per_sequence:
                sw = ops.reshape(sw, (-1,) + (1,) * (c.loss_rank - 1))
            sw3 = c.to_rows(sw)
            if per_sequence and self.mode == "per_sequence":
                seq_w = sw3
            else:
                w = w * sw3
        rows = _row_moments(x, y, w)  # each (O, M, C)
        if self.mode == "per_sequence":
            r = coefficient(rows, self.method)
            valid = rows.n > 0
            if seq_w is None:
                weight = ops.cast(valid, acc)
            else:
                # A (B,) weight is constant over time: take it where it is valid.
                sw_rows = ops.max(ops.where(w > 0, seq_w, 0.0), axis=1, initial=0.0)
                weight = ops.where(valid, ops.expand_dims(sw_rows, -1) * ops.ones_like(r), 0.0)
            self.total.assign_add(ops.sum(weight * ops.where(valid, r, 0.0)))
            self.count.assign_add(ops.sum(weight))
            return
        channels = x.shape[-1]
        if channels is not None and channels != self.num_channels:
            raise ValueError(
                f"{self.name} was built for num_channels={self.num_channels} but y_pred has "
                f"{channels} channels"
            )
        batch = _pool_rows(Moments(*(ops.reshape(t, (-1, self.num_channels)) for t in rows)))
        merged = chan_merge(Moments(*(v.value for v in self._state)), batch)
        for var, value in zip(self._state, merged, strict=True):
            var.assign(value)

    # ---------------------------------------------------------------- result
    def result(self) -> Any:
        if self.mode == "per_sequence":
            count = ops.convert_to_tensor(self.count)
            value = ops.where(count > 0, self.total / ops.where(count > 0, count, 1.0), 0.0)
        else:
            value = ops.mean(coefficient(self._merged_replicas(), self.method))
        return ops.cast(value, self.dtype)

    def _merged_replicas(self) -> Moments:
        local = Moments(*(ops.convert_to_tensor(v.value) for v in self._state))
        if not _backends.is_tensorflow():
            return local
        import tensorflow as tf

        # Keras keeps metric variables per replica ("on_read", "sum"): a plain
        # read outside the replicas would *sum* their states, so merge the
        # local states exactly instead (Keras calls result() both inside a
        # replica and, at the end of an epoch, outside any strategy scope).
        first = self._state[0].value
        strategy = getattr(first, "distribute_strategy", None)
        outside_replicas = (
            tf.distribute.in_cross_replica_context() or not tf.distribute.has_strategy()
        )
        if strategy is not None and outside_replicas:
            per_var = [strategy.experimental_local_results(v.value) for v in self._state]
            merged = None
            for replica in zip(*per_var, strict=True):
                part = Moments(*(tf.convert_to_tensor(t) for t in replica))
                merged = part if merged is None else chan_merge(merged, part)
            return merged
        return local


def _row_moments(x: Any, y: Any, w: Any) -> Moments:
    """Weighted centered two-pass statistics of every row: shapes (O, M, C)."""
    w4 = ops.expand_dims(w, -1) * ops.ones_like(x[:, :1])  # (O, T, M, C)
    use = w4 > 0
    n = ops.sum(w4, axis=1)
    safe = ops.where(n > 0, n, 1.0)
    mx = ops.sum(ops.where(use, w4 * x, 0.0), axis=1) / safe
    my = ops.sum(ops.where(use, w4 * y, 0.0), axis=1) / safe
    dx = ops.where(use, x - ops.expand_dims(mx, 1), 0.0)
    dy = ops.where(use, y - ops.expand_dims(my, 1), 0.0)
    return Moments(
        n,
        mx,
        my,
        ops.sum(w4 * dx * dx, axis=1),
        ops.sum(w4 * dy * dy, axis=1),
        ops.sum(w4 * dx * dy, axis=1),
    )


def _pool_rows(rows: Moments) -> Moments:
    """Exact statistics of the union of rows (R, C) -> (C,) (parallel axis)."""
    n = ops.sum(rows.n, axis=0)
    safe = ops.where(n > 0, n, 1.0)
    mx = ops.sum(rows.n * rows.mx, axis=0) / safe
    my = ops.sum(rows.n * rows.my, axis=0) / safe
    dx, dy = rows.mx - mx, rows.my - my
    return Moments(
        n,
        mx,
        my,
        ops.sum(rows.m2x + rows.n * dx * dx, axis=0),
        ops.sum(rows.m2y + rows.n * dy * dy, axis=0),
        ops.sum(rows.cxy + rows.n * dx * dy, axis=0),
    )


@keras.saving.register_keras_serializable(package="corrops")
class PearsonCorrelation(_CorrelationMetric):
    """Pearson correlation between y_true and y_pred sequences (see module doc).

    Inputs ``(B, T)`` or ``(B, T, C)`` (time axis ``axis``); ``mode`` is
    ``"per_sequence"`` or ``"pooled"``; ``num_channels`` is C (pooled mode).
    """

    method = "pearson"


@keras.saving.register_keras_serializable(package="corrops")
class ConcordanceCorrelation(_CorrelationMetric):
    """Concordance correlation coefficient (CCC, Lin 1989); see the module doc."""

    method = "ccc"

    @classmethod
    def _default_name(cls) -> str:
        return "concordance_correlation"

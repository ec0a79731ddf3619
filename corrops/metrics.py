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
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf

from corrops import _inputs
from corrops.losses import keras_mask

MODES = ("per_sequence", "pooled")
_F64 = tf.float64


class Moments(NamedTuple):
    """Weighted sufficient statistics; second moments are sums, not means."""

    n: tf.Tensor
    mx: tf.Tensor
    my: tf.Tensor
    m2x: tf.Tensor
    m2y: tf.Tensor
    cxy: tf.Tensor


def chan_merge(a: Moments, b: Moments) -> Moments:
    """Combines the statistics of two disjoint sets (Chan, Golub, LeVeque)."""
    n = a.n + b.n
    safe = tf.where(n > 0, n, tf.ones_like(n))
    fb = tf.where(n > 0, b.n / safe, tf.zeros_like(n))
    dx, dy = b.mx - a.mx, b.my - a.my
    cross = tf.where(n > 0, a.n * b.n / safe, tf.zeros_like(n))
    return Moments(
        n,
        a.mx + dx * fb,
        a.my + dy * fb,
        a.m2x + b.m2x + dx * dx * cross,
        a.m2y + b.m2y + dy * dy * cross,
        a.cxy + b.cxy + dx * dy * cross,
    )


def coefficient(m: Moments, method: str) -> tf.Tensor:
    """Pearson r or CCC from the statistics; 0 where undefined."""
    if method == "pearson":
        den = tf.sqrt(m.m2x) * tf.sqrt(m.m2y)
        num = m.cxy
    else:
        safe_n = tf.where(m.n > 0, m.n, tf.ones_like(m.n))
        den = (m.m2x + m.m2y) / safe_n + tf.square(m.mx - m.my)
        num = 2.0 * m.cxy / safe_n
    ok = (den > 0) & (m.n > 0)
    return tf.where(ok, num / tf.where(ok, den, tf.ones_like(den)), tf.zeros_like(den))


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
        if mode == "per_sequence":
            self.total = self.add_variable((), "zeros", dtype="float64", name="total")
            self.count = self.add_variable((), "zeros", dtype="float64", name="count")
        else:
            self._state = [
                self.add_variable((num_channels,), "zeros", dtype="float64", name=field)
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
        c = _inputs.canonicalize(y_true, y_pred, self.axis, keras_mask(y_pred), "pearson", 1.0)
        x, y = tf.cast(c.x, _F64), tf.cast(c.y, _F64)  # (O, T, M, C)
        shape3 = tf.shape(x, out_type=tf.int64)[:3]
        w = tf.ones(shape3, _F64) if c.mask is None else tf.cast(c.mask, _F64)
        seq_w = None
        if sample_weight is not None:
            sw = tf.cast(tf.convert_to_tensor(sample_weight), _F64)
            per_sequence = sw.shape.rank == 1 and c.loss_static.rank != 1
            if sw.shape.rank == 1 and c.loss_static.rank > 1:
                sw = tf.reshape(
                    sw,
                    tf.concat(
                        [
                            tf.shape(sw, out_type=tf.int64),
                            tf.ones([c.loss_static.rank - 1], tf.int64),
                        ],
                        0,
                    ),
                )
            sw3 = tf.reshape(tf.broadcast_to(sw, c.loss_shape), shape3)
            if per_sequence and self.mode == "per_sequence":
                seq_w = sw3
            else:
                w = w * sw3
        rows = _row_moments(x, y, w)  # each (O, M, C)
        if self.mode == "per_sequence":
            r = coefficient(rows, self.method)
            valid = rows.n > 0
            if seq_w is None:
                weight = tf.cast(valid, _F64)
            else:
                # A (B,) weight is constant over time: take it where it is valid.
                sw_rows = tf.reduce_max(tf.where(w > 0, seq_w, tf.zeros_like(seq_w)), axis=1)
                weight = tf.where(valid, sw_rows[..., tf.newaxis] * tf.ones_like(r), 0.0)
            self.total.assign_add(tf.reduce_sum(weight * tf.where(valid, r, 0.0)))
            self.count.assign_add(tf.reduce_sum(weight))
            return
        channels = x.shape[-1]
        if channels is not None and channels != self.num_channels:
            raise ValueError(
                f"{self.name} was built for num_channels={self.num_channels} but y_pred has "
                f"{channels} channels"
            )
        batch = _pool_rows(Moments(*(tf.reshape(t, [-1, self.num_channels]) for t in rows)))
        merged = chan_merge(Moments(*(v.value for v in self._state)), batch)
        for var, value in zip(self._state, merged, strict=True):
            var.assign(value)

    # ---------------------------------------------------------------- result
    def result(self) -> tf.Tensor:
        if self.mode == "per_sequence":
            count = tf.convert_to_tensor(self.count)
            value = tf.where(count > 0, self.total / tf.where(count > 0, count, 1.0), 0.0)
        else:
            value = tf.reduce_mean(coefficient(self._merged_replicas(), self.method))
        return tf.cast(value, self.dtype)

    def _merged_replicas(self) -> Moments:
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
        return Moments(*(tf.convert_to_tensor(v.value) for v in self._state))


def _row_moments(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> Moments:
    """Weighted centered two-pass statistics of every row: shapes (O, M, C)."""
    w4 = w[..., tf.newaxis] * tf.ones_like(x[:, :1, :, :])  # (O, T, M, C)
    use = w4 > 0
    zeros = tf.zeros_like(x)
    n = tf.reduce_sum(w4, axis=1)
    safe = tf.where(n > 0, n, tf.ones_like(n))
    mx = tf.reduce_sum(tf.where(use, w4 * x, zeros), axis=1) / safe
    my = tf.reduce_sum(tf.where(use, w4 * y, zeros), axis=1) / safe
    dx = tf.where(use, x - mx[:, tf.newaxis], zeros)
    dy = tf.where(use, y - my[:, tf.newaxis], zeros)
    return Moments(
        n,
        mx,
        my,
        tf.reduce_sum(w4 * dx * dx, axis=1),
        tf.reduce_sum(w4 * dy * dy, axis=1),
        tf.reduce_sum(w4 * dx * dy, axis=1),
    )


def _pool_rows(rows: Moments) -> Moments:
    """Exact statistics of the union of rows (R, C) -> (C,) (parallel axis)."""
    n = tf.reduce_sum(rows.n, axis=0)
    safe = tf.where(n > 0, n, tf.ones_like(n))
    mx = tf.reduce_sum(rows.n * rows.mx, axis=0) / safe
    my = tf.reduce_sum(rows.n * rows.my, axis=0) / safe
    dx, dy = rows.mx - mx, rows.my - my
    return Moments(
        n,
        mx,
        my,
        tf.reduce_sum(rows.m2x + rows.n * dx * dx, axis=0),
        tf.reduce_sum(rows.m2y + rows.n * dy * dy, axis=0),
        tf.reduce_sum(rows.cxy + rows.n * dx * dy, axis=0),
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

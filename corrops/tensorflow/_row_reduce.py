"""Row reductions (over axis 1, kept with length 1) of several tensors of one
shape at once, for the fallback.

Inside XLA they are one variadic reduce: one pass that reads every input
once, with its elementwise producers fused in. Separate reductions are a pass
each, and XLA's CPU backend hands each to a library kernel that takes its
input materialised (or, at small sizes, splits it into two kernels); the
measured difference is in docs/BENCHMARKS.md. Outside XLA each is a TF
reduction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from corrops.tensorflow import _dispatch, _private


def row_sums(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """``[reduce_sum(t, axis=1, keepdims=True) for t in tensors]``, differentiable."""
    if len(tensors) == 1 or not _dispatch.in_xla_context():
        return [tf.reduce_sum(t, axis=1, keepdims=True) for t in tensors]
    return list(_variadic_sums(*tensors))


def row_maxima(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """``[reduce_max(t, axis=1, keepdims=True) for t in tensors]`` (-inf for no
    steps), without a gradient: the fallback uses them for a row's shift and
    scale, which change no result."""
    if len(tensors) == 1 or not _dispatch.in_xla_context():
        maxima = [tf.reduce_max(t, axis=1, keepdims=True) for t in tensors]
    else:
        maxima = _variadic("max", tensors)
    return [tf.stop_gradient(m) for m in maxima]


@tf.custom_gradient
def _variadic_sums(*tensors: tf.Tensor) -> tuple[list[tf.Tensor], Callable]:
    def grad(*upstream: tf.Tensor) -> list[tf.Tensor]:
        return [tf.broadcast_to(u, tf.shape(t)) for u, t in zip(upstream, tensors, strict=True)]

    return _variadic("sum", tensors), grad


def _variadic(kind: str, tensors: list[tf.Tensor] | tuple[tf.Tensor, ...]) -> list[tf.Tensor]:
    dtype = tensors[0].dtype
    init = tf.constant(0 if kind == "sum" else -np.inf, dtype)
    reduced = _private.variadic_reduce(
        list(tensors), [init] * len(tensors), [1], _reducer(kind, len(tensors), dtype)
    )
    return [tf.expand_dims(r, 1) for r in reduced]


@functools.cache
def _reducer(kind: str, count: int, dtype: tf.DType) -> tf.types.experimental.ConcreteFunction:
    combine = tf.add if kind == "sum" else tf.maximum

    @tf.function(autograph=False)
    def reducer(*scalars: tf.Tensor) -> list[tf.Tensor]:
        return [combine(scalars[i], scalars[count + i]) for i in range(count)]

    return reducer.get_concrete_function(*[tf.TensorSpec([], dtype)] * (2 * count))

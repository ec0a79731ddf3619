"""Recognises an upstream gradient that is one value broadcast over the loss.

A training step differentiates a mean or a sum of the per-step loss (Keras'
default ``sum_over_batch_size`` reduction, or ``tf.reduce_mean`` in a custom
loop). In a graph, that upstream gradient reaches the gradient function as a
``Tile``/``BroadcastTo`` of a scalar, usually reshaped and scaled. The fused
gradient op can then take the scalar instead of the materialised tensor: the
broadcast has no reader left and grappler prunes it, and the CPU kernel makes
one pass that reads no per-step gradient (see ``time_const_grad_coeffs`` in
csrc/core/row_math.h).

Only the graph that produced the gradient is inspected; nothing is evaluated
and the new ops are scalar. Anything not recognised (eager tensors, function
inputs, per-step weights, masks) keeps the general per-step path.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.python.framework import tensor_util

# How each recognised op's output value follows from its inputs' values, when
# every element of those inputs is one value: (the inputs that carry values,
# how the output's one value is computed from theirs).
_Rule = tuple[Callable[[tf.Operation], list], Callable[[list, tf.DType], tf.Tensor]]


def _first(op: tf.Operation) -> list:
    return [op.inputs[0]]


def _all(op: tf.Operation) -> list:
    return list(op.inputs)


def _same(values: list, dtype: tf.DType) -> tf.Tensor:
    return values[0]


def _binary(fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> _Rule:
    return _all, lambda v, dtype: fn(v[0], v[1])  # elementwise, broadcasting: uniform


# Ops whose output holds the first input's values, rearranged or repeated.
_SHAPE_ONLY = ("Identity", "Snapshot", "StopGradient", "Reshape", "Tile", "BroadcastTo")
_SHAPE_ONLY += ("ExpandDims", "Squeeze")

_RULES: dict[str, _Rule] = {
    **{kind: (_first, _same) for kind in _SHAPE_ONLY},
    "Fill": (lambda op: [op.inputs[1]], _same),
    "OnesLike": (lambda op: [], lambda v, dtype: tf.ones([], dtype)),
    "ZerosLike": (lambda op: [], lambda v, dtype: tf.zeros([], dtype)),
    "Cast": (_first, lambda v, dtype: tf.cast(v[0], dtype)),
    "Neg": (_first, lambda v, dtype: tf.negative(v[0])),
    "Mul": _binary(tf.multiply),
    "RealDiv": _binary(tf.math.truediv),
    "DivNoNan": _binary(tf.math.divide_no_nan),
    "AddV2": _binary(tf.add),
    "Sub": _binary(tf.subtract),
    "AddN": (_all, lambda v, dtype: tf.add_n(v)),
}
_MAX_DEPTH = 16  # the chains seen in practice are 3-6 ops deep


def uniform_value(t: tf.Tensor, depth: int = 0) -> tf.Tensor | None:
    """Returns a scalar tensor equal to every element of ``t``, or None.

    ``t`` is a graph tensor; None when it is eager, or not recognisably one
    value broadcast (the caller then uses ``t`` itself).
    """
    try:
        op = t.op
    except AttributeError:  # an EagerTensor: no producing op to look at
        return None
    if t.shape.is_fully_defined() and t.shape.num_elements() == 1:
        return tf.reshape(t, [])
    if op.type == "Const":
        return _splat_constant(op, t.dtype)
    rule = _RULES.get(op.type)
    if rule is None or depth >= _MAX_DEPTH:
        return None
    pick, combine = rule
    values = [uniform_value(i, depth + 1) for i in pick(op)]
    if any(v is None for v in values):
        return None
    return combine(values, t.dtype)


def _splat_constant(op: tf.Operation, dtype: tf.DType) -> tf.Tensor | None:
    """The value of a splat constant (one stored value repeated over its
    shape, as TF stores e.g. the ones a tape seeds a non-scalar target with),
    else None. Only that one value is decoded, never the full tensor."""
    proto = op.get_attr("value")
    stored = [values for field, values in proto.ListFields() if field.name.endswith("_val")]
    if proto.tensor_content or len(stored) != 1 or len(stored[0]) != 1:
        return None  # packed or listed values: not a splat
    scalar = tensor_pb2.TensorProto()
    scalar.CopyFrom(proto)
    scalar.ClearField("tensor_shape")  # the one value, as a scalar
    return tf.constant(tensor_util.MakeNdarray(scalar), dtype)


def time_constant_grad(grad: tf.Tensor, data: tf.Tensor) -> tf.Tensor | None:
    """The fused gradient op's compact ``grad`` for a uniform upstream gradient.

    ``grad`` is the upstream gradient of the canonical loss ``(outer, time,
    groups)`` and ``data`` a canonical input ``(outer, time, groups,
    channels)``. Returns the value broadcast to ``(outer, 1, groups)``, the
    op's "constant along time" form, or None when ``grad`` is not uniform.
    """
    value = uniform_value(grad)
    if value is None:
        return None
    static = data.shape
    if static.rank == 4 and static[0] is not None and static[2] is not None:
        shape = tf.constant([static[0], 1, static[2]], tf.int64)
    else:
        dims = tf.shape(data, out_type=tf.int64)
        shape = tf.stack([dims[0], tf.constant(1, tf.int64), dims[2]])
    return tf.broadcast_to(tf.reshape(tf.cast(value, grad.dtype), [1, 1, 1]), shape)

"""Recognises an upstream gradient that is constant along time: one value
broadcast over the loss, or one value per sequence (times sample weights).

A training step differentiates a mean or a sum of the per-step loss (Keras'
default ``sum_over_batch_size`` reduction, or ``tf.reduce_mean`` in a custom
loop). In a graph, that upstream gradient reaches the gradient function as a
``Tile``/``BroadcastTo`` of a scalar, usually reshaped and scaled. The fused
gradient op can then take the scalar instead of the materialised tensor: the
broadcast has no reader left and grappler prunes it, and the CPU kernel makes
one pass that reads no per-step gradient (see ``time_const_grad_coeffs`` in
csrc/core/row_math.h).

With per-sequence sample weights (Keras' ``Mul(Tile(scalar), w[:, None])``)
the gradient varies over sequences but not along time; ``along_time`` follows
such a graph with static shapes and builds the one value per sequence.

Only the graph that produced the gradient is inspected; nothing is evaluated
and the new ops are scalar or per-sequence. Anything not recognised (eager
tensors, function inputs, per-step weights, masks) keeps the general per-step
path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from corrops.tensorflow import _private

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


# Elementwise ops with broadcasting, and how they combine their inputs' values.
_ELEMENTWISE: dict[str, Callable[[list], tf.Tensor]] = {
    "Mul": lambda v: tf.multiply(v[0], v[1]),
    "RealDiv": lambda v: tf.math.truediv(v[0], v[1]),
    "DivNoNan": lambda v: tf.math.divide_no_nan(v[0], v[1]),
    "AddV2": lambda v: tf.add(v[0], v[1]),
    "Sub": lambda v: tf.subtract(v[0], v[1]),
    "AddN": tf.add_n,
    "Neg": lambda v: tf.negative(v[0]),
}

# Ops whose output holds the first input's values, rearranged or repeated.
_SHAPE_ONLY = ("Identity", "Snapshot", "StopGradient", "Reshape", "Tile", "BroadcastTo")
_SHAPE_ONLY += ("ExpandDims", "Squeeze")

_RULES: dict[str, _Rule] = {
    **{kind: (_first, _same) for kind in _SHAPE_ONLY},
    "Fill": (lambda op: [op.inputs[1]], _same),
    "OnesLike": (lambda op: [], lambda v, dtype: tf.ones([], dtype)),
    "ZerosLike": (lambda op: [], lambda v, dtype: tf.zeros([], dtype)),
    "Cast": (_first, lambda v, dtype: tf.cast(v[0], dtype)),
    # Elementwise of uniform inputs, broadcast or not, is uniform.
    **{kind: (_all, lambda v, dtype, fn=fn: fn(v)) for kind, fn in _ELEMENTWISE.items()},
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
    return tf.constant(_private.scalar_of_proto(proto), dtype)


_PASS_THROUGH = ("Identity", "Snapshot", "StopGradient")


def _static_dims(t: tf.Tensor) -> list[int] | None:
    return t.shape.as_list() if t.shape.is_fully_defined() else None


def _reshape_time_axis(dims_in: list[int], dims_out: list[int], axis: int) -> int | None:
    """The axis of dims_in that a reshape to dims_out turns into axis `axis`:
    the same number of elements before it and the same length. None when the
    reshape splits or merges the time axis."""
    before = math.prod(dims_out[:axis])
    for k, d in enumerate(dims_in):
        if d == dims_out[axis] and math.prod(dims_in[:k]) == before:
            return k
    return None


def along_time(t: tf.Tensor, axis: int, depth: int = 0) -> tf.Tensor | None:
    """``t`` with its axis ``axis`` cut to length 1 when ``t`` is constant along
    that axis (e.g. a mean's gradient times per-sequence sample weights), else
    None. Needs static shapes; nothing is evaluated, and the ops it adds are
    the size of the result."""
    dims = _static_dims(t)
    if dims is None or not 0 <= axis < len(dims) or depth >= _MAX_DEPTH:
        return None
    if dims[axis] == 1:
        return t
    one = [*dims[:axis], 1, *dims[axis + 1 :]]
    value = uniform_value(t)
    if value is not None:
        return tf.broadcast_to(tf.cast(value, t.dtype), one)
    op = getattr(t, "op", None)  # an EagerTensor has none
    rule = None if op is None else _ALONG_TIME_RULES.get(op.type)
    return None if rule is None else rule(op, dims, axis, one, depth + 1)


def _pass_through(op: tf.Operation, dims: list, axis: int, one: list, depth: int):
    inner = along_time(op.inputs[0], axis, depth)
    return None if inner is None else tf.cast(inner, op.outputs[0].dtype)  # Cast: converts


def _reshape(op: tf.Operation, dims: list, axis: int, one: list, depth: int):
    src_dims = _static_dims(op.inputs[0])
    k = None if src_dims is None else _reshape_time_axis(src_dims, dims, axis)
    inner = None if k is None else along_time(op.inputs[0], k, depth)
    return None if inner is None else tf.reshape(inner, one)


def _aligned_axis(t: tf.Tensor, dims: list, axis: int) -> int | None:
    """Where ``axis`` of a broadcast result falls in its input ``t`` (numpy
    broadcasting aligns the last axes): -1 when ``t`` has no such axis or it
    has length 1, i.e. ``t`` is constant along it; None if ``t``'s shape is
    not static or has more axes than the result."""
    t_dims = _static_dims(t)
    if t_dims is None or len(t_dims) > len(dims):
        return None
    k = axis - (len(dims) - len(t_dims))
    return -1 if k < 0 or t_dims[k] == 1 else k


def _tile(op: tf.Operation, dims: list, axis: int, one: list, depth: int):
    reps = _private.constant_value(op.inputs[1])
    src = op.inputs[0]
    src_dims = _static_dims(src)
    if reps is None or src_dims is None or len(src_dims) != len(dims):
        return None
    # Repeating a tensor constant along time (along time or not) keeps it so.
    src = along_time(src, axis, depth)
    if src is None:
        return None
    return tf.tile(src, [1 if k == axis else int(r) for k, r in enumerate(reps)])


def _broadcast_to(op: tf.Operation, dims: list, axis: int, one: list, depth: int):
    src = op.inputs[0]
    k = _aligned_axis(src, dims, axis)
    if k is not None and k >= 0:  # the time axis comes from the input itself
        src = along_time(src, k, depth)
    return None if k is None or src is None else tf.broadcast_to(src, one)


def _elementwise(op: tf.Operation, dims: list, axis: int, one: list, depth: int):
    parts = []
    for i in op.inputs:
        k = _aligned_axis(i, dims, axis)
        part = None if k is None else (i if k < 0 else along_time(i, k, depth))
        if part is None:
            return None
        parts.append(part)
    return tf.broadcast_to(_ELEMENTWISE[op.type](parts), one)


_ALONG_TIME_RULES = {
    **{kind: _pass_through for kind in (*_PASS_THROUGH, "Cast")},
    "Reshape": _reshape,
    "Tile": _tile,
    "BroadcastTo": _broadcast_to,
    **{kind: _elementwise for kind in _ELEMENTWISE},
}


def time_constant_grad(grad: tf.Tensor, data: tf.Tensor) -> tf.Tensor | None:
    """The fused gradient op's compact ``grad`` for an upstream gradient that
    is constant along time.

    ``grad`` is the upstream gradient of the op's loss and ``data`` an input
    of the op: ``(outer, time, groups)`` for ``(outer, time, groups,
    channels)`` data, ``(outer, time)`` for ``(outer, time[, channels])``.
    Returns that shape with time 1, the op's "constant along time" form, or
    None when ``grad`` is not recognisably constant along time. One value
    broadcast (the gradient of a mean or sum) needs no static shape; a
    per-sequence value (times sample weights of shape ``(B,)``) does.
    """
    value = uniform_value(grad)
    if value is None:
        compact = along_time(grad, 1)
        return None if compact is None else tf.cast(compact, grad.dtype)
    static = data.shape
    kept = [0, 2] if static.rank == 4 else [0]  # the loss's axes other than time
    if all(static[k] is not None for k in kept):
        shape = tf.constant([static[0], 1, *(static[k] for k in kept[1:])], tf.int64)
    else:
        dims = tf.shape(data, out_type=tf.int64)
        shape = tf.stack([dims[0], tf.constant(1, tf.int64), *(dims[k] for k in kept[1:])])
    one = tf.reshape(tf.cast(value, grad.dtype), [1] * (len(kept) + 1))
    return tf.broadcast_to(one, shape)

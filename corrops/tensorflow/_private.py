"""Every private TensorFlow API corrops uses, in one place. Each is a TF
internal with no public equivalent; tests/test_private_apis.py names each
one and fails, saying which, when a TensorFlow release changes it.

* ``control_flow_util.GraphOrParentsInXlaContext``: whether the graph being
  traced is XLA-compiled (the dispatch lowers to custom calls there).
* ``Graph._device_function_stack``: the device scope being traced into
  (where a GPU is visible but the library has no CUDA kernels).
* ``EagerTensor`` and ``EagerTensor._shape_tuple``: the eager call's
  shape check without building a TensorShape.
* ``tf2xla.python.xla.variadic_reduce``: several row sums in one XLA reduce.
* ``tensor_pb2.TensorProto``, ``tensor_util.MakeNdarray`` and
  ``tensor_util.constant_value``: reading a gradient's constant seed.
* The ``_keras_mask`` attribute: where Keras keeps the mask a layer attached
  to a TF tensor (read here without importing Keras; corrops/keras/_private.py
  holds Keras' own accessors).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as _tf2xla
from tensorflow.core.framework import tensor_pb2
from tensorflow.python.framework import tensor_util
from tensorflow.python.framework.ops import EagerTensor
from tensorflow.python.ops import control_flow_util

__all__ = [
    "MASK_ATTRIBUTE",
    "EagerTensor",
    "attached_mask",
    "constant_value",
    "device_scope",
    "eager_shape",
    "in_xla_context",
    "scalar_of_proto",
    "variadic_reduce",
]

MASK_ATTRIBUTE = "_keras_mask"
variadic_reduce = _tf2xla.variadic_reduce
constant_value = tensor_util.constant_value


def in_xla_context(graph: tf.Graph) -> bool:
    """Whether ``graph`` (or a graph it is nested in) is XLA-compiled."""
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def device_scope(graph: tf.Graph) -> Any:
    """The innermost ``tf.device`` scope being traced into, or None."""
    return graph._device_function_stack.peek_top_obj()


def eager_shape(t: EagerTensor) -> tuple[int, ...]:
    """An eager tensor's shape as a tuple, without a TensorShape."""
    return t._shape_tuple()


def scalar_of_proto(proto: Any) -> np.ndarray:
    """The one stored value of a splat constant's TensorProto, as a scalar."""
    scalar = tensor_pb2.TensorProto()
    scalar.CopyFrom(proto)
    scalar.ClearField("tensor_shape")  # the one value, as a scalar
    return tensor_util.MakeNdarray(scalar)


def attached_mask(t: Any) -> Any:
    """The Keras mask attached to a TF tensor as its attribute, or None."""
    return getattr(t, MASK_ATTRIBUTE, None)

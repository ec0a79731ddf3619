"""The private framework APIs corrops relies on (corrops/tensorflow/_private.py,
corrops/keras/_private.py, and JAX's interfaces for primitive authors in
corrops/jax/_tangent.py), each checked by name: when a TensorFlow, Keras or
JAX release changes one, its test fails saying which API and which module to
update, before anything downstream breaks in a harder-to-read way."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from corrops.keras import _private as _keras_private
from corrops.tensorflow import _private as _tf_private

TF = f"TensorFlow {tf.__version__}"


def _fail(api: str, module: str, err: Exception, release: str = "") -> None:
    release = release or f"{TF} / Keras {keras.__version__}"
    pytest.fail(f"{api} changed in {release}: update {module} ({err!r})")


def test_graph_or_parents_in_xla_context():
    seen = {}

    @tf.function(jit_compile=True)
    def compiled(x):
        seen["xla"] = _tf_private.in_xla_context(tf.compat.v1.get_default_graph())
        return x

    @tf.function
    def plain(x):
        seen["graph"] = _tf_private.in_xla_context(tf.compat.v1.get_default_graph())
        return x

    try:
        compiled(tf.constant(1.0))
        plain(tf.constant(1.0))
    except Exception as err:  # any change of the API is the finding
        _fail("control_flow_util.GraphOrParentsInXlaContext", "corrops/tensorflow/_private.py", err)
    assert seen == {"xla": True, "graph": False}


def test_graph_device_function_stack():
    seen = {}

    @tf.function
    def traced(x):
        with tf.device("/CPU:0"):
            seen["scope"] = _tf_private.device_scope(tf.compat.v1.get_default_graph())
        return x

    try:
        traced(tf.constant(1.0))
    except Exception as err:
        _fail("Graph._device_function_stack", "corrops/tensorflow/_private.py", err)
    assert "CPU" in str(getattr(seen["scope"], "display_name", "")).upper()


def test_eager_tensor_shape_tuple():
    t = tf.zeros((2, 5, 3))
    try:
        shape = _tf_private.eager_shape(t)
    except Exception as err:
        _fail("EagerTensor._shape_tuple", "corrops/tensorflow/_private.py", err)
    assert isinstance(t, _tf_private.EagerTensor) and shape == (2, 5, 3)


def test_tf2xla_variadic_reduce():
    x = tf.constant(np.arange(6.0).reshape(2, 3))

    @tf.function(input_signature=[tf.TensorSpec([], tf.float64)] * 4, autograph=False)
    def add(a, b, c, d):
        return a + c, b + d

    @tf.function(jit_compile=True)
    def sums(a, b):
        zero = tf.constant(0.0, tf.float64)
        return _tf_private.variadic_reduce([a, b], [zero, zero], [1], add.get_concrete_function())

    try:
        s1, s2 = sums(x, 2 * x)
    except Exception as err:
        _fail("tf2xla.python.xla.variadic_reduce", "corrops/tensorflow/_private.py", err)
    np.testing.assert_array_equal(s1.numpy(), [3.0, 12.0])
    np.testing.assert_array_equal(s2.numpy(), [6.0, 24.0])


def test_tensor_proto_of_a_splat_constant():
    @tf.function
    def traced():
        return tf.constant(2.5, shape=[4, 3])  # stored as one value and a shape

    const = next(
        op for op in traced.get_concrete_function().graph.get_operations() if op.type == "Const"
    )
    try:
        value = _tf_private.scalar_of_proto(const.get_attr("value"))
        reps = _tf_private.constant_value(tf.constant([1, 7, 1]))
    except Exception as err:
        _fail("tensor_pb2.TensorProto / tensor_util", "corrops/tensorflow/_private.py", err)
    assert np.ndim(value) == 0 and float(value) == 2.5
    np.testing.assert_array_equal(reps, [1, 7, 1])


def test_keras_mask_accessors():
    x = tf.constant(np.arange(6.0).reshape(2, 3, 1))
    masked = keras.layers.Masking(mask_value=0.0)(x)
    try:
        mask = _keras_private.get_keras_mask(masked)
        plain = tf.identity(x)
        _keras_private.set_keras_mask(plain, tf.constant([[True, False, True]] * 2))
    except Exception as err:
        _fail("keras.src.backend.get/set_keras_mask", "corrops/keras/_private.py", err)
    np.testing.assert_array_equal(np.asarray(mask), [[False, True, True], [True, True, True]])
    # The TF front end reads the attribute Keras keeps the mask in.
    np.testing.assert_array_equal(np.asarray(_tf_private.attached_mask(masked)), np.asarray(mask))
    assert _tf_private.attached_mask(plain) is not None


def test_jax_primitive_interfaces():
    jax = pytest.importorskip("jax")
    try:
        from jax.core import ShapedArray
        from jax.interpreters import ad, batching, mlir

        from corrops.jax import _tangent

        # batching.primitive_batchers takes rules into fancy_primitive_batchers.
        tables = (ad.primitive_jvps, ad.primitive_transposes, batching.fancy_primitive_batchers)
        registered = [_tangent.tangent_p in table for table in tables]
        aval = ShapedArray((2, 3), np.float32)
        lowering = mlir.lower_fun
    except Exception as err:
        _fail(
            "jax.core.ShapedArray, jax.extend.core.Primitive, jax.interpreters.ad/batching/mlir",
            "corrops/jax/_tangent.py",
            err,
            f"JAX {jax.__version__}",
        )
    assert all(registered) and aval.shape == (2, 3) and callable(lowering)

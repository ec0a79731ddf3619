"""The uniform upstream gradient (corrops/tensorflow/_upstream.py) and the fused op's
"constant along time" grad form it feeds: recognised where a training step
makes it, refused elsewhere, and the same gradients as the general path."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from corrops.tensorflow import _fallback, _upstream
from tests import reference as ref
from tests.helpers import as_f64, tolerance

_GRAD_OP = "Corrops>CorrLossGrad"


def _grad_op_inputs(fn: tf.types.experimental.GenericFunction, *args) -> list[tf.TensorShape]:
    graph = fn.get_concrete_function(*args).graph
    return [op.inputs[0].shape for op in graph.get_operations() if op.type == _GRAD_OP]


# ------------------------------------------------------------- recognition


def _uniform_cases():
    b, t = 3, 5

    def tiled(s):
        return tf.tile(tf.reshape(s, [1, 1]), [b, t])

    return {
        "mean grad (tile / n)": lambda s, w: tiled(s) / 15.0,
        "keras (divide_no_nan, tile, reshape)": lambda s, w: tf.reshape(
            tiled(tf.math.divide_no_nan(s, 15.0)), [b, t, 1]
        ),
        "broadcast_to": lambda s, w: tf.broadcast_to(s, [b, t]),
        "fill": lambda s, w: tf.fill([b, t], s),
        "ones_like (a splat constant)": lambda s, w: tf.ones_like(w),
        "OnesLike op": lambda s, w: tf.raw_ops.OnesLike(x=w * s),
        "cast (float16 step)": lambda s, w: tf.cast(tiled(s) / 15.0, tf.float16),
        "add_n of two": lambda s, w: tf.add_n([tiled(s), tf.broadcast_to(2.0 * s, [b, t])]),
        "neg, sub": lambda s, w: -(tiled(s) - 1.0),
    }


@pytest.mark.parametrize("case", list(_uniform_cases()))
def test_uniform_value_recognises(case):
    make = _uniform_cases()[case]
    w = tf.constant(np.arange(15.0).reshape(3, 5), tf.float32)

    @tf.function
    def f(s):
        t = make(s, w)
        v = _upstream.uniform_value(t)
        assert v is not None, "not recognised"
        assert v.shape.rank == 0 and v.dtype == t.dtype
        return t, v

    t, v = f(tf.constant(0.75))
    np.testing.assert_array_equal(as_f64(t), np.full(t.shape, as_f64(v)))


def test_uniform_value_refuses():
    w = tf.constant([[1.0], [2.0], [3.0]])  # per-sequence weights: not one value

    @tf.function
    def f(s, per_step):
        tiled = tf.tile(tf.reshape(s, [1, 1]), [3, 5])
        assert _upstream.uniform_value(tiled * w) is None
        assert _upstream.uniform_value(per_step) is None  # a function input
        assert _upstream.uniform_value(per_step * tiled) is None
        assert _upstream.uniform_value(tf.random.normal([3, 5])) is None
        assert _upstream.uniform_value(tf.constant(np.arange(15.0).reshape(3, 5))) is None
        return s

    f(tf.constant(1.0), tf.zeros([3, 5]))
    assert _upstream.uniform_value(tf.ones([3, 5])) is None  # eager: nothing to inspect


# --------------------------------------------- the training-step gradient


def _step(impl: str, total_of):
    """A tf.function computing the gradients of total_of(x, y) (a scalar)."""

    @tf.function
    def f(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            total = total_of(x, y, impl)
        return tape.gradient(total, [x, y])

    return f


def _reduction(kind: str, mask, method: str, axis: int):
    def total_of(x, y, impl):
        if kind == "keras CorrelationLoss":  # Keras' own sum_over_batch_size reduction;
            # the class follows $CORROPS_IMPL (set by the test while tracing)
            return corrops.CorrelationLoss(method=method, axis=axis)(x, y)
        loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl=impl)
        return tf.reduce_mean(loss) if kind == "reduce_mean" else 0.5 * tf.reduce_sum(loss)

    return total_of


@pytest.mark.parametrize(
    ("reduction", "masked"),
    [
        ("reduce_mean", False),
        ("reduce_mean", True),
        ("0.5 * reduce_sum", False),
        ("0.5 * reduce_sum", True),
        ("keras CorrelationLoss", False),  # the class takes masks from Keras: test_losses.py
    ],
)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((6, 50), 1), ((4, 33, 3), 1), ((3, 5, 40, 2), 2), ((5, 3, 2), 0), ((2, 1, 4), 1)],
)
def test_compact_path_equals_fallback(rng, monkeypatch, reduction, method, masked, shape, axis):
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    x = tf.constant(rng.normal(size=shape))
    y = tf.constant(0.4 * x.numpy() + rng.normal(size=shape))
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else None
    total_of = _reduction(reduction, mask, method, axis)
    fused = _step("fused", total_of)
    monkeypatch.setenv("CORROPS_IMPL", "fused")
    grads = fused(x, y)
    monkeypatch.setenv("CORROPS_IMPL", "tf")
    want = _step("tf", total_of)(x, y)
    shapes = _grad_op_inputs(fused, x, y)
    assert len(shapes) == 1
    assert shapes[0][1] == 1, f"general path taken: grad input {shapes[0]}"
    # Keras casts the inputs to its float32 policy: both sides run in float32.
    f32 = reduction == "keras CorrelationLoss"
    for a, b in zip(grads, want, strict=True):
        scale = np.abs(b.numpy()).max()
        rtol, atol = (1e-3, 1e-5 * scale) if f32 else (1e-10, 1e-13)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((6, 50), 1), ((4, 33, 3), 1), ((3, 5, 40, 2), 2), ((5, 3, 2), 0)],
)
def test_fallback_compact_path_equals_its_general_path(
    rng, monkeypatch, method, masked, shape, axis
):
    # The fallback's custom gradient recognises the gradient of a mean too
    # (S1 = S1' = 0, S2 from one row sum); the same upstream values passed as
    # a function input are not recognisable and take its general path.
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    x = tf.constant(rng.normal(size=shape))
    y = tf.constant(0.4 * x.numpy() + rng.normal(size=shape))
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else None
    paths = []
    real = _fallback.input_gradients

    def spy(*args, **kwargs):
        paths.append(kwargs.get("time_constant", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(_fallback, "input_gradients", spy)

    @tf.function
    def grads(x, y, w):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl="tf")
            total = tf.reduce_mean(loss) if w is None else tf.reduce_sum(loss * w)
        return tape.gradient(total, [x, y])

    compact = grads(x, y, None)
    general = grads(x, y, tf.fill(loss_shape, tf.constant(1.0 / np.prod(loss_shape), tf.float64)))
    assert paths == [True, False]
    for a, b in zip(compact, general, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16], ids=lambda d: d.name)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_compact_path_low_precision_vs_float64_reference(rng, dtype, masked):
    shape = (8, 300, 1)
    x = rng.normal(size=shape) + 1.0
    y = 0.5 * x + rng.normal(size=shape)
    mask = rng.random(shape[:-1]) > 0.3 if masked else None

    @tf.function
    def f(x, y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            loss = corrops.corr_loss(x, y, mask=mask, impl="fused")
            total = tf.reduce_mean(tf.cast(loss, tf.float32))  # as the benchmark step
        return tape.gradient(total, y)

    xt, yt = tf.constant(x, dtype), tf.constant(y, dtype)
    got = f(xt, yt)
    assert _grad_op_inputs(f, xt, yt)[0][1] == 1
    g = np.full(shape[:-1], 1.0 / np.prod(shape[:-1]))
    _, want = ref.corr_loss_grad(as_f64(xt), as_f64(yt), g, mask)
    scale = np.abs(want).max()
    tol = tolerance(dtype)
    np.testing.assert_allclose(as_f64(got), want, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("weighted", [False, True], ids=["mean", "per-sequence-weights"])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_compact_path_compute_gradient_float64(rng, method, masked, weighted):
    """tf.test.compute_gradient's numerical derivative of the (weighted) mean
    loss against the gradient the compact path computes inside a tf.function."""
    shape = (3, 9, 2)
    x0 = rng.normal(size=shape)
    y0 = 0.5 * x0 + rng.normal(size=shape)
    mask = rng.random(shape[:-1]) > 0.3 if masked else None
    w = tf.constant([[0.5], [2.0], [1.25]], tf.float64)  # one weight per sequence

    def mean_loss(x, y):
        loss = corrops.corr_loss(x, y, mask=mask, method=method, impl="fused")
        return tf.reduce_mean(loss * w if weighted else loss)

    @tf.function
    def compact(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            total = mean_loss(x, y)
        return tape.gradient(total, [x, y])

    x, y = tf.constant(x0), tf.constant(y0)
    assert _grad_op_inputs(compact, x, y)[0][1] == 1
    gx, gy = compact(x, y)
    _, num_y = tf.test.compute_gradient(lambda v: mean_loss(x, v), [y], delta=1e-6)
    _, num_x = tf.test.compute_gradient(lambda v: mean_loss(v, y), [x], delta=1e-6)
    np.testing.assert_allclose(gy.numpy().ravel(), num_y[0].ravel(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gx.numpy().ravel(), num_x[0].ravel(), rtol=1e-6, atol=1e-9)


def test_per_step_upstream_keeps_general_path(rng):
    x = tf.constant(rng.normal(size=(4, 20)))
    y = tf.constant(rng.normal(size=(4, 20)))
    w = tf.constant(rng.normal(size=(4, 20)))

    @tf.function
    def f(x, y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            total = tf.reduce_sum(corrops.corr_loss(x, y, impl="fused") * w)
        return tape.gradient(total, y)

    assert _grad_op_inputs(f, x, y)[0] == tf.TensorShape([4, 20, 1])
    _, want = ref.corr_loss_grad(x.numpy(), y.numpy(), w.numpy(), None)
    np.testing.assert_allclose(f(x, y).numpy(), want, rtol=1e-9, atol=1e-12)


# ------------------------------------- per-sequence values (sample weights)


def _along_time_cases():
    b, t = 3, 5

    def tiled(s):
        return tf.tile(tf.reshape(s, [1, 1]), [b, t])

    return {
        "keras sample weight (mul tile, w[:, None])": lambda s, w: tiled(s) * w[:, None],
        "divide by weights": lambda s, w: tiled(s) / w[:, None],
        "tile of (B, 1) along time": lambda s, w: tf.tile(w[:, None] * s, [1, t]),
        "tile along batch of a time-constant": lambda s, w: tf.tile(
            tf.broadcast_to(w[:, None], [b, t]) * s, [2, 1]
        ),
        "broadcast_to, cast": lambda s, w: tf.cast(
            tf.broadcast_to(w[:, None], [b, t]) * s, tf.float64
        ),
        "reshape to the canonical (B, T, 1)": lambda s, w: tf.reshape(
            tiled(s) * w[:, None], [b, t, 1]
        ),
        "reshape that splits the batch": lambda s, w: tf.reshape(
            tf.tile(tf.reshape(w, [1, b, 1]), [2, 1, t]) * s, [2 * b, t]
        ),
        "add_n, neg, sub": lambda s, w: tf.add_n([tiled(s), -(w[:, None] - tiled(s))]),
        "tile along time of a time-constant": lambda s, w: tf.tile(
            tf.broadcast_to(w[:, None] * s, [b, 2]), [1, 3]
        ),
    }


@pytest.mark.parametrize("case", list(_along_time_cases()))
def test_along_time_recognises(case):
    make = _along_time_cases()[case]

    @tf.function
    def f(s, w):
        t = make(s, w)
        v = _upstream.along_time(t, 1)
        assert v is not None, "not recognised"
        assert v.shape[1] == 1 and v.dtype == t.dtype
        return t, v

    t, v = f(tf.constant(0.75), tf.constant([1.0, 2.5, 4.0]))
    t, v = as_f64(t), as_f64(v)
    assert np.ptp(v) > 0  # per-sequence values, not one value
    np.testing.assert_array_equal(t, np.broadcast_to(v, t.shape))


def test_along_time_refuses():
    w = tf.constant([1.0, 2.0, 3.0])

    @tf.function
    def f(s, per_step):
        tiled = tf.tile(tf.reshape(s, [1, 1]), [3, 5])
        along = tf.tile(tf.reshape(tf.range(5.0), [1, 5]), [3, 1])  # varies along time
        for t in [
            per_step,  # a function input
            tiled * per_step,
            tiled * along,
            tf.tile(tiled * along, [1, 2]),  # tiled along time, but not constant within
            tf.tile(tiled * w[:, None], [1, 2]) * tf.concat([along, along], 1),
            tf.reshape(tf.tile(w[:, None], [1, 5]), [5, 3]),  # time axis not preserved
            tf.random.normal([3, 5]) * w[:, None],
        ]:
            assert _upstream.along_time(t, 1) is None, t.op.type

        # (2, 3) constant along its axis 1, reshaped to (3, 2): axis 0 has length 3
        # too, but not the same elements, and varies.
        moved = tf.reshape(tf.tile(w[:2, None], [1, 3]), [3, 2])
        assert _upstream.along_time(moved, 0) is None
        return s

    f(tf.constant(1.0), tf.zeros([3, 5]))
    assert _upstream.along_time(tf.ones([3, 5]) * w[:, None], 1) is None  # eager


def _weights(rng, loss_shape, axis):
    """Per-sequence weights: the loss shape with length 1 on the time axis."""
    return tf.constant(rng.random([1 if i == axis else d for i, d in enumerate(loss_shape)]) + 0.5)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize(
    ("shape", "axis"),
    [((6, 50), 1), ((4, 33, 3), 1), ((3, 5, 40, 2), 2), ((5, 3, 2), 0)],
)
def test_weighted_mean_takes_compact_path(rng, monkeypatch, method, masked, shape, axis):
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    x = tf.constant(rng.normal(size=shape))
    y = tf.constant(0.4 * x.numpy() + rng.normal(size=shape))
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else None
    w = _weights(rng, loss_shape, axis)

    def total_of(x, y, impl):
        loss = corrops.corr_loss(x, y, mask=mask, method=method, axis=axis, impl=impl)
        return tf.reduce_mean(loss * w)

    fused = _step("fused", total_of)
    grads = fused(x, y)
    shapes = _grad_op_inputs(fused, x, y)
    assert len(shapes) == 1 and shapes[0][1] == 1, f"general path taken: {shapes}"
    want = _step("tf", total_of)(x, y)
    for a, b in zip(grads, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-13)


def test_keras_sample_weight_takes_compact_path(rng, monkeypatch):
    """Keras' own weighting of a (B,) sample_weight, as in fit(sample_weight=)."""
    x = tf.constant(rng.normal(size=(6, 40, 1)), tf.float32)
    y = tf.constant(rng.normal(size=(6, 40, 1)), tf.float32)
    sw = tf.constant(rng.random(6) + 0.5, tf.float32)

    def total_of(x, y, impl):
        return corrops.CorrelationLoss()(x, y, sample_weight=sw)

    monkeypatch.setenv("CORROPS_IMPL", "fused")
    fused = _step("fused", total_of)
    grads = fused(x, y)
    assert _grad_op_inputs(fused, x, y)[0][1] == 1
    monkeypatch.setenv("CORROPS_IMPL", "tf")
    want = _step("tf", total_of)(x, y)
    for a, b in zip(grads, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-6)


# ------------------------------------------------------------ op contract


def test_op_time_constant_grad_equals_broadcast(rng):
    ops = corrops.load_ops()
    shape = (3, 11, 2, 4)  # outer, time, groups, channels
    x = tf.constant(rng.normal(size=shape))
    y = tf.constant(rng.normal(size=shape))
    mask = tf.constant(rng.random(shape[:3]) > 0.3)
    gc = tf.constant(rng.normal(size=(3, 1, 2)))
    eps = tf.constant(1e-7, tf.float64)
    _, stats = ops.corrops_corr_loss(y_true=x, y_pred=y, mask=mask, eps=eps, has_mask=True)
    common = dict(
        y_true=x,
        y_pred=y,
        mask=mask,
        stats=stats,
        eps=eps,
        has_mask=True,
        loss=tf.zeros([0], x.dtype),
    )
    compact = ops.corrops_corr_loss_grad(grad=gc, **common)
    full = ops.corrops_corr_loss_grad(grad=tf.broadcast_to(gc, (3, 11, 2)), **common)
    for a, b in zip(compact, full, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="grad must have"):
        ops.corrops_corr_loss_grad(grad=tf.zeros((3, 2, 2), tf.float64), **common)


@pytest.mark.parametrize("shape", [(3, 11), (3, 11, 2), (3, 11, 2, 4)], ids=str)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_op_in_every_layout_takes_compact_path_in_a_graph(rng, shape, masked):
    # The op takes (outer, time), (outer, time, channels) and the canonical
    # rank 4 as they are; the mean's gradient reaches each in compact form
    # (the loss shape with time 1) and gives the canonical layout's gradients.
    ops = corrops.load_ops()
    loss_shape = shape[:3] if len(shape) == 4 else shape[:2]
    x = tf.constant(rng.normal(size=shape))
    y = tf.constant(rng.normal(size=shape))
    mask = tf.constant(rng.random(loss_shape) > 0.3) if masked else tf.zeros([0], tf.bool)
    canonical = (*shape[:2], 1, 1) if len(shape) == 2 else (*shape[:2], 1, shape[2])
    canonical = shape if len(shape) == 4 else canonical

    def grads(a, b, m):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss, _ = ops.corrops_corr_loss(
                y_true=a, y_pred=b, mask=m, eps=tf.constant(1e-7, tf.float64), has_mask=masked
            )
            total = tf.reduce_mean(loss)
        return tape.gradient(total, [a, b])

    fn = tf.function(grads)
    compact_shape = [shape[0], 1, *loss_shape[2:]]
    assert [s.as_list() for s in _grad_op_inputs(fn, x, y, mask)] == [compact_shape]
    got = fn(x, y, mask)
    m4 = tf.reshape(mask, canonical[:3]) if masked else mask
    want = tf.function(grads)(tf.reshape(x, canonical), tf.reshape(y, canonical), m4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.numpy(), tf.reshape(b, shape).numpy())

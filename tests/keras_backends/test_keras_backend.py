"""CorrelationLoss, the metrics and the keras.ops implementation on the active
Keras backend.

Backend-neutral: pytest runs this module in its own process once per backend
(tests/test_keras_backends.py sets KERAS_BACKEND to jax and torch), and in the
main process on TensorFlow. Every implementation the Keras objects can use
on the backend is checked against the float64 reference: the keras.ops
implementation ("portable") everywhere, the loss class's own choice (the
fused engine on TF and on JAX with the binding), gradients numerically in
float64 with the backend's own checker.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from keras.src.backend import set_keras_mask

import corrops
from corrops.keras import _portable
from tests import reference as ref
from tests.helpers import sequence_data
from tests.test_metrics import _expected

BACKEND = keras.backend.backend()
SHAPES = [
    ((1, 1), 1),
    ((3, 3), 1),
    ((4, 127), 1),
    ((0, 5), 1),
    ((5, 12, 3), 1),
    ((7, 5), 0),
    ((3, 4, 9, 2), 2),
    ((4, 0, 2), 1),
    ((3, 5, 0), 1),
]
TOL = {"float64": 1e-10, "float32": 2e-4, "float16": 2e-2}


def _class_loss(y_true, y_pred, axis, mask, method, eps=None):
    loss = corrops.CorrelationLoss(method=method, eps=eps, axis=axis, reduction=None)
    return loss.call(y_true, y_pred) if mask is None else _masked_call(loss, y_true, y_pred, mask)


def _masked_call(loss, y_true, y_pred, mask):
    from corrops.keras import losses

    token = losses._KERAS_MASK.set(ops.convert_to_tensor(mask))
    try:
        return loss.call(y_true, y_pred)
    finally:
        losses._KERAS_MASK.reset(token)


def _portable_loss(y_true, y_pred, axis, mask, method, eps=None):
    return _portable.corr_loss(y_true, y_pred, axis, mask, method, eps)


IMPLS = {"portable": _portable_loss, "loss class": _class_loss}


def _np(t) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(t), np.float64)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_matches_reference(rng, impl, shape, axis, masked, method, dtype):
    x, y, mask = sequence_data(rng, shape, axis, masked)
    x, y = x.astype(dtype), y.astype(dtype)
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    loss = IMPLS[impl](ops.convert_to_tensor(x), ops.convert_to_tensor(y), axis, mask, method)
    assert keras.backend.standardize_dtype(loss.dtype) == dtype
    want = ref.corr_loss(xf, yf, mask, axis=axis, method=method)
    np.testing.assert_allclose(_np(loss), want, rtol=TOL[dtype], atol=TOL[dtype])
    if impl == "portable":
        coef = _portable.corrcoef(x, y, axis, mask, method, None)
        want = ref.corrcoef(xf, yf, mask, axis=axis, method=method)
        np.testing.assert_allclose(_np(coef), want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_loss_class_matches_the_fused_engine(rng, method, masked):
    # The loss class on this backend against the TF fused op's engine on the
    # same data (corrops.numpy runs it without TensorFlow): the same bits
    # where the class runs the fused engine (TF, JAX), float32 rounding
    # apart with the keras.ops implementation.
    import corrops.numpy as cnp

    x, y, mask = sequence_data(rng, (6, 40, 2), 1, masked)
    x, y = x.astype(np.float32), y.astype(np.float32)
    got = _np(_class_loss(x, y, 1, mask, method))
    want = cnp.corr_loss(x, y, mask=mask, method=method, eps=float(keras.config.epsilon()))
    if corrops.last_choice()["impl"] == "fused":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ gradients
def _value_and_grads(fn, x, y, g):
    """(loss, dL/dy_true, dL/dy_pred) of sum(g * fn(x, y)) by the backend's autodiff."""
    if BACKEND == "jax":
        import jax

        def total(a, b):
            return (fn(a, b) * g).sum()

        gx, gy = jax.grad(total, argnums=(0, 1))(x, y)
        return fn(x, y), gx, gy
    if BACKEND == "torch":
        import torch

        a = torch.tensor(x, requires_grad=True)
        b = torch.tensor(y, requires_grad=True)
        loss = fn(a, b)
        (loss * torch.tensor(g)).sum().backward()
        return loss.detach(), a.grad, b.grad
    import tensorflow as tf

    a, b = tf.constant(x), tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        loss = fn(a, b)
        total = tf.reduce_sum(loss * g)
    gx, gy = tape.gradient(total, [a, b])
    return loss, gx, gy


def _check_numeric_gradient(fn, x, y):
    """The backend's own float64 check of autodiff against finite differences."""
    if BACKEND == "jax":
        import jax
        from jax.test_util import check_grads

        with jax.enable_x64(True):
            check_grads(fn, (x, y), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
    elif BACKEND == "torch":
        import torch

        a = torch.tensor(x, requires_grad=True)
        b = torch.tensor(y, requires_grad=True)
        assert torch.autograd.gradcheck(fn, (a, b), atol=1e-6, rtol=1e-5)
    else:
        import tensorflow as tf

        theoretical, numerical = tf.test.compute_gradient(fn, [tf.constant(x), tf.constant(y)])
        for t, n in zip(theoretical, numerical, strict=True):
            np.testing.assert_allclose(t, n, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), [((3, 9), 1), ((2, 6, 3), 1), ((5, 4, 2), 0)])
def test_gradients_match_closed_form(rng, impl, shape, axis, masked, method):
    x, y, mask = sequence_data(rng, shape, axis, masked)
    x, y = x.astype(np.float32), y.astype(np.float32)
    g = rng.normal(size=shape[:-1] if len(shape) >= 3 else shape).astype(np.float32)
    _, gx, gy = _value_and_grads(lambda a, b: IMPLS[impl](a, b, axis, mask, method), x, y, g)
    want_x, want_y = ref.corr_loss_grad(x, y, g, mask, axis=axis, method=method)
    np.testing.assert_allclose(_np(gx), want_x, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_np(gy), want_y, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_float64_numeric_gradient(rng, impl, method, masked):
    x, y, mask = sequence_data(rng, (3, 7, 2), 1, masked)
    _check_numeric_gradient(lambda a, b: IMPLS[impl](a, b, 1, mask, method), x, y)


# ------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_constant_prediction_has_finite_gradient(rng, impl, method):
    x = rng.normal(size=(2, 9)).astype(np.float32)
    y = np.full((2, 9), 0.25, np.float32)
    loss, gx, gy = _value_and_grads(
        lambda a, b: IMPLS[impl](a, b, 1, None, method), x, y, np.ones((2, 9), np.float32)
    )
    np.testing.assert_allclose(_np(loss), ref.corr_loss(x, y, method=method), atol=1e-6)
    assert np.isfinite(_np(gx)).all() and np.isfinite(_np(gy)).all()
    want_x, want_y = ref.corr_loss_grad(x, y, np.ones((2, 9)), method=method)
    np.testing.assert_allclose(_np(gx), want_x, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_np(gy), want_y, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_nan_stays_in_its_row_and_masked_nan_is_ignored(rng, impl):
    x, y = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    y[0, 2] = np.nan  # row 0: NaN at a valid step
    y[1, 5] = np.nan  # row 1: NaN at a masked step
    mask = np.ones((3, 8), bool)
    mask[1, 5] = False
    loss, _gx, gy = _value_and_grads(
        lambda a, b: IMPLS[impl](a, b, 1, mask, "pearson"), x, y, np.ones((3, 8), np.float32)
    )
    loss, gy = _np(loss), _np(gy)
    assert np.isnan(loss[0]).all()
    assert np.isfinite(loss[1:]).all() and np.isfinite(gy[1:]).all()
    assert loss[1, 5] == 0.0 and gy[1, 5] == 0.0
    np.testing.assert_allclose(
        loss[1:], ref.corr_loss(x[1:], np.nan_to_num(y[1:]), mask[1:]), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("scale", [1e-30, 1e30])
@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_extreme_scales(rng, impl, scale, method):
    x, y = rng.normal(size=(2, 50)), rng.normal(size=(2, 50))
    eps = 1e-7 * scale * scale  # the same loss as at scale 1 with eps 1e-7
    loss = IMPLS[impl](
        (x * scale).astype(np.float32), (y * scale).astype(np.float32), 1, None, method, eps
    )
    want = ref.corr_loss(x, y, method=method)
    np.testing.assert_allclose(_np(loss), want, rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------ Keras
def _masked_model() -> keras.Model:
    inputs = keras.Input((None, 1))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    dense = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros")
    return keras.Model(inputs, dense(masked))


@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_keras_mask_and_sample_weight(rng, method):
    # Zero-padded sequences with Masking: the loss is that of each sequence's
    # own steps, weighted by its number of valid steps (the class's contract).
    lengths = [12, 7, 3, 12]
    y_pred = np.zeros((4, 12, 1), np.float32)
    y_true = np.zeros((4, 12, 1), np.float32)
    weights = np.array([1.0, 2.0, 0.5, 0.0], np.float32)
    total = steps = 0.0
    for i, n in enumerate(lengths):
        y_pred[i, :n, 0] = rng.normal(size=n) + 3.0  # never 0: Masking keeps them
        y_true[i, :n, 0] = rng.normal(size=n)
        per_step = ref.corr_loss(y_true[i : i + 1, :n, 0], y_pred[i : i + 1, :n, 0], method=method)
        total += weights[i] * per_step.sum()
        steps += n
    model = _masked_model()
    model.compile(loss=corrops.CorrelationLoss(method=method))
    value = model.evaluate(y_pred, y_true, sample_weight=weights, batch_size=4, verbose=0)
    # Keras' "sum_over_batch_size" with a mask: the sum over valid steps
    # divided by their number.
    np.testing.assert_allclose(value, total / steps, rtol=1e-5)


@pytest.mark.parametrize("mode", ["per_sequence", "pooled"])
@pytest.mark.parametrize(
    "metric", [corrops.metrics.PearsonCorrelation, corrops.metrics.ConcordanceCorrelation]
)
def test_metrics_over_several_batches(rng, mode, metric):
    x = rng.normal(size=(12, 10, 2))
    y = 0.5 * x + rng.normal(size=(12, 10, 2))
    mask = rng.random((12, 10)) > 0.2
    sw = rng.random(12) + 0.5
    m = metric(mode=mode, num_channels=2)
    for lo in range(0, 12, 4):
        pred = ops.convert_to_tensor(y[lo : lo + 4].astype(np.float32))
        set_keras_mask(pred, ops.convert_to_tensor(mask[lo : lo + 4]))
        m.update_state(x[lo : lo + 4].astype(np.float32), pred, sample_weight=sw[lo : lo + 4])
    want = _expected(x, y, mask, sw, mode, metric.method)
    np.testing.assert_allclose(_np(m.result()), want, rtol=1e-5)
    m.reset_state()
    assert _np(m.result()) == 0.0


def _fit_data(rng):
    x = rng.normal(size=(32, 16, 3)).astype(np.float32)
    y = (np.cumsum(x[..., :1], axis=1) * 0.3).astype(np.float32)
    return x, y


def _small_model() -> keras.Model:
    inputs = keras.Input((16, 3))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_fit_with_jit_compile(rng, method):
    keras.utils.set_random_seed(3)
    x, y = _fit_data(rng)
    model = _small_model()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=corrops.CorrelationLoss(method=method),
        metrics=[corrops.metrics.PearsonCorrelation()],
        jit_compile=BACKEND != "torch",  # torch.compile: not part of corrops' contract
    )
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0] - 0.05
    assert history["pearson_correlation"][-1] > history["pearson_correlation"][0]
    choice = corrops.last_choice()
    if BACKEND == "jax" and corrops.build_info().get("jax"):
        assert choice["impl"] == "fused" and "JAX FFI" in choice["reason"]
    elif BACKEND == "torch" and corrops.build_info().get("torch"):
        assert choice["impl"] == "fused" and "PyTorch op" in choice["reason"]
    elif BACKEND == "tensorflow":
        assert choice["impl"] == "fused"
    else:
        assert choice["impl"] == "keras.ops"


def test_mixed_precision_fit(rng):
    keras.utils.set_random_seed(4)
    x, y = _fit_data(rng)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = _small_model()
        model.compile(optimizer="adam", loss=corrops.CorrelationLoss())
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert keras.backend.standardize_dtype(model.layers[-1].compute_dtype) == "float16"
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("impl", list(IMPLS))
def test_bad_inputs_name_the_argument(impl):
    fn = IMPLS[impl]
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(ValueError, match="y_true and y_pred must have the same shape"):
        fn(x, np.zeros((2, 6), np.float32), 1, None, "pearson")
    with pytest.raises(ValueError, match="rank >= 2"):
        fn(np.zeros(5, np.float32), np.zeros(5, np.float32), 1, None, "pearson")
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        fn(x, x, 2, None, "pearson")
    with pytest.raises(ValueError, match="mask must have the loss shape"):
        fn(x, x, 1, np.ones((2, 4), bool), "pearson")
    with pytest.raises(ValueError, match="method"):
        fn(x, x, 1, None, "spearman")
    with pytest.raises((ValueError, TypeError), match="eps"):
        fn(x, x, 1, None, "pearson", -1.0)
    if impl == "portable":  # (Keras casts the class's inputs to its dtype first)
        with pytest.raises(TypeError, match="y_pred must be a floating-point tensor"):
            fn(x, np.zeros((2, 5), np.int32), 1, None, "pearson")
        with pytest.raises(TypeError, match="mask must be bool or 0/1 numbers"):
            fn(x, x, 1, np.array([["a"] * 5] * 2), "pearson")


# Backends with a fused op and the keras.ops implementation: the function
# that says why the fused op cannot run (None when it can).
FUSED_REASON = {"jax": "_jax_fused_reason", "torch": "_torch_fused_reason"}


if BACKEND in FUSED_REASON:  # the backends with a choice between two implementations

    def test_without_the_binding_uses_keras_ops(rng, monkeypatch):
        # A build without this backend's binding (e.g. an isolated pip install):
        # the loss class runs the keras.ops implementation, and says so.
        from corrops.keras import _backends

        x, y, mask = sequence_data(rng, (4, 30, 2), 1, True)
        x, y = x.astype(np.float32), y.astype(np.float32)
        fused = _np(_class_loss(x, y, 1, mask, "ccc"))
        assert corrops.last_choice()["impl"] == "fused"
        monkeypatch.setattr(_backends, FUSED_REASON[BACKEND], lambda: "the binding is not built")
        portable = _np(_class_loss(x, y, 1, mask, "ccc"))
        choice = corrops.last_choice()
        assert choice["impl"] == "keras.ops" and "not built" in choice["reason"]
        np.testing.assert_allclose(portable, fused, rtol=1e-5, atol=1e-5)

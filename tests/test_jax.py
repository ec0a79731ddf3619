"""corrops.jax: the fused engine through jax.ffi. Bitwise parity with the TF
fused op (loss and both gradients), agreement with the float64 reference over
the API's shape classes, float64 gradient checks, jit / grad / vmap, and bad
inputs with the TF API's errors."""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests import reference as ref
from tests.test_api import SHAPES, _data

jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'corrops[jax]')")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import corrops.jax as cj  # noqa: E402

TOL = {np.float64: 1e-10, np.float32: 2e-4, np.float16: 2e-2}


@pytest.fixture(scope="module", autouse=True)
def _x64():
    # float64 inputs stay float64 (JAX's default would make them float32).
    with jax.enable_x64(True):
        yield


def test_build_has_the_jax_binding():
    # jax is importable here, so the build must have made the binding.
    info = corrops.build_info()
    assert info["jax"] is True and info["jax_version"] == jax.__version__
    assert cj.available()


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16], ids=lambda d: d.__name__)
def test_matches_reference(rng, shape, axis, masked, method, dtype):
    x, y, mask = _data(rng, shape, axis, tf.float64, masked)
    x, y = np.asarray(x).astype(dtype), np.asarray(y).astype(dtype)
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    tol = TOL[dtype]
    loss = jax.jit(lambda a, b: cj.corr_loss(a, b, axis=axis, mask=mask, method=method))(x, y)
    assert loss.dtype == dtype
    want = ref.corr_loss(xf, yf, mask, axis=axis, method=method)
    np.testing.assert_allclose(np.asarray(loss, np.float64), want, rtol=tol, atol=tol)
    coef = cj.corrcoef(x, y, axis=axis, mask=mask, method=method)
    want = ref.corrcoef(xf, yf, mask, axis=axis, method=method)
    np.testing.assert_allclose(np.asarray(coef, np.float64), want, rtol=tol, atol=tol)
    g = rng.normal(size=loss.shape).astype(dtype)

    def total(a, b):
        return jnp.sum(cj.corr_loss(a, b, axis=axis, mask=mask, method=method) * g)

    gx, gy = jax.grad(total, argnums=(0, 1))(x, y)
    want_x, want_y = ref.corr_loss_grad(
        xf, yf, g.astype(np.float64), mask, axis=axis, method=method
    )
    scale = max(1.0, np.abs(want_x).max(initial=0), np.abs(want_y).max(initial=0))
    np.testing.assert_allclose(np.asarray(gx, np.float64), want_x, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(np.asarray(gy, np.float64), want_y, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: d.__name__)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), [((6, 50, 3), 1), ((64, 300), 1), ((9, 4, 5), 0)])
def test_bitwise_equal_to_tf_fused_op(rng, dtype, method, masked, shape, axis):
    x = rng.normal(size=shape).astype(dtype)
    y = (0.5 * x + rng.normal(size=shape)).astype(dtype)
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = rng.random(loss_shape) > 0.3 if masked else None
    w = rng.normal(size=loss_shape).astype(dtype)
    kw = {"axis": axis, "mask": mask, "method": method}

    @tf.function
    def tf_step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            loss = corrops.corr_loss(a, b, impl="fused", **kw)
            total = tf.reduce_sum(loss * w)
        return loss, tape.gradient(total, [a, b])

    @jax.jit
    def jax_step(a, b):
        loss, pull = jax.vjp(lambda a, b: cj.corr_loss(a, b, **kw), a, b)
        return loss, pull(jnp.asarray(w))

    tf_loss, tf_grads = tf_step(tf.constant(x), tf.constant(y))
    jax_loss, jax_grads = jax_step(x, y)
    np.testing.assert_array_equal(np.asarray(jax_loss), tf_loss.numpy())
    for a, b in zip(jax_grads, tf_grads, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b.numpy())


def _weighted_problem(rng, method, masked):
    """float64 inputs (3, 12, 2), a mask or None, and a scalar of the loss:
    its sum weighted per step (every step's loss matters)."""
    x = rng.normal(size=(3, 12, 2))
    y = 0.4 * x + rng.normal(size=x.shape)
    mask = rng.random((3, 12)) > 0.3 if masked else None
    w = rng.normal(size=(3, 12))

    def total(a, b):
        return jnp.sum(cj.corr_loss(a, b, mask=mask, method=method) * w)

    return x, y, mask, total


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_check_grads_float64(rng, method, masked):
    x, y, _, total = _weighted_problem(rng, method, masked)

    check_grads(total, (x, y), order=1, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6)
    check_grads(jax.jit(total), (x, y), order=1, modes=["fwd", "rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_second_derivatives_float64(rng, method, masked):
    """Gradients of gradients and Hessian-vector products (forward over
    reverse) against numerical derivatives of the fused gradient: the fused
    calls' own derivatives are the jax.numpy formula's."""
    x, y, _, total = _weighted_problem(rng, method, masked)

    check_grads(total, (x, y), order=2, modes=["rev"], atol=1e-5, rtol=1e-5)

    def grad_pred(b):
        return jax.grad(total, argnums=1)(x, b)

    check_grads(grad_pred, (y,), order=1, modes=["fwd", "rev"], atol=1e-5, rtol=1e-5)
    v = rng.normal(size=y.shape)
    hvp = jax.jit(lambda b, t: jax.jvp(grad_pred, (b,), (t,))[1])(y, v)
    h = 1e-6
    numeric = (grad_pred(y + h * v) - grad_pred(y - h * v)) / (2 * h)
    np.testing.assert_allclose(np.asarray(hvp), np.asarray(numeric), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_forward_mode_of_the_fused_loss(rng, method, masked):
    """jax.jvp of corr_loss itself, to second order and with reverse mode on
    top, against numerical derivatives; under jit and vmap; and the same
    tangents as the formula path (the loss's tangent is the formula's JVP,
    transposed to the fused backward for reverse mode)."""
    x, y, mask, total = _weighted_problem(rng, method, masked)

    check_grads(total, (x, y), order=2, modes=["fwd", "rev"], atol=1e-5, rtol=1e-5)
    tx, ty = rng.normal(size=x.shape), rng.normal(size=y.shape)

    def jvp(impl, a, b, ta, tb, m=mask):
        return jax.jvp(
            lambda c, d: cj.corr_loss(c, d, mask=m, method=method, impl=impl), (a, b), (ta, tb)
        )

    loss, tangent = jvp("fused", x, y, tx, ty)
    np.testing.assert_array_equal(
        np.asarray(loss), np.asarray(cj.corr_loss(x, y, mask=mask, method=method))
    )
    _, formula_tangent = jvp("formula", x, y, tx, ty)
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(formula_tangent), atol=1e-12)
    _, jitted = jax.jit(functools.partial(jvp, "fused"))(x, y, tx, ty)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(tangent), atol=1e-12)
    # vmap over rows, each a batch of one (unmasked, so rows are independent).
    _, unmasked = jvp("fused", x, y, tx, ty, None)
    _, mapped = jax.vmap(
        lambda a, b, ta, tb: jvp("fused", a[None], b[None], ta[None], tb[None], None)
    )(x, y, tx, ty)
    np.testing.assert_allclose(np.asarray(mapped)[:, 0], np.asarray(unmasked), atol=1e-12)


def test_one_sided_gradient_skips_the_other(rng):
    # A training step differentiates y_pred only: the backward call then
    # returns [0] for dL/dy_true, and dL/dy_pred is the two-sided one, bitwise.
    x = rng.normal(size=(5, 40, 2)).astype(np.float32)
    y = (0.5 * x + rng.normal(size=x.shape)).astype(np.float32)
    mask = rng.random((5, 40)) > 0.2

    def total(a, b):
        return jnp.mean(cj.corr_loss(a, b, mask=mask))

    pred_only = jax.jit(jax.grad(total, argnums=1))
    both = jax.grad(total, argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(np.asarray(pred_only(x, y)), np.asarray(both[1]))
    true_only = jax.grad(total, argnums=0)(x, y)
    np.testing.assert_array_equal(np.asarray(true_only), np.asarray(both[0]))
    hlo = pred_only.lower(x, y).as_text()
    call = next(line for line in hlo.splitlines() if "corrops_corr_loss_backward" in line)
    assert "tensor<0xf32>" in call.split("->")[-1], call


def test_vmap_folds_into_one_call_and_equals_a_loop(rng):
    xs = rng.normal(size=(4, 5, 30, 2)).astype(np.float32)
    ys = (0.3 * xs + rng.normal(size=xs.shape)).astype(np.float32)
    masks = rng.random((4, 5, 30)) > 0.2

    def one(a, b, m):
        return jnp.mean(cj.corr_loss(a, b, mask=m, method="ccc"))

    mapped = jax.jit(jax.vmap(jax.value_and_grad(one, argnums=(0, 1))))
    values, (gx, gy) = mapped(xs, ys, masks)
    for i in range(4):
        v, (gxi, gyi) = jax.value_and_grad(one, argnums=(0, 1))(xs[i], ys[i], masks[i])
        np.testing.assert_array_equal(np.asarray(values[i]), np.asarray(v))
        np.testing.assert_array_equal(np.asarray(gx[i]), np.asarray(gxi))
        np.testing.assert_array_equal(np.asarray(gy[i]), np.asarray(gyi))
    # One forward and one backward custom call for the whole mapped batch.
    hlo = mapped.lower(xs, ys, masks).as_text()
    assert hlo.count("corrops_corr_loss_forward") == 1
    assert hlo.count("corrops_corr_loss_backward") == 1
    # An unmapped argument (one mask for every member) is broadcast.
    shared = jax.vmap(lambda a, b: cj.corr_loss(a, b, mask=masks[0]))(xs, ys)
    np.testing.assert_array_equal(
        np.asarray(shared[2]), np.asarray(cj.corr_loss(xs[2], ys[2], mask=masks[0]))
    )


def test_nested_vmap_equals_a_loop(rng):
    xs = rng.normal(size=(3, 2, 4, 25, 2)).astype(np.float32)
    ys = (0.3 * xs + rng.normal(size=xs.shape)).astype(np.float32)

    def one(a, b):
        return cj.corr_loss(a, b, method="ccc")

    nested = jax.jit(jax.vmap(jax.vmap(jax.value_and_grad(lambda a, b: jnp.mean(one(a, b))))))
    losses = jax.vmap(jax.vmap(one))(xs, ys)
    values, grads = nested(xs, ys)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(
                np.asarray(losses[i, j]), np.asarray(one(xs[i, j], ys[i, j]))
            )
            v, g = jax.value_and_grad(lambda a, b: jnp.mean(one(a, b)))(xs[i, j], ys[i, j])
            np.testing.assert_array_equal(np.asarray(values[i, j]), np.asarray(v))
            np.testing.assert_array_equal(np.asarray(grads[i, j]), np.asarray(g))
    hlo = nested.lower(xs, ys).as_text()
    assert hlo.count("corrops_corr_loss_forward") == 1


@pytest.mark.parametrize("impl", cj.IMPLS)
def test_edge_cases(rng, impl):
    loss = functools.partial(cj.corr_loss, impl=impl)
    x = rng.normal(size=(3, 40)).astype(np.float32)
    const = np.ones_like(x)
    # A constant prediction: loss 1 (r = 0), a finite gradient.
    grad = jax.grad(lambda b: jnp.sum(loss(x, b)))(const)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_array_equal(np.asarray(loss(x, const)), 1.0)
    # NaN stays in its row; a fully masked row has loss 0 and gradient 0.
    bad = x.copy()
    bad[1, 5] = np.nan
    out = np.asarray(loss(bad, x))
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    mask = np.ones((3, 40), bool)
    mask[2] = False
    g = jax.grad(lambda b: jnp.sum(loss(x, b, mask=mask)))(x[::-1].copy())
    np.testing.assert_array_equal(np.asarray(loss(x, x, mask=mask))[2], 0.0)
    np.testing.assert_array_equal(np.asarray(g)[2], 0.0)
    # Empty batch, and values from 1e-30 to 1e30 (eps scaled alike: the same loss).
    assert loss(np.zeros((0, 7)), np.zeros((0, 7))).shape == (0, 7)
    y = (x + rng.normal(size=x.shape)).astype(np.float32)
    for scale in (1e-30, 1e30):
        scaled = loss(x * scale, y * scale, eps=1e-7 * scale**2)
        want = np.asarray(loss(x, y))
        np.testing.assert_allclose(np.asarray(scaled), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
def test_formula_matches_the_reference_and_has_forward_mode(rng, shape, axis, masked, method):
    """impl="formula": the jax.numpy path agrees with the float64 reference,
    and forward mode (jax.jvp of the loss) works and equals the fused
    gradient's Jacobian, row by row."""
    x, y, mask = _data(rng, shape, axis, tf.float64, masked)
    x, y = np.asarray(x), np.asarray(y)
    kw = dict(axis=axis, mask=mask, method=method)
    loss = cj.corr_loss(x, y, impl="formula", **kw)
    want = ref.corr_loss(x, y, mask, axis=axis, method=method)
    np.testing.assert_allclose(np.asarray(loss), want, atol=1e-10)
    coef = cj.corrcoef(x, y, impl="formula", **kw)
    want = ref.corrcoef(x, y, mask, axis=axis, method=method)
    np.testing.assert_allclose(np.asarray(coef), want, atol=1e-10)
    if loss.size == 0:
        return
    t = rng.normal(size=y.shape)
    g = rng.normal(size=loss.shape)
    _, tangent = jax.jvp(lambda b: cj.corr_loss(x, b, impl="formula", **kw), (y,), (t,))
    # <g, J t> by forward mode equals <J^T g, t> by the fused reverse mode.
    fused_vjp = jax.grad(lambda b: jnp.sum(cj.corr_loss(x, b, **kw) * g))(y)
    np.testing.assert_allclose(
        float(jnp.sum(tangent * g)), float(jnp.sum(fused_vjp * t)), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y_true": np.zeros((2, 5)), "y_pred": np.zeros((2, 6))}, ValueError, "same shape"),
        ({"y_true": np.zeros(5), "y_pred": np.zeros(5)}, ValueError, "rank >= 2"),
        ({"axis": 2}, ValueError, "channel axis"),
        ({"axis": 1.0}, TypeError, "axis must be an int"),
        ({"method": "spearman"}, ValueError, "method must be one of"),
        ({"impl": "tf"}, ValueError, "impl must be one of"),
        ({"eps": 0.0}, ValueError, "eps must be finite and > 0"),
        ({"mask": np.ones((2, 4), bool)}, ValueError, "mask must have the loss shape"),
        ({"mask": np.array([["a"] * 5] * 2)}, TypeError, "mask must be bool"),
        ({"y_pred": np.array([["a"] * 5] * 2)}, TypeError, "y_pred must be a float array"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_inputs_name_the_argument(kwargs, error, message):
    args = {"y_true": np.zeros((2, 5, 3)), "y_pred": np.ones((2, 5, 3)), **kwargs}
    with pytest.raises(error, match=message):
        cj.corr_loss(args.pop("y_true"), args.pop("y_pred"), **args)


def test_without_the_binding_the_error_says_how_to_get_it(monkeypatch):
    cj._register.cache_clear()
    monkeypatch.setattr(cj, "available", lambda: False)
    try:
        with pytest.raises(RuntimeError, match=r"--no-build-isolation 'corrops\[jax\]'"):
            cj.corr_loss(np.zeros((2, 5)), np.ones((2, 5)))
    finally:
        cj._register.cache_clear()


# ------------------------------------------------------------------ CUDA
def _jax_gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


def test_cuda_handlers_are_built_with_cuda():
    # Built with CUDA (nvcc found), the binding exports the "CUDA" handlers
    # too, and registering them on a CPU-only jax only queues them.
    cj._register()  # registers every platform's handlers (cached: at most once)
    library = ctypes.cdll.LoadLibrary(str(cj._library_path()))
    if corrops.build_info().get("cuda"):
        assert cj.platforms() == ["cpu", "CUDA"]
        assert library.CorropsCorrLossForwardCuda and library.CorropsCorrLossBackwardCuda
    else:
        assert cj.platforms() == ["cpu"]
        assert not hasattr(library, "CorropsCorrLossForwardCuda")


def test_lowers_for_cuda_to_the_same_custom_calls(rng):
    # Cross-platform lowering (no GPU needed): a CUDA executable would call
    # the same two targets, each registered for "CUDA" in a CUDA build.
    x = rng.normal(size=(4, 30)).astype(np.float32)
    y = rng.normal(size=(4, 30)).astype(np.float32)

    def step(a, b):
        return jax.value_and_grad(lambda b: jnp.mean(cj.corr_loss(a, b)))(b)

    text = jax.jit(step).trace(x, y).lower(lowering_platforms=("cuda",)).as_text()
    assert f"@{cj.FORWARD_TARGET}" in text and f"@{cj.BACKWARD_TARGET}" in text


@pytest.mark.skipif(not _jax_gpus(), reason="no GPU here: the JAX CUDA handlers are built only")
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: d.__name__)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_gpu_matches_cpu(rng, dtype, masked):
    x = rng.normal(size=(8, 200, 3)).astype(dtype)
    y = (0.5 * x + rng.normal(size=x.shape)).astype(dtype)
    mask = rng.random((8, 200)) > 0.3 if masked else None

    def step(a, b):
        return jax.value_and_grad(lambda b: jnp.mean(cj.corr_loss(a, b, mask=mask)))(b)

    results = {}
    for device in (jax.devices("cpu")[0], _jax_gpus()[0]):
        a, b = jax.device_put(x, device), jax.device_put(y, device)
        results[device.platform] = jax.jit(step)(a, b)
    tol = TOL[dtype]
    for c, g in zip(results["cpu"], results["gpu"], strict=True):
        np.testing.assert_allclose(
            np.asarray(g, np.float64), np.asarray(c, np.float64), rtol=tol, atol=tol
        )

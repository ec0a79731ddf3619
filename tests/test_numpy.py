"""corrops.numpy: parity with the reference and the TF op, array layouts,
dtypes, gradients, thread safety and determinism."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import corrops
import corrops.numpy as cnp
from tests import reference as ref
from tests.test_api import SHAPES, _data

NP_TOL = {np.float64: 1e-10, np.float32: 2e-4, np.float16: 2e-2}


@pytest.mark.parametrize("method", ["pearson", "ccc"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize(("shape", "axis"), SHAPES, ids=[f"{s}-ax{a}" for s, a in SHAPES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16], ids=lambda d: d.__name__)
def test_matches_reference(rng, shape, axis, masked, method, dtype):
    import tensorflow as tf

    x, y, mask = _data(rng, shape, axis, tf.float64, masked)
    x, y = np.asarray(x).astype(dtype), np.asarray(y).astype(dtype)
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    tol = NP_TOL[dtype]
    loss = cnp.corr_loss(x, y, axis=axis, mask=mask, method=method)
    assert loss.dtype == dtype
    np.testing.assert_allclose(
        loss, ref.corr_loss(xf, yf, mask, axis=axis, method=method), rtol=tol, atol=tol
    )
    coef = cnp.corrcoef(x, y, axis=axis, mask=mask, method=method)
    np.testing.assert_allclose(
        coef, ref.corrcoef(xf, yf, mask, axis=axis, method=method), rtol=tol, atol=tol
    )
    g = rng.normal(size=loss.shape)
    gx, gy = cnp.corr_loss_grad(x, y, g.astype(dtype), axis=axis, mask=mask, method=method)
    want_x, want_y = ref.corr_loss_grad(
        xf, yf, g.astype(dtype).astype(np.float64), mask, axis=axis, method=method
    )
    scale = max(1.0, np.abs(want_x).max(initial=0), np.abs(want_y).max(initial=0))
    np.testing.assert_allclose(gx, want_x, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(gy, want_y, rtol=tol, atol=tol * scale)


def test_equals_tf_op_bitwise_float64(rng):
    x = rng.normal(size=(7, 300, 3))
    y = x + rng.normal(size=(7, 300, 3))
    mask = rng.random((7, 300)) > 0.1
    np.testing.assert_array_equal(
        cnp.corr_loss(x, y, mask=mask), np.asarray(corrops.corr_loss(x, y, mask=mask, impl="fused"))
    )


@pytest.mark.parametrize(
    "layout",
    ["fortran", "reversed-time", "strided", "transposed-view", "list"],
)
def test_any_array_layout(rng, layout):
    base = rng.normal(size=(6, 50, 2))
    base_y = base + rng.normal(size=(6, 50, 2))
    want = ref.corr_loss(base, base_y)
    if layout == "fortran":
        x, y = np.asfortranarray(base), np.asfortranarray(base_y)
    elif layout == "reversed-time":
        x, y = base[:, ::-1][:, ::-1], base_y[:, ::-1][:, ::-1]
        assert x.strides[1] > 0  # double reversal: same values, view chain
        x, y = base[:, ::-1], base_y[:, ::-1]
        want = ref.corr_loss(np.ascontiguousarray(x), np.ascontiguousarray(y))
    elif layout == "strided":
        big = np.zeros((12, 100, 2))
        big_y = np.zeros((12, 100, 2))
        big[::2, ::2], big_y[::2, ::2] = base, base_y
        x, y = big[::2, ::2], big_y[::2, ::2]
    elif layout == "transposed-view":
        x, y = base.transpose(1, 0, 2).copy().transpose(1, 0, 2), base_y
    else:
        x, y = base.tolist(), base_y.tolist()
    np.testing.assert_allclose(cnp.corr_loss(x, y), want, rtol=1e-12, atol=1e-12)


def test_threads_release_gil_and_match_serial(rng):
    inputs = [(rng.normal(size=(16, 2000)), rng.normal(size=(16, 2000))) for _ in range(8)]
    serial = [cnp.corr_loss(x, y) for x, y in inputs]
    results: list[np.ndarray | None] = [None] * 8

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = cnp.corr_loss(*inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(results, serial, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bitwise_identical_for_any_thread_count(rng):
    x = rng.normal(size=(64, 5000)).astype(np.float32)
    y = (x + rng.normal(size=x.shape)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    one = cnp.corr_loss_grad(x, y, g, threads=1)
    for threads in (2, 3, 7, 0):
        many = cnp.corr_loss_grad(x, y, g, threads=threads)
        np.testing.assert_array_equal(one[0], many[0])
        np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(cnp.corr_loss(x, y, threads=1), cnp.corr_loss(x, y, threads=2))


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_native_backward_time_constant_grad(rng, masked):
    """The binding takes grad as (outer, 1, groups) too (constant along time),
    as the TF op does: the same gradients as its broadcast, and a clear error
    for any other time extent."""
    native = cnp._native_module()
    shape = (3, 40, 2, 4)  # outer, time, groups, channels
    x = rng.normal(size=shape)
    y = 0.5 * x + rng.normal(size=shape)
    mask = rng.random(shape[:3]) > 0.3 if masked else None
    _loss, stats = native.forward_f64(x, y, mask, "ccc", 1e-7, 0)
    gc = rng.normal(size=(3, 1, 2))
    compact = native.backward_f64(gc, x, y, mask, stats, "ccc", 1e-7, 0)
    full = native.backward_f64(
        np.broadcast_to(gc, shape[:3]).copy(), x, y, mask, stats, "ccc", 1e-7, 0
    )
    for a, b in zip(compact, full, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="grad must have the loss shape"):
        native.backward_f64(np.zeros((3, 2, 2)), x, y, mask, stats, "ccc", 1e-7, 0)


def test_streamed_gradient_stores_change_no_value(rng):
    """Gradients written with non-temporal stores (large backward passes) are
    bitwise those written with plain stores; the threshold is validated."""
    from corrops import _corrops_numpy as native

    default = native.stream_store_min_bytes()
    x = rng.normal(size=(3, 1500, 1, 1)).astype(np.float32)
    y = (0.5 * x + rng.normal(size=x.shape)).astype(np.float32)
    mask = rng.random((3, 1500, 1)) > 0.2
    per_step = rng.normal(size=(3, 1500, 1))
    try:
        out = {}
        for threshold in (2**62, 0):
            native.set_stream_store_min_bytes(threshold)
            for name, g in (("per-step", per_step), ("const", None)):
                for m in (None, mask):
                    g_in = (
                        np.full((3, 1, 1), 0.25, np.float32) if g is None else g.astype(np.float32)
                    )
                    _, stats = native.forward_f32(x, y, m, "ccc", 1e-7, 2)
                    got = native.backward_f32(g_in, x, y, m, stats, "ccc", 1e-7, 2)
                    out.setdefault((name, m is None), []).append(got)
        for key, (plain, streamed) in out.items():
            for a, b in zip(plain, streamed, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=str(key))
    finally:
        native.set_stream_store_min_bytes(default)
    assert native.stream_store_min_bytes() == default
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        native.set_stream_store_min_bytes(-1)

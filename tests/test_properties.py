"""Property-based parity (hypothesis): the fused TF op, the fallback and the
NumPy binding agree with the float64 reference on random shapes, axes, masks
(all-false rows, single valid steps), methods, dtypes (float16, float32,
float64), value scales from 1e-30 to 1e30 (float16: 1e-4 to 1e4, what it can
hold) and constant rows; none is NaN/Inf where the reference is finite.

CORROPS_HYPOTHESIS_EXAMPLES sets the number of examples (CI: 2000)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corrops
import corrops.numpy as cnp
from tests import reference as ref

EXAMPLES = int(os.environ.get("CORROPS_HYPOTHESIS_EXAMPLES", "2000"))
# dtype: (numpy type, tolerance, decimal exponent range of the value scale)
DTYPES = {
    "float64": (np.float64, 1e-9, 30),
    "float32": (np.float32, 2e-3, 30),
    "float16": (np.float16, 3e-2, 4),  # float16 holds 6e-8 .. 65504
}


@st.composite
def cases(draw):
    rank = draw(st.integers(2, 4))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    time_axes = list(range(rank - 1)) if rank >= 3 else [0, 1]
    axis = draw(st.sampled_from(time_axes))
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    # Longer time axes sometimes (multi-lane and tail paths).
    if draw(st.booleans()):
        shape = (*shape[:axis], draw(st.integers(1, 70)), *shape[axis + 1 :])
    method = draw(st.sampled_from(["pearson", "ccc"]))
    span = DTYPES[dtype][2]
    scale = 10.0 ** draw(st.integers(-span, span))
    seed = draw(st.integers(0, 2**31 - 1))
    masked = draw(st.booleans())
    constant = draw(st.sampled_from(["none", "pred", "true"]))
    return shape, axis, dtype, method, scale, seed, masked, constant


def _inputs(shape, axis, dtype, scale, seed, masked, constant):
    rng = np.random.default_rng(seed)
    np_dtype = DTYPES[dtype][0]
    # float16 values near 1 keep 3 significant digits; scale them like the rest.
    x = (rng.normal(size=shape) * scale + 0.3 * scale).astype(np_dtype)
    y = (x.astype(np.float64) + rng.normal(size=shape) * scale).astype(np_dtype)
    if constant != "none" and x.size:
        target = y if constant == "pred" else x
        idx = (0,) * axis + (slice(None),)
        target[idx] = np_dtype(scale)  # one row constant along time
    loss_shape = shape[:-1] if len(shape) >= 3 else shape
    mask = None
    if masked:
        mask = rng.random(loss_shape) > rng.uniform(0.0, 0.9)
        if mask.size and rng.random() < 0.5:  # a single valid step somewhere
            mask[(0,) * len(loss_shape)] = True
    return x, y, mask


def _check(got: np.ndarray, want: np.ndarray, tol: float, what: str) -> None:
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, what
    finite = np.isfinite(want)
    assert np.isfinite(got[finite]).all(), f"{what}: non-finite where the reference is finite"
    np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol, err_msg=what)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(cases())
def test_all_implementations_agree(case):
    shape, axis, dtype, method, scale, seed, masked, constant = case
    x, y, mask = _inputs(shape, axis, dtype, scale, seed, masked, constant)
    tol = DTYPES[dtype][1]
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    want = ref.corr_loss(xf, yf, mask, axis=axis, method=method)
    want_coef = ref.corrcoef(xf, yf, mask, axis=axis, method=method)
    kw = dict(axis=axis, mask=mask, method=method)
    for impl in ("fused", "tf"):
        _check(
            corrops.corr_loss(tf.constant(x), tf.constant(y), impl=impl, **kw),
            want,
            tol,
            f"loss {impl}",
        )
        _check(
            corrops.corrcoef(tf.constant(x), tf.constant(y), impl=impl, **kw),
            want_coef,
            tol,
            f"coef {impl}",
        )
    _check(cnp.corr_loss(x, y, **kw), want, tol, "loss numpy")
    _check(cnp.corrcoef(x, y, **kw), want_coef, tol, "coef numpy")

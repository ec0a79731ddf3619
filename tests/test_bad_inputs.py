"""Bad inputs get a clear ValueError/TypeError/InvalidArgumentError naming the
argument, from the public API and from the raw ops."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops

ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError)
X = np.zeros((2, 5), np.float32)
X3 = np.zeros((2, 5, 3), np.float32)

CASES = [
    # (id, kwargs for corr_loss, pattern the message must contain)
    ("shape-mismatch", dict(y_true=X, y_pred=np.zeros((2, 6), np.float32)), "same shape"),
    ("channel-mismatch", dict(y_true=X3, y_pred=np.zeros((2, 5, 2), np.float32)), "same shape"),
    ("rank1", dict(y_true=np.zeros(5), y_pred=np.zeros(5)), "rank >= 2"),
    ("rank0", dict(y_true=1.0, y_pred=2.0), "rank >= 2"),
    ("int-pred", dict(y_true=X, y_pred=np.zeros((2, 5), np.int32)), "y_pred"),
    ("int-true", dict(y_true=np.zeros((2, 5), np.int64), y_pred=X), "y_true"),
    ("complex", dict(y_true=X, y_pred=np.zeros((2, 5), np.complex64)), "y_pred"),
    ("bool", dict(y_true=X, y_pred=np.zeros((2, 5), bool)), "y_pred"),
    ("string", dict(y_true=X, y_pred=tf.constant([["a"] * 5] * 2)), "y_pred"),
    ("ragged-list", dict(y_true=X, y_pred=[[1.0, 2.0], [3.0]]), "y_pred"),
    ("mask-shape", dict(y_true=X, y_pred=X, mask=np.ones((2, 4), bool)), "mask"),
    ("mask-rank", dict(y_true=X3, y_pred=X3, mask=np.ones((2, 5, 3), bool)), "mask"),
    ("mask-dtype", dict(y_true=X, y_pred=X, mask=tf.constant([["a"] * 5] * 2)), "mask"),
    ("method", dict(y_true=X, y_pred=X, method="spearman"), "method"),
    ("method-type", dict(y_true=X, y_pred=X, method=3), "method"),
    ("impl", dict(y_true=X, y_pred=X, impl="cuda"), "impl"),
    ("axis-range", dict(y_true=X, y_pred=X, axis=2), "axis"),
    ("axis-channel", dict(y_true=X3, y_pred=X3, axis=2), "axis"),
    ("axis-type", dict(y_true=X, y_pred=X, axis=1.0), "axis"),
    ("eps-negative", dict(y_true=X, y_pred=X, eps=-1e-7), "eps"),
    ("eps-zero", dict(y_true=X, y_pred=X, eps=0.0), "eps"),
    ("eps-nan", dict(y_true=X, y_pred=X, eps=float("nan")), "eps"),
    ("eps-inf", dict(y_true=X, y_pred=X, eps=float("inf")), "eps"),
    ("eps-string", dict(y_true=X, y_pred=X, eps="1e-7"), "eps"),
]


@pytest.mark.parametrize("fn", [corrops.corr_loss, corrops.corrcoef], ids=["loss", "coef"])
@pytest.mark.parametrize(("case", "kwargs", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_public_api_rejects(impl, fn, case, kwargs, pattern):
    kwargs = dict(kwargs)
    kwargs.setdefault("impl", impl)
    y_true, y_pred = kwargs.pop("y_true"), kwargs.pop("y_pred")
    with pytest.raises(ERRORS, match=pattern):
        fn(y_true, y_pred, **kwargs)


def _raw_forward(x, y, mask, eps=1e-7, has_mask=False):
    ops = corrops.load_ops()
    return ops.corrops_corr_loss(
        y_true=x, y_pred=y, mask=mask, eps=tf.constant(eps, tf.float64), has_mask=has_mask
    )


X4 = np.zeros((2, 5, 1, 3), np.float32)
RAW_CASES = [
    ("rank", lambda: _raw_forward(X, X, np.zeros([0], bool)), "rank"),
    ("shape", lambda: _raw_forward(X4, X4[:, :4], np.zeros([0], bool)), "same shape|compatible"),
    ("mask-shape", lambda: _raw_forward(X4, X4, np.ones((2, 4, 1), bool), has_mask=True), "mask"),
    ("mask-missing", lambda: _raw_forward(X4, X4, np.ones((2, 5, 1), bool)), "mask"),
    ("eps", lambda: _raw_forward(X4, X4, np.zeros([0], bool), eps=-1.0), "eps"),
    ("eps-nan", lambda: _raw_forward(X4, X4, np.zeros([0], bool), eps=float("nan")), "eps"),
]


@pytest.mark.parametrize(("case", "call", "pattern"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
@pytest.mark.parametrize("mode", ["eager", "function"])
def test_raw_forward_op_rejects(case, call, pattern, mode):
    with pytest.raises(ERRORS, match=pattern):
        tf.function(call)() if mode == "function" else call()


def test_raw_grad_op_rejects_bad_stats_and_grad():
    ops = corrops.load_ops()
    eps = tf.constant(1e-7, tf.float64)
    empty = np.zeros([0], bool)
    loss, stats = ops.corrops_corr_loss(y_true=X4, y_pred=X4, mask=empty, eps=eps)
    with pytest.raises(ERRORS, match="stats"):
        ops.corrops_corr_loss_grad(
            grad=loss, y_true=X4, y_pred=X4, mask=empty, stats=stats[:1], eps=eps
        )
    with pytest.raises(ERRORS, match="grad"):
        ops.corrops_corr_loss_grad(
            grad=loss[:, :3], y_true=X4, y_pred=X4, mask=empty, stats=stats, eps=eps
        )

"""Runs the bad-input table against the TF API, the raw ops and the NumPy API
and prints {case: [exception type, message]} as JSON; run in a subprocess by
tests/test_bad_inputs.py so that a crash is a test failure."""

import json

import numpy as np
import tensorflow as tf

import corrops
import corrops.numpy as cnp

X = np.zeros((2, 5), np.float32)
X3 = np.zeros((2, 5, 3), np.float32)
X4 = np.zeros((2, 5, 1, 3), np.float32)

# (id, kwargs for corr_loss, what the message must name)
API_CASES = [
    ("shape-mismatch", dict(y_true=X, y_pred=np.zeros((2, 6), np.float32)), "same shape"),
    ("channel-mismatch", dict(y_true=X3, y_pred=np.zeros((2, 5, 2), np.float32)), "same shape"),
    ("rank1", dict(y_true=np.zeros(5), y_pred=np.zeros(5)), "rank >= 2"),
    ("python-scalars", dict(y_true=1.0, y_pred=2.0), "rank >= 2"),
    ("int-pred", dict(y_true=X, y_pred=np.zeros((2, 5), np.int32)), "y_pred"),
    ("int-true", dict(y_true=np.zeros((2, 5), np.int64), y_pred=X), "y_true"),
    ("complex", dict(y_true=X, y_pred=np.zeros((2, 5), np.complex64)), "y_pred"),
    ("bool", dict(y_true=X, y_pred=np.zeros((2, 5), bool)), "y_pred"),
    ("string", dict(y_true=X, y_pred=np.array([["a"] * 5] * 2)), "y_pred"),
    ("ragged-list", dict(y_true=X, y_pred=[[1.0, 2.0], [3.0]]), "y_pred"),
    ("mask-shape", dict(y_true=X, y_pred=X, mask=np.ones((2, 4), bool)), "mask"),
    ("mask-rank", dict(y_true=X3, y_pred=X3, mask=np.ones((2, 5, 3), bool)), "mask"),
    ("mask-dtype", dict(y_true=X, y_pred=X, mask=np.array([["a"] * 5] * 2)), "mask"),
    ("method", dict(y_true=X, y_pred=X, method="spearman"), "method"),
    ("method-type", dict(y_true=X, y_pred=X, method=3), "method"),
    ("axis-range", dict(y_true=X, y_pred=X, axis=2), "axis"),
    ("axis-negative-range", dict(y_true=X, y_pred=X, axis=-3), "axis"),
    ("axis-channel", dict(y_true=X3, y_pred=X3, axis=2), "axis"),
    ("axis-type", dict(y_true=X, y_pred=X, axis=1.0), "axis"),
    ("eps-negative", dict(y_true=X, y_pred=X, eps=-1e-7), "eps"),
    ("eps-zero", dict(y_true=X, y_pred=X, eps=0.0), "eps"),
    ("eps-nan", dict(y_true=X, y_pred=X, eps=float("nan")), "eps"),
    ("eps-inf", dict(y_true=X, y_pred=X, eps=float("inf")), "eps"),
    ("eps-string", dict(y_true=X, y_pred=X, eps="1e-7"), "eps"),
]

RAGGED = tf.ragged.constant([[1.0, 2.0, 4.0], [3.0, 1.0]])
RAGGED_C = tf.ragged.constant([[[1.0], [2.0], [4.0]], [[3.0], [1.0]]], ragged_rank=1)
# (id, kwargs for corr_loss, what the message must name): TF API only.
RAGGED_CASES = [
    ("ragged-true-only", dict(y_true=RAGGED, y_pred=RAGGED.to_tensor()), "y_true"),
    ("ragged-pred-only", dict(y_true=RAGGED.to_tensor(), y_pred=RAGGED), "y_pred"),
    (
        "ragged-lengths",
        dict(y_true=RAGGED, y_pred=tf.ragged.constant([[1.0, 2.0], [3.0, 1.0, 5.0]])),
        "row lengths",
    ),
    (
        "ragged-rows",
        dict(y_true=RAGGED, y_pred=tf.ragged.constant([[1.0, 2.0, 4.0]])),
        "row lengths",
    ),
    (
        "ragged-channel-axis",
        dict(
            y_true=tf.ragged.constant([[[1.0, 2.0]], [[3.0]]]),
            y_pred=tf.ragged.constant([[[1.0, 2.0]], [[3.0]]]),
        ),
        "ragged along time",
    ),
    ("ragged-axis", dict(y_true=RAGGED_C, y_pred=RAGGED_C, axis=0), "axis"),
    ("ragged-axis-channel", dict(y_true=RAGGED_C, y_pred=RAGGED_C, axis=2), "axis"),
    ("ragged-mask", dict(y_true=RAGGED, y_pred=RAGGED, mask=np.ones((2, 3), bool)), "mask"),
]


def _raw(x, y, mask, eps=1e-7, has_mask=False, grad=None, stats=None, loss=None):
    ops = corrops.load_ops()
    e = tf.constant(eps, tf.float64)
    if grad is None:
        return ops.corrops_corr_loss(y_true=x, y_pred=y, mask=mask, eps=e, has_mask=has_mask)
    return ops.corrops_corr_loss_grad(
        grad=grad,
        y_true=x,
        y_pred=y,
        mask=mask,
        stats=stats,
        eps=e,
        loss=tf.zeros([0], tf.convert_to_tensor(x).dtype) if loss is None else loss,
        has_mask=has_mask,
    )


EMPTY = np.zeros([0], bool)
RAW_CASES = [
    ("raw-rank1", lambda: _raw(X[0], X[0], EMPTY), "rank"),
    ("raw-rank5", lambda: _raw(X4[..., None], X4[..., None], EMPTY), "rank"),
    ("raw-rank-mismatch", lambda: _raw(X, X3, EMPTY), "rank"),
    ("raw-mask-shape-rank2", lambda: _raw(X, X, np.ones((2, 4), bool), has_mask=True), "mask"),
    ("raw-mask-rank3-data", lambda: _raw(X3, X3, np.ones((2, 5, 3), bool), has_mask=True), "mask"),
    (
        "raw-grad-shape-rank3",
        lambda: _raw(
            X3, X3, EMPTY, grad=np.zeros((2, 5, 1), np.float32), stats=np.zeros((2, 3, 7))
        ),
        "grad",
    ),
    ("raw-shape", lambda: _raw(X4, X4[:, :4], EMPTY), "same shape"),
    ("raw-mask-shape", lambda: _raw(X4, X4, np.ones((2, 4, 1), bool), has_mask=True), "mask"),
    ("raw-mask-missing", lambda: _raw(X4, X4, np.ones((2, 5, 1), bool)), "mask"),
    ("raw-eps", lambda: _raw(X4, X4, EMPTY, eps=-1.0), "eps"),
    ("raw-eps-nan", lambda: _raw(X4, X4, EMPTY, eps=float("nan")), "eps"),
    ("raw-int", lambda: _raw(X4.astype(np.int32), X4.astype(np.int32), EMPTY), "T"),
    (
        "raw-grad-shape",
        lambda: _raw(
            X4, X4, EMPTY, grad=np.zeros((2, 4, 1), np.float32), stats=np.zeros((2, 3, 7))
        ),
        "grad",
    ),
    (
        "raw-stats-shape",
        lambda: _raw(
            X4, X4, EMPTY, grad=np.zeros((2, 5, 1), np.float32), stats=np.zeros((2, 3, 6))
        ),
        "stats",
    ),
    (
        "raw-loss-shape",
        lambda: _raw(
            X4,
            X4,
            EMPTY,
            grad=np.zeros((2, 5, 1), np.float32),
            stats=np.zeros((2, 3, 7)),
            loss=np.zeros((2, 4, 1), np.float32),
        ),
        "loss",
    ),
]


def _outcome(fn):
    try:
        fn()
    except Exception as err:  # the point is to record any error
        return [type(err).__name__, str(err)[:2000]]
    return ["no error", ""]


def _tf_call(kw, mode, impl):
    kw = dict(kw)
    y_true, y_pred = kw.pop("y_true"), kw.pop("y_pred")
    if mode == "eager":
        return corrops.corr_loss(y_true, y_pred, impl=impl, **kw)
    return tf.function(lambda: corrops.corr_loss(y_true, y_pred, impl=impl, **kw))()


results = {}
for case, kw, _ in API_CASES:
    for impl in ("fused", "tf"):
        for mode in ("eager", "function"):
            results[f"tf-{impl}-{mode}-{case}"] = _outcome(
                lambda kw=kw, mode=mode, impl=impl: _tf_call(kw, mode, impl)
            )
    results[f"numpy-{case}"] = _outcome(
        lambda kw=kw: cnp.corr_loss(
            kw["y_true"],
            kw["y_pred"],
            **{k: v for k, v in kw.items() if k not in ("y_true", "y_pred")},
        )
    )
for case, kw, _ in RAGGED_CASES:
    for impl in ("fused", "tf"):
        for mode in ("eager", "function"):
            results[f"tf-{impl}-{mode}-{case}"] = _outcome(
                lambda kw=kw, mode=mode, impl=impl: _tf_call(kw, mode, impl)
            )
for case, fn, _ in RAW_CASES:
    results[f"{case}-eager"] = _outcome(fn)
    results[f"{case}-function"] = _outcome(tf.function(fn))
print(json.dumps(results))

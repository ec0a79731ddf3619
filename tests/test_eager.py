"""The lean eager call (corrops/tensorflow/_eager.py): taken exactly for the common case,
the same numbers, gradients and errors as the general path."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import corrops
from corrops.tensorflow import _inputs

COMMON = [(8, 100), (8, 100, 1), (4, 33, 3), (0, 5, 1), (3, 0), (2, 6, 0)]


@pytest.fixture
def general_path_calls(monkeypatch) -> list:
    """Counts calls of the general path's canonicalize."""
    calls: list = []
    original = _inputs.canonicalize

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(_inputs, "canonicalize", counting)
    return calls


@pytest.mark.parametrize("shape", COMMON, ids=str)
@pytest.mark.parametrize("method", ["pearson", "ccc"])
def test_common_case_is_lean_and_equals_the_graph_path(
    rng, dtype, shape, method, general_path_calls
):
    x = tf.constant(rng.normal(size=shape), dtype)
    y = tf.constant(rng.normal(size=shape), dtype)
    lean = corrops.corr_loss(x, y, method=method)
    assert general_path_calls == []
    assert corrops.last_choice()["impl"] == "fused"
    graph = tf.function(lambda a, b: corrops.corr_loss(a, b, method=method))(x, y)
    assert general_path_calls, "tf.function takes the general path"
    assert lean.shape == graph.shape == shape[:2] and lean.dtype == dtype
    np.testing.assert_array_equal(lean.numpy(), graph.numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mask": np.ones((4, 9), bool)},
        {"axis": 0},
        {"impl": "tf"},
    ],
    ids=["mask", "axis0", "impl-tf"],
)
def test_other_cases_take_the_general_path(rng, kwargs, general_path_calls):
    x = tf.constant(rng.normal(size=(4, 9)))
    corrops.corr_loss(x, x * 2.0 + 1.0, **kwargs)
    assert len(general_path_calls) == 1


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [
        (np.zeros((4, 9)), np.zeros((4, 9))),  # NumPy arrays
        (tf.zeros((4, 9), tf.float32), tf.zeros((4, 9), tf.float64)),  # dtypes differ
        (tf.zeros((4, 9)), tf.zeros((4, 9, 1))),  # ranks differ
        (tf.zeros((2, 4, 9, 1)), tf.zeros((2, 4, 9, 1))),  # rank 4
    ],
    ids=["numpy", "dtypes", "ranks", "rank4"],
)
def test_inputs_outside_the_common_case_take_the_general_path(y_true, y_pred, general_path_calls):
    corrops.corr_loss(y_true, y_pred)
    assert len(general_path_calls) == 1


def test_keras_mask_takes_the_general_path(rng, general_path_calls):
    x = tf.constant(rng.normal(size=(3, 10, 1)), tf.float32)
    y = tf.constant(rng.normal(size=(3, 10, 1)), tf.float32)
    y._keras_mask = tf.constant(rng.random((3, 10)) > 0.3)
    got = corrops.corr_loss(x, y)
    assert len(general_path_calls) == 1
    want = corrops.corr_loss(x, y, mask=y._keras_mask)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("shape", [(8, 100), (4, 33, 3)], ids=str)
def test_gradients_equal_the_graph_path(rng, shape, general_path_calls):
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(rng.normal(size=shape), tf.float32)
    w = tf.constant(rng.normal(size=shape[:2]), tf.float32)

    def grads(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            total = tf.reduce_sum(corrops.corr_loss(a, b, method="ccc") * w)
        return tape.gradient(total, [a, b])

    lean = grads(x, y)
    assert general_path_calls == []
    graph = tf.function(grads)(x, y)
    for a, b in zip(lean, graph, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"method": "spearman"}, ValueError, "method"),
        ({"eps": -1.0}, ValueError, "eps"),
        ({"eps": "1e-7"}, TypeError, "eps"),
        ({"impl": "cuda"}, ValueError, "impl"),
    ],
)
def test_bad_arguments_same_errors(kwargs, error, pattern):
    x = tf.zeros((2, 5))
    with pytest.raises(error, match=pattern):
        corrops.corr_loss(x, x, **kwargs)


def test_eps_values_are_not_mixed_up(rng):
    # Eager calls reuse one eps constant per value.
    x = tf.constant(rng.normal(size=(2, 6)))
    y = tf.constant(np.ones((2, 6)) + 1e-9 * rng.normal(size=(2, 6)))
    small = corrops.corr_loss(x, y, eps=1e-30).numpy()
    large = corrops.corr_loss(x, y, eps=1.0).numpy()
    again = corrops.corr_loss(x, y, eps=1e-30).numpy()
    np.testing.assert_array_equal(small, again)
    assert not np.allclose(small, large)

"""The shape contract shared by the TF and NumPy front ends (corrops/_layout.py)."""

from __future__ import annotations

import numpy as np
import pytest

from corrops import _layout


@pytest.mark.parametrize(
    ("true", "pred", "axis", "dims", "loss", "coef"),
    [
        ((4, 9), (4, 9), 1, (4, 9, 1, 1), (4, 9), (4,)),
        ((4, 9, 3), (4, 9, 3), 1, (4, 9, 1, 3), (4, 9), (4, 3)),
        ((4, 9), (4, 9, 1), 1, (4, 9, 1, 1), (4, 9), (4, 1)),
        ((4, 9, 1), (4, 9), -2, (4, 9, 1, 1), (4, 9), (4, 1)),
        ((2, 5, 6, 3), (2, 5, 6, 3), 1, (2, 5, 6, 3), (2, 5, 6), (2, 6, 3)),
        ((3, 4, 9, 2), (3, 4, 9, 2), 2, (12, 9, 1, 2), (3, 4, 9), (3, 4, 2)),
        ((7, 5), (7, 5), 0, (1, 7, 5, 1), (7, 5), (5,)),
        ((0, 5), (0, 5), 1, (0, 5, 1, 1), (0, 5), (0,)),
    ],
)
def test_layouts(true, pred, axis, dims, loss, coef):
    layout = _layout.check(true, pred, np.int64(axis))
    assert layout.canonical_dims() == dims
    assert layout.loss_shape == loss and layout.coef_shape == coef


def test_expansion_and_unknown_dims():
    layout = _layout.check((None, 9), (4, None, 1), 1)
    assert layout.expand == "y_true" and layout.shape == (4, 9, 1)
    assert _layout.check((4, 9, 1), (4, 9), 1).expand == "y_pred"
    assert _layout.check((None, None, 3), (None, None, 3), 1).loss_shape == (None, None)


@pytest.mark.parametrize(
    ("true", "pred", "axis", "error", "pattern"),
    [
        ((4, 9), (4, 8), 1, ValueError, r"same shape, got y_true \(4, 9\) and y_pred \(4, 8\)"),
        ((4, 9, 2), (4, 9), 1, ValueError, "same shape"),
        ((5,), (5,), 0, ValueError, r"rank >= 2 .* got shape \(5,\)"),
        ((4, 9), (4, 9), 2, ValueError, "axis 2 is out of range"),
        ((4, 9), (4, 9), -3, ValueError, "out of range"),
        ((4, 9, 3), (4, 9, 3), 2, ValueError, "channel axis"),
        ((4, 9), (4, 9), 1.0, TypeError, "axis must be an int"),
        ((4, 9), (4, 9), True, TypeError, "axis must be an int"),
    ],
)
def test_errors_name_the_argument(true, pred, axis, error, pattern):
    with pytest.raises(error, match=pattern):
        _layout.check(true, pred, axis)


def test_loss_shaped_arguments():
    layout = _layout.check((4, 9, 3), (4, 9, 3), 1)
    _layout.check_loss_shaped((4, 9), layout, "mask")
    _layout.check_loss_shaped((None, 9), layout, "mask")
    with pytest.raises(ValueError, match=r"grad must have the loss shape \(4, 9\)"):
        _layout.check_loss_shaped((4, 9, 3), layout, "grad")

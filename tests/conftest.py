"""Shared fixtures: implementations, dtypes (with tolerances), execution modes.

A new implementation is tested everywhere by adding one entry to IMPLS.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf

import corrops
from tests.helpers import DTYPES, IMPLS, MODES, call_in_mode


def pytest_configure(config: pytest.Config) -> None:
    # The fused op must be there in CI: a missing library is a failure, not a skip.
    if not corrops.fused_available() and not os.environ.get("CORROPS_ALLOW_NO_FUSED"):
        raise pytest.UsageError(
            f"the corrops fused op did not load: {corrops.unavailable_reason()} "
            "(build it first; set CORROPS_ALLOW_NO_FUSED=1 to test the fallback alone)"
        )


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(DTYPES), ids=lambda d: d.name)
def dtype(request: pytest.FixtureRequest) -> tf.DType:
    return request.param


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest) -> Callable:
    """Calls fn in each of MODES (helpers.call_in_mode)."""
    return functools.partial(call_in_mode, request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

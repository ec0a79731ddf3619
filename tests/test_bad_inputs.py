"""Bad inputs get a ValueError / TypeError / InvalidArgumentError whose message
names the bad argument, from the TF API (both implementations, eager and
tf.function), the raw ops and the NumPy API. The table runs in a subprocess
(tests/workers/bad_inputs.py): a crash fails every case instead of the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corrops.numpy as cnp
from tests.workers.bad_inputs import API_CASES, RAGGED_CASES, RAW_CASES

ROOT = Path(__file__).resolve().parents[1]
ERRORS = {"ValueError", "TypeError", "InvalidArgumentError", "NotFoundError"}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, list[str]]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "workers" / "bad_inputs.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"the bad-input run crashed ({done.returncode}):\n" + done.stderr[-4000:]
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


API_IDS = (
    [
        (f"{prefix}{case}", pattern)
        for case, _, pattern in API_CASES
        for prefix in [f"tf-{i}-{m}-" for i in ("fused", "tf") for m in ("eager", "function")]
        + ["numpy-"]
    ]
    + [
        (f"tf-{i}-{m}-{case}", pattern)
        for case, _, pattern in RAGGED_CASES
        for i in ("fused", "tf")
        for m in ("eager", "function")
    ]
    + [
        (f"{case}-{mode}", pattern)
        for case, _, pattern in RAW_CASES
        for mode in ("eager", "function")
    ]
)


@pytest.mark.parametrize(("case", "pattern"), API_IDS, ids=[c for c, _ in API_IDS])
def test_rejected_with_clear_error(outcomes, case, pattern):
    kind, message = outcomes[case]
    assert kind in ERRORS, f"{case}: got {kind}: {message}"
    assert re.search(pattern, message), f"{case}: message does not name it: {message}"


def test_table_is_large_enough():
    assert len(API_CASES) + len(RAW_CASES) >= 20


def test_huge_dims_use_int64_indexing():
    # More elements along one axis than int32 can index; zero-sized, so free.
    shape = (0, 2**33)
    assert cnp.corr_loss(np.zeros(shape), np.zeros(shape)).shape == shape
    import tensorflow as tf

    import corrops

    for impl in ("fused", "tf"):
        assert corrops.corr_loss(tf.zeros(shape), tf.zeros(shape), impl=impl).shape == shape

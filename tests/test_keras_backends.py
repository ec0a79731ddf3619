"""The Keras objects on every Keras backend: tests/keras_backends run in a
process of their own per backend (Keras chooses its backend at import), and
a .keras file saved on one backend loads and evaluates identically on another.
The TensorFlow run of tests/keras_backends is part of the main pytest run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "workers" / "keras_file.py"
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _needs(backend: str) -> None:
    if importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        pytest.skip(f"{BACKEND_PACKAGES[backend]} is not installed (requirements-dev.txt has it)")


def _run(backend: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_objects_on_backend(backend):
    _needs(backend)
    done = _run(backend, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/keras_backends")
    assert done.returncode == 0, f"on {backend}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    assert " passed" in done.stdout and " skipped" not in done.stdout


@pytest.mark.parametrize(
    ("saved_on", "loaded_on"),
    [("tensorflow", "jax"), ("jax", "tensorflow"), ("tensorflow", "torch")],
)
def test_keras_file_loads_on_another_backend(tmp_path, saved_on, loaded_on):
    _needs(saved_on)
    _needs(loaded_on)
    path = str(tmp_path / "model.keras")
    outputs = []
    for backend, command in ((saved_on, "save"), (loaded_on, "evaluate")):
        done = _run(backend, str(WORKER), command, path, timeout=300)
        assert done.returncode == 0, f"{command} on {backend}:\n{done.stderr[-4000:]}"
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    saved, loaded = outputs
    assert (saved["backend"], loaded["backend"]) == (saved_on, loaded_on)
    assert loaded["loss_class"] == "CorrelationLoss"
    keys = ("loss", "pearson_correlation", "concordance_correlation")
    np.testing.assert_allclose([loaded[k] for k in keys], [saved[k] for k in keys], rtol=1e-5)

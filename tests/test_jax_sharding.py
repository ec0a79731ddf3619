"""corrops.jax across devices: tests/jax_sharded/sharded_checks.py in a
process of its own with four host devices (the device count is fixed when
JAX starts) and Keras on JAX. A skip there is a failure here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax", reason="jax is not installed (pip install 'corrops[jax]')")

ROOT = Path(__file__).resolve().parents[1]


def test_sharded_checks_pass_on_four_devices():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "KERAS_BACKEND": "jax",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            str(ROOT / "tests" / "jax_sharded" / "sharded_checks.py"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tail = done.stdout[-5000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert "skipped" not in done.stdout.splitlines()[-1], tail
    assert " passed" in done.stdout.splitlines()[-1], tail

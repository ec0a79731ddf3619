"""tf.distribute: MirroredStrategy over two logical CPUs and a two-process
MultiWorkerMirroredStrategy on loopback, each in subprocesses (logical devices
and TF_CONFIG must be set before TensorFlow starts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKERS = Path(__file__).parent / "workers"
ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "jit_compile"])
def test_mirrored_strategy_matches_single_device(jit):
    done = subprocess.run(
        [sys.executable, str(WORKERS / "mirrored.py"), *(["jit"] if jit else [])],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["impl"] == "fused"
    # Under jit_compile the fused op runs as XLA custom calls.
    assert ("XLA custom call" in out["reason"]) == jit
    assert out["diff_loss"] < 1e-5 and out["diff_grad"] < 1e-5, out
    if jit:  # Keras training: see tests/workers/mirrored.py
        return
    assert out["weight_diff"] < 1e-5, out
    np.testing.assert_allclose(out["loss"][0], out["loss"][1], rtol=1e-5)
    np.testing.assert_allclose(out["metric"][0], out["metric"][1], rtol=1e-5)
    np.testing.assert_allclose(out["eval_metric"][0], out["eval_metric"][1], rtol=1e-5)


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_two_processes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKERS / "multi_worker.py"),
                        str(tmp_path / f"w{index}.npz"),
                    ],
                    env=_env(TF_CONFIG=tf_config),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for p in procs:
            _, err = p.communicate(timeout=150)
            assert p.returncode == 0, err[-4000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert set(w0.files) == set(w1.files)
    for key in w0.files:  # identical weights (and losses) on both workers
        np.testing.assert_array_equal(w0[key], w1[key])
    assert str(w0["impl"]) == "fused"
    assert w0["loss"][-1] < w0["loss"][0]

"""Thread safety, memory stability and determinism of the fused op and the
NumPy binding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf

import corrops
import corrops.numpy as cnp

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_tf_op_and_numpy_concurrent_calls_match_serial(rng):
    inputs = [
        (
            rng.normal(size=(8, 3000, 2)).astype(np.float32),
            rng.normal(size=(8, 3000, 2)).astype(np.float32),
        )
        for _ in range(8)
    ]

    def tf_fwd_bwd(x, y):
        x, y = tf.constant(x), tf.constant(y)
        with tf.GradientTape() as tape:
            tape.watch(y)
            loss = corrops.corr_loss(x, y, impl="fused")
            total = tf.reduce_sum(loss)
        return np.asarray(loss), np.asarray(tape.gradient(total, y))

    serial_tf = [tf_fwd_bwd(*xy) for xy in inputs]
    serial_np = [cnp.corr_loss_grad(x, y, np.ones((8, 3000), np.float32)) for x, y in inputs]
    got_tf: list = [None] * 8
    got_np: list = [None] * 8

    def work(i: int) -> None:
        for _ in range(3):
            got_tf[i] = tf_fwd_bwd(*inputs[i])
            got_np[i] = cnp.corr_loss_grad(*inputs[i], np.ones((8, 3000), np.float32))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        for a, b in zip(got_tf[i], serial_tf[i], strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(got_np[i], serial_np[i], strict=True):
            np.testing.assert_array_equal(a, b)


def test_no_leak_over_10000_forward_backward_calls(rng):
    x = tf.constant(rng.normal(size=(8, 256)), tf.float32)
    y = tf.constant(rng.normal(size=(8, 256)), tf.float32)
    mask = tf.constant(rng.random((8, 256)) > 0.1)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            total = tf.reduce_sum(corrops.corr_loss(x, y, mask=mask, impl="fused"))
        return tape.gradient(total, [x, y])

    xn, yn, gn = np.asarray(x), np.asarray(y), np.ones((8, 256), np.float32)
    for _ in range(1000):  # warm-up: allocator pools, traces
        step(x, y)
        cnp.corr_loss_grad(xn, yn, gn)
    before = _rss_mb()
    for _ in range(10_000):
        step(x, y)
        cnp.corr_loss_grad(xn, yn, gn)
    growth = _rss_mb() - before
    # 10,000 calls leaking even one 8 KiB output each would grow by ~80 MB.
    assert growth < 16, f"resident memory grew by {growth:.1f} MB"


def test_bitwise_identical_for_any_tf_thread_count():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    digests = []
    for threads in (1, 2):
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "workers" / "determinism.py"), str(threads)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        digests.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert digests[0] == digests[1]


def test_repeated_runs_bitwise_identical(rng):
    x = tf.constant(rng.normal(size=(33, 4097)), tf.float32)
    y = tf.constant(rng.normal(size=(33, 4097)), tf.float32)
    first = np.asarray(corrops.corr_loss(x, y, impl="fused"))
    for _ in range(5):
        np.testing.assert_array_equal(np.asarray(corrops.corr_loss(x, y, impl="fused")), first)

"""Writes the fused op's loss and gradients for fixed inputs to argv[1] (.npz):
tests/test_cpu_engine.py runs it under CORROPS_CPU_ISA=generic and compares."""

import sys

import numpy as np
import tensorflow as tf

import corrops
from corrops import _corrops_numpy

out = {"isa": np.array(_corrops_numpy.cpu_isa())}
rng = np.random.default_rng(11)
for name, shape, masked in [
    ("rows", (7, 301), False),
    ("masked", (5, 97), True),
    ("channels", (3, 50, 4), True),
]:
    for dtype in (tf.float16, tf.float32, tf.float64):
        x = tf.constant(rng.normal(size=shape) + 3.0, dtype)
        y = tf.constant(0.5 * x.numpy() + rng.normal(size=shape), dtype)
        mask = tf.constant(rng.random(shape[:2]) > 0.2) if masked else None
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            loss = corrops.corr_loss(x, y, mask=mask, method="ccc", impl="fused")
            total = tf.reduce_sum(loss * tf.cast(tf.range(shape[1]) % 3, dtype))
        gx, gy = tape.gradient(total, [x, y])
        key = f"{name}_{dtype.name}"
        out.update({f"{key}_loss": loss.numpy(), f"{key}_gx": gx.numpy(), f"{key}_gy": gy.numpy()})
np.savez(sys.argv[1], **out)

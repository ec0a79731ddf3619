"""Prints SHA-256 digests of fused forward/backward outputs with the TF intra-op
thread count given in argv[1] (tests/test_reliability.py compares them)."""

import hashlib
import json
import sys

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(int(sys.argv[1]))

import numpy as np  # noqa: E402

import corrops  # noqa: E402

rng = np.random.default_rng(3)
out = {}
for shape in [(64, 3000), (16, 500, 4), (3, 40000)]:
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(rng.normal(size=shape), tf.float32)
    mask = rng.random(shape[:2]) > 0.1
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        loss = corrops.corr_loss(x, y, mask=mask, method="ccc", impl="fused")
        total = tf.reduce_sum(loss * 0.37)
    gx, gy = tape.gradient(total, [x, y])
    digest = hashlib.sha256()
    for t in (loss, gx, gy):
        digest.update(np.asarray(t).tobytes())
    out[str(shape)] = digest.hexdigest()
print(json.dumps(out))

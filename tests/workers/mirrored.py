"""MirroredStrategy over two logical CPU devices vs one device (run as a
subprocess by tests/test_distribute.py; prints one JSON line). With the
argument `jit`, the per-replica steps are XLA-compiled (jit_compile=True) and
Keras training is left out: Keras fit under MirroredStrategy over logical CPU
devices with jit_compile fails inside TensorFlow with any loss ("Trying to
access resource ... located in device CPU:1 from device CPU:0", XLA's known
issue with variables on another device)."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import corrops  # noqa: E402

rng = np.random.default_rng(0)
x = rng.normal(size=(32, 20, 5)).astype(np.float32)
y = (x[..., :1] * 0.8 + 0.4 * rng.normal(size=(32, 20, 1))).astype(np.float32)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {"replicas": strategy.num_replicas_in_sync}
jit = sys.argv[1:] == ["jit"]


def grads(yt, yp):
    with tf.GradientTape() as tape:
        tape.watch(yp)
        loss = corrops.corr_loss(yt, yp, method="ccc")
        total = tf.reduce_sum(loss)
    return loss, tape.gradient(total, yp)


# 1) per-replica loss and gradients equal single-device ones.
pred = (y + rng.normal(size=y.shape)).astype(np.float32)
ds = tf.data.Dataset.from_tensor_slices((y, pred)).batch(16)
diff_loss = diff_grad = 0.0
for yt, yp in strategy.experimental_distribute_dataset(ds):
    per_replica = strategy.run(tf.function(grads, jit_compile=jit), args=(yt, yp))
    out["impl"] = corrops.last_choice()["impl"]
    out["reason"] = corrops.last_choice()["reason"]
    loss = strategy.gather(per_replica[0], axis=0)
    grad = strategy.gather(per_replica[1], axis=0)
    ref_loss, ref_grad = grads(strategy.gather(yt, axis=0), strategy.gather(yp, axis=0))
    diff_loss = max(diff_loss, float(tf.reduce_max(tf.abs(loss - ref_loss))))
    diff_grad = max(diff_grad, float(tf.reduce_max(tf.abs(grad - ref_grad))))
out["diff_loss"], out["diff_grad"] = diff_loss, diff_grad


if jit:
    print(json.dumps(out))
    sys.exit(0)


# 2) one epoch of training matches single-device training.
def build():
    model = keras.Sequential(
        [keras.Input((20, 5)), keras.layers.LSTM(8, return_sequences=True), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=corrops.CorrelationLoss(),
        metrics=[corrops.metrics.PearsonCorrelation(mode="pooled")],
    )
    return model


keras.utils.set_random_seed(0)
single = build()
init = single.get_weights()
with strategy.scope():
    dist = build()
dist.set_weights(init)
h1 = single.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
h2 = dist.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
out["weight_diff"] = max(
    float(np.max(np.abs(a - b)))
    for a, b in zip(single.get_weights(), dist.get_weights(), strict=True)
)

out["loss"] = [h1["loss"][0], h2["loss"][0]]
out["metric"] = [h1["pearson_correlation"][0], h2["pearson_correlation"][0]]
e1 = single.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
e2 = dist.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
out["eval_metric"] = [e1["pearson_correlation"], e2["pearson_correlation"]]
print(json.dumps(out))

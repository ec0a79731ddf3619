"""One worker of a two-process MultiWorkerMirroredStrategy run (TF_CONFIG is
set by tests/test_distribute.py); writes the final weights to argv[1].

Keras 3's model.fit does not run under MultiWorkerMirroredStrategy
(keras-team/keras#20585), so this is the custom training loop the README
shows: strategy.run over a distributed dataset, corrops.corr_loss per replica,
tf.nn.compute_average_loss for the global-batch mean.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

import corrops

GLOBAL_BATCH = 16
strategy = tf.distribute.MultiWorkerMirroredStrategy()
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 20, 5)).astype(np.float32)
y = (x[..., :1] * 0.8 + 0.4 * rng.normal(size=(64, 20, 1))).astype(np.float32)
dataset = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((20, 5)), keras.layers.LSTM(8, return_sequences=True), keras.layers.Dense(1)]
    )
    optimizer = keras.optimizers.Adam(0.01)


@tf.function
def train_step(xb, yb):
    def step(xr, yr):
        with tf.GradientTape() as tape:
            per_step = corrops.corr_loss(yr, model(xr, training=True))  # (b, T)
            per_sequence = tf.reduce_mean(per_step, axis=1)
            loss = tf.nn.compute_average_loss(per_sequence, global_batch_size=GLOBAL_BATCH)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return strategy.reduce("SUM", strategy.run(step, args=(xb, yb)), axis=None)


losses = []
for _ in range(2):
    for xb, yb in dataset:
        losses.append(float(train_step(xb, yb)))
assert np.isfinite(losses).all(), losses
assert losses[-1] < losses[0], losses
np.savez(
    sys.argv[1],
    *model.get_weights(),
    loss=np.array(losses),
    impl=np.array(corrops.last_choice()["impl"]),
)

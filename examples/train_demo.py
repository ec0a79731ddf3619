"""corrops demo: the seed's sequence-labelling problem, trained with corr_loss.

An LSTM maps (N, 100, 5) input sequences to (N, 100, 1) label curves. The
synthetic targets follow a smoothed mix of the inputs but with an arbitrary
per-sequence offset and gain (as annotator curves do), so what can be learnt is
the *shape* of each curve: exactly what a correlation loss rewards. Then a
short timing table: the fused op against the pure-TF fallback and the seed's
formula, forward + backward. Everything is generated in-process.
"""

from __future__ import annotations

import argparse
import platform
import time

import keras
import numpy as np
import tensorflow as tf

import corrops


def make_sequences(n: int, t: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, 5)).astype(np.float32)
    mix = x @ np.array([0.9, -0.6, 0.4, 0.0, 0.2], np.float32)
    kernel = np.hanning(9).astype(np.float32)
    curve = np.stack([np.convolve(row, kernel / kernel.sum(), mode="same") for row in mix])
    gain = rng.uniform(0.5, 3.0, size=(n, 1)).astype(np.float32)
    offset = rng.normal(scale=2.0, size=(n, 1)).astype(np.float32)
    noise = 0.05 * rng.normal(size=curve.shape).astype(np.float32)
    return x, (gain * curve + offset + noise)[..., None]


def seed_formula(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """The seed question's final my_loss (Keras 3 ops)."""
    ops = keras.ops
    s1, s2 = ops.squeeze(y_true, -1), ops.squeeze(y_pred, -1)
    d1 = s1 - ops.mean(s1, axis=-1, keepdims=True)
    d2 = s2 - ops.mean(s2, axis=-1, keepdims=True)
    den = ops.sqrt(
        ops.mean(ops.square(d1), axis=-1, keepdims=True)
        * ops.mean(ops.square(d2), axis=-1, keepdims=True)
    )
    return 1.0 - d1 * d2 / (den + keras.config.epsilon())


def train(epochs: int) -> None:
    keras.utils.set_random_seed(0)
    x, y = make_sequences(1024)
    x_val, y_val = make_sequences(256, seed=1)
    model = keras.Sequential(
        [
            keras.Input((None, 5)),
            keras.layers.LSTM(32, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=corrops.corr_loss)
    r_before = float(np.mean(corrops.corrcoef(y_val, model.predict(x_val, verbose=0))))
    print(
        f"training: x {x.shape} -> y {y.shape}, loss=corrops.corr_loss "
        f"({corrops.last_choice().get('impl', '?')} implementation)"
    )
    for epoch in range(epochs):
        hist = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
        print(f"  epoch {epoch + 1:2d}  loss {hist['loss'][0]:.4f}")
    r = np.asarray(corrops.corrcoef(y_val, model.predict(x_val, verbose=0)))
    print(
        f"held-out per-sequence Pearson r: mean {r.mean():.3f} (min {r.min():.3f}); "
        f"before training {r_before:.3f}"
    )


def _median_ms(fn, *args, repeats: int = 15) -> float:
    fn(*args)  # trace / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _fwd_bwd(loss_fn, jit: bool = False):
    @tf.function(jit_compile=jit)
    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            total = tf.reduce_mean(loss_fn(a, b))
        return total, tape.gradient(total, b)

    return step


def timing_table() -> None:
    contenders = {
        "corrops fused": _fwd_bwd(lambda a, b: corrops.corr_loss(a, b, impl="fused")),
        "corrops fallback": _fwd_bwd(lambda a, b: corrops.corr_loss(a, b, impl="tf")),
        "seed formula": _fwd_bwd(seed_formula),
        "seed formula XLA": _fwd_bwd(seed_formula, jit=True),
    }
    shapes = [(20, 100, 1), (64, 1000, 1), (256, 4096, 1)]
    print(
        f"\nforward+backward, float32, median ms "
        f"({platform.processor() or platform.machine()}, TF {tf.__version__}):"
    )
    header = f"{'shape':>16}" + "".join(f"{name:>18}" for name in contenders)
    print(header + f"{'fused speed-up':>16}")
    rng = np.random.default_rng(0)
    for shape in shapes:
        a = tf.constant(rng.normal(size=shape), tf.float32)
        b = tf.constant(rng.normal(size=shape), tf.float32)
        ms = {name: _median_ms(fn, a, b) for name, fn in contenders.items()}
        best_other = min(v for k, v in ms.items() if k != "corrops fused")
        row = f"{shape!s:>16}" + "".join(f"{v:18.3f}" for v in ms.values())
        print(row + f"{best_other / ms['corrops fused']:15.1f}x")
    print("(speed-up: fastest non-fused contender / fused; full suite: benchmarks/)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    if not corrops.fused_available():
        print(f"note: fused op unavailable ({corrops.unavailable_reason()}); using the fallback")
    train(args.epochs)
    if not args.no_timing and corrops.fused_available():
        timing_table()


if __name__ == "__main__":
    main()

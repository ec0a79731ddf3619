"""corrops demo: a sequence-labelling model trained with corr_loss.

An LSTM maps (N, 100, 5) input sequences to (N, 100, 1) label curves. The
synthetic targets follow a smoothed mix of the inputs but with an arbitrary
per-sequence offset and gain (as annotator curves do), so what can be learnt is
the *shape* of each curve: exactly what a correlation loss rewards. Then a
short timing table: the fused op against the pure-TF fallback and the naive
formula people write in Keras, forward + backward. Everything is generated in-process.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import corrops

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ (timing table)


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


def timing_table(rounds: int = 7) -> None:
    """Forward+backward per training step, float32, timed as benchmarks/ times
    it (K steps on K different inputs inside one tf.function), the contenders
    of a shape round-robin (one call of each per round, the minimum over
    rounds), so the numbers compare with benchmarks/REPORT.md."""
    from benchmarks.contenders import BY_NAME, Case, make_runner
    from benchmarks.report import round_robin

    names = ["fused", "fallback graph", "naive graph", "naive XLA"]
    speedups = ["naive graph", "naive XLA"]
    shapes = [(20, 100, 1), (64, 1000, 1), (256, 4096, 1)]
    print(
        f"\nforward+backward per step, float32, ms, minimum of {rounds} rounds "
        f"({platform.processor() or platform.machine()}, TF {tf.__version__}):"
    )
    header = "".join(f"{n:>16}" for n in names) + "".join(f"{'vs ' + n:>16}" for n in speedups)
    print(f"{'shape':>16}" + header)
    below_one = []
    for shape in shapes:
        runners = []
        for name in names:
            run, k = make_runner(BY_NAME[name], Case(shape), tf.float32, backward=True)
            runners.append((name, run, k))  # traced and compiled by make_runner
        ms = {name: 1e3 * secs for name, secs in round_robin(runners, rounds, {}).items()}
        ratios = [ms[name] / ms["fused"] for name in speedups]
        below_one += [(shape, name) for name, r in zip(speedups, ratios, strict=True) if r < 1]
        row = f"{shape!s:>16}" + "".join(f"{ms[n]:16.3f}" for n in names)
        print(row + "".join(f"{r:15.1f}x" for r in ratios))
    print(
        "(naive = the per-step Pearson loss as people write it in Keras; vs X = X's time / "
        "fused time; the full suite: python benchmarks/report.py)"
    )
    for shape, name in below_one:
        print(
            f"note: at {shape} {name} beats the fused op in graph mode: at this size a step is "
            "a few microseconds of work, and XLA compiles the whole naive step into one fused "
            "kernel while graph mode pays TensorFlow's per-op cost for each of corrops' ops."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--timing-rounds", type=int, default=7, help="rounds per timing cell")
    args = parser.parse_args()
    if args.epochs < 1 or args.timing_rounds < 1:
        parser.error("--epochs and --timing-rounds must be >= 1")
    if not corrops.fused_available():
        print(f"note: fused op unavailable ({corrops.unavailable_reason()}); using the fallback")
    train(args.epochs)
    if not args.no_timing and corrops.fused_available():
        timing_table(args.timing_rounds)


if __name__ == "__main__":
    main()

"""What an eager corr_loss call costs beyond the fused op itself.

    python benchmarks/eager_call.py [--rounds R] [--calls N]

Times, round-robin in one process (report.round_robin: one batch of N calls
of each per round, the minimum per call kept), at each shape:
  * the bare op: Corrops>CorrLoss called with prebuilt arguments (inputs
    already in a layout the op takes, the empty mask and eps made once);
  * corrops.corr_loss(y_true, y_pred), eager;
  * corrops.corr_loss with an all-true mask (the general path: validation and
    the canonical reshape on every call), for comparison.
Target: corr_loss at (8, 100, 1) float32 at most 3x the bare op.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import corrops  # noqa: E402
from benchmarks.report import round_robin  # noqa: E402

SHAPES = [(8, 100, 1), (8, 100), (32, 1000, 1)]
TARGET_SHAPE, TARGET = (8, 100, 1), 3.0
SMOKE = bool(os.environ.get("CORROPS_BENCH_SMOKE"))


def runners(shape: tuple, calls: int) -> list:
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(rng.normal(size=shape), tf.float32)
    ops = corrops.load_ops()
    empty, eps = tf.zeros([0], tf.bool), tf.constant(1e-7, tf.float64)
    mask = tf.ones(shape[:2], tf.bool)

    def bare():
        for _ in range(calls):
            ops.corrops_corr_loss(y_true=x, y_pred=y, mask=empty, eps=eps, has_mask=False)

    def lean():
        for _ in range(calls):
            corrops.corr_loss(x, y)

    def general():
        for _ in range(calls):
            corrops.corr_loss(x, y, mask=mask)

    return [((shape, name), fn, calls) for name, fn in (("bare", bare), ("corr_loss", lean),
                                                       ("masked", general))]  # fmt: skip


def measure(rounds: int, calls: int) -> dict:
    """{(shape, contender): seconds per call}, the minimum over rounds."""
    members = [r for shape in SHAPES for r in runners(shape, calls)]
    for _, fn, _ in members:  # warm up: load the library, first-call costs
        fn()
    return round_robin(members, rounds, {})


def table(best: dict) -> list[str]:
    lines = [
        "| shape | bare op (us) | corr_loss (us) | ratio | masked corr_loss (us) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        bare = best[(shape, "bare")]
        lean, general = best[(shape, "corr_loss")], best[(shape, "masked")]
        lines.append(
            f"| {shape} | {bare * 1e6:.1f} | {lean * 1e6:.1f} | {lean / bare:.2f}x "
            f"| {general * 1e6:.1f} | {general / bare:.2f}x |"
        )
    ratio = best[(TARGET_SHAPE, "corr_loss")] / best[(TARGET_SHAPE, "bare")]
    met = "met" if ratio <= TARGET else "not met"
    lines.append(
        f"\nTarget: eager corr_loss at {TARGET_SHAPE} float32 at most {TARGET:.0f}x the bare op: "
        f"{ratio:.2f}x, {met}."
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1 if SMOKE else 30)
    parser.add_argument("--calls", type=int, default=2 if SMOKE else 200)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be >= 1")
    print("\n".join(table(measure(args.rounds, args.calls))))


if __name__ == "__main__":
    main()

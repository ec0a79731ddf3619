"""GPU timings for scripts/gpu_check.sh: forward+backward per training step
(float32, the gradient of the mean w.r.t. y_pred, as benchmarks/contenders.py
measures on the CPU) of the fused op and the naive formula on the first GPU,
in a tf.function and under XLA, and corrops.jax against the jitted naive
formula when JAX has a GPU. Each time is the best of round-robin rounds; the
achieved bandwidth is the step's least bytes (contenders.floor_bytes) over
its time, also as a fraction of the device's read-2-write-1 bandwidth
measured in the same run (x + y on the GPU).

    python benchmarks/gpu_bench.py [--rounds N]

Prints a table, then one summary line; exits 2 without a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import tensorflow as tf

from benchmarks.contenders import BY_NAME, GPU_CONTENDERS, Case, floor_bytes, make_runner
from benchmarks.report import round_robin

SHAPES = [
    (20, 100, 1),
    (1024, 50, 1),
    (64, 1000, 1),
    (16, 1000, 64),
    (256, 2048, 1),
    (32, 2048, 8),
    (256, 4096, 1),
    (64, 65536, 1),
    (4, 1048576, 1),
]
# (contender, the naive contender it is compared with)
PAIRS = [("fused GPU", "naive graph GPU"), ("fused XLA GPU", "naive XLA GPU")]
JAX_PAIR = ("corrops.jax", "naive JAX jit")


def jax_has_gpu() -> bool:
    try:
        import jax

        return bool(jax.devices("gpu"))
    except (ImportError, RuntimeError):
        return False


def copy_bandwidth(rounds: int) -> float:
    """Bytes per second of x + y on the GPU (read two arrays, write one)."""
    n = 1 << 26
    with tf.device("/GPU:0"):
        a, b = tf.random.normal([n]), tf.random.normal([n])
        add = tf.function(lambda a, b: tf.reduce_sum((a + b)[:1]))
        float(add(a, b))
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            float(add(a, b))
            best = min(best, time.perf_counter() - t)
    return 3 * 4 * n / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if not tf.config.list_physical_devices("GPU"):
        print("gpu_bench: TensorFlow sees no GPU", file=sys.stderr)
        return 2
    pairs = list(PAIRS) + ([JAX_PAIR] if jax_has_gpu() else [])
    names = {c.name for c in GPU_CONTENDERS} | {n for pair in pairs for n in pair}
    peak = copy_bandwidth(args.rounds)
    print(f"device read-2-write-1 bandwidth (x + y): {peak / 1e9:.0f} GB/s")
    print(
        f"{'shape':>16} {'contender':>16} {'us/step':>10} {'GB/s':>8} {'of x+y':>7} {'speed-up':>9}"
    )
    speedups: dict[str, list[float]] = {}
    for shape in SHAPES:
        case = Case(shape)
        runners = []
        for name in sorted(names):
            run, k = make_runner(BY_NAME[name], case, tf.float32, backward=True)
            runners.append((name, run, k))
        best = round_robin(runners, args.rounds, {})
        least = floor_bytes(case, tf.float32, backward=True, per_step_grad=False)
        for fused, naive in pairs:
            for name in (naive, fused):
                secs = best[name]
                up = best[naive] / secs if name == fused else None
                if up is not None:
                    speedups.setdefault(fused, []).append(up)
                print(
                    f"{shape!s:>16} {name:>16} {secs * 1e6:10.1f} {least / secs / 1e9:8.0f}"
                    f" {least / secs / peak:7.2f} {'' if up is None else f'{up:8.1f}x':>9}"
                )
    parts = [f"{n} {min(v):.1f}-{max(v):.1f}x the naive formula" for n, v in speedups.items()]
    print(f"gpu_bench: {len(SHAPES)} shapes; " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

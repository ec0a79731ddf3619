"""The floor targets measured in several fresh processes, not one.

    python benchmarks/floor_check.py [--processes N] [--rounds R] [--with KEY=VALUE ...]

On a shared 2-core machine the same build's floor ratio (floor time / fused
fwd+bwd time) at (256, 4096, 1) can come out anywhere from 0.56 to 0.73 in
four processes in a row, and identical input sets in one process can differ
by up to 14%: the process (its memory placement and allocator state) moves
the number more than a round-robin minimum can remove. REPORT.md measures the
targets in one process; this tool shows the spread behind such a number.

Each process measures what report.py's paired probe does for the floor
shapes: the fused step, the loop overhead and the memory-pattern bound (the
fused step with the engine replaced by loops that only move its bytes,
contenders.MEMORY_BOUND) round-robin, the copy bandwidth sampled between
rounds (the highest sample), and prints its ratios.
With `--with`, processes alternate between the default environment and the
one given (e.g. `--with TF_CPU_ALLOCATOR_USE_BFC=true`, TensorFlow's own
caching allocator instead of glibc's malloc), N processes each, so drift over
minutes lands on both alike. The median over processes is printed beside
each process's value; nothing is dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402

ROUNDS = 1 if os.environ.get("CORROPS_BENCH_SMOKE") else 15
TARGET = 0.65


def floor_ratios(result: dict) -> dict[str, tuple[float, float, float]]:
    """Per floor shape: floor time / the fused step's, the loop overhead's and
    the memory-pattern bound's time."""
    import tensorflow as tf

    from benchmarks.contenders import Case, floor_bytes

    out = {}
    for key, t in result["times"].items():
        shape = tuple(int(v) for v in key.strip("[]").split(","))
        floor = floor_bytes(Case(shape), tf.float32, backward=True) / (result["bandwidth"] * 1e9)
        out[key] = (floor / t["fused"], floor / t["overhead"], floor / t["bound"])
    return out


def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--with wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def summary(label: str, runs: list[dict]) -> list[str]:
    """Lines for one environment: each process's ratios, then the medians."""
    lines = [f"{label}:"]
    per_shape: dict[str, dict[str, list[float]]] = {}
    for i, run in enumerate(runs):
        ratios = floor_ratios(run)
        cells = [
            f"{k} fused {f:.2f} (loop overhead {o:.2f}, memory-pattern bound {b:.2f})"
            for k, (f, o, b) in ratios.items()
        ]
        lines.append(f"  process {i + 1}: {run['bandwidth']:.1f} GB/s; " + "; ".join(cells))
        for k, (f, _, b) in ratios.items():
            series = per_shape.setdefault(k, {"fused": [], "memory-pattern bound": []})
            series["fused"].append(f)
            series["memory-pattern bound"].append(b)
    for k, series in per_shape.items():
        for name, values in series.items():
            lines.append(
                f"  {k} {name}: median {statistics.median(values):.2f}, "
                f"range {min(values):.2f}-{max(values):.2f}, "
                f">= {TARGET} in {sum(v >= TARGET for v in values)} of {len(values)} processes"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5, help="processes per environment")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="round-robin rounds each")
    parser.add_argument("--with", dest="env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.rounds < 1:
        raise SystemExit("--processes and --rounds must be >= 1")
    envs = [("default environment", {})]
    if args.env:
        extra = parse_env(args.env)
        envs.append((" ".join(f"{k}={v}" for k, v in extra.items()), extra))
    runs: dict[str, list[dict]] = {label: [] for label, _ in envs}
    for _ in range(args.processes):
        for label, extra in envs:  # alternating: drift lands on each alike
            runs[label].append(report.run_script("floor", str(args.rounds), extra_env=extra))
    for label, _ in envs:
        print("\n".join(summary(label, runs[label])))


if __name__ == "__main__":
    main()

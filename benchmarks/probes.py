"""The measurements report.py and floor_check.py run in fresh processes.

    python -m benchmarks.probes NAME [ARG]     # prints one JSON object

Each runs in a process of its own (report.run_script) so that its TF
settings (thread counts, the allocator) and its memory state start fresh:
- `memory`: peak temporary memory of forward+backward at (256, 4096, 1);
- `threads N`: the step at (256, 4096, 1) with N intra-op threads (the fused
  op, the loop overhead, the memory-pattern bound) and the memory system's
  bandwidth with N threads, measured next to it;
- `paired`: the contenders each target compares, round-robin (PAIRED_GROUPS),
  with the copy bandwidth sampled between rounds;
- `forward`: the fused forward alone against TF's `x + y` over the same arrays;
- `engine`: the bare engine (NumPy binding) with 1 and 2 threads alternating,
  and the memory system's read-2-write-1 bandwidth likewise;
- `floor R`: the floor targets' members (fused, loop overhead, bound), R rounds.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from benchmarks.report import (
    ENGINE_ROUNDS,
    FORWARD_ROUNDS,
    PAIRED_ALONE,
    PAIRED_FLOOR,
    PAIRED_GROUPS,
    PAIRED_OVERHEAD,
    PAIRED_ROUNDS,
    THREADS_ROUNDS,
    round_robin,
    stream_bandwidth,
)


def memory() -> dict:
    import corrops

    shape = (256, 4096, 1)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    y = tf.constant(rng.normal(size=shape), tf.float32)
    out = {}
    for name, impl, jit in [
        ("fused", "fused", False),
        ("fallback graph", "tf", False),
        ("fallback XLA", "tf", True),
    ]:

        @tf.function(jit_compile=jit)
        def step(x, y, impl=impl):
            with tf.GradientTape() as tape:
                tape.watch(y)
                total = tf.reduce_mean(corrops.corr_loss(x, y, impl=impl))
            return tape.gradient(total, y)

        step(x, y)  # trace and compile first
        base = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        g = step(x, y)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        # Temporaries: the peak above what was live before, less the result itself.
        out[name] = peak - base - int(np.prod(g.shape)) * 4
        del g
    return out


def threads(count: str) -> dict:
    n = int(count)
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from benchmarks.contenders import BY_NAME, LOOP_OVERHEAD, MEMORY_BOUND, Case, make_runner

    named = {**BY_NAME, MEMORY_BOUND.name: MEMORY_BOUND}
    runners = [
        (name, *make_runner(named[name], Case((256, 4096, 1)), tf.float32, True))
        for name in ("fused", LOOP_OVERHEAD, MEMORY_BOUND.name)
    ]
    out = round_robin(runners, THREADS_ROUNDS, {})
    # Bandwidth on a shared machine drifts over minutes: measured next to the step.
    out["bandwidth"] = stream_bandwidth(n, megabytes=256, pattern="add")
    return out


def _bandwidth_sampler(shapes: list[tuple], every: int = 5) -> tuple[Callable, list[float]]:
    """A round_robin `between` that samples the copy bandwidth every `every`
    rounds when a floor shape is among `shapes`; the samples go to the list."""
    samples = [0.0]

    def between(r: int) -> None:
        if r % every == 0 and any(s in PAIRED_FLOOR for s in shapes):
            samples.append(stream_bandwidth(repeats=3))

    return between, samples


def paired() -> dict:
    from benchmarks.contenders import (
        BY_NAME,
        LOOP_ALONE,
        LOOP_OVERHEAD,
        MEMORY_BOUND,
        Case,
        make_runner,
    )

    best: dict = {}
    bandwidth = 0.0
    named = {**BY_NAME, MEMORY_BOUND.name: MEMORY_BOUND, LOOP_ALONE.name: LOOP_ALONE}
    for targets in PAIRED_GROUPS:
        shapes = list(dict.fromkeys(shape for _, shape, _ in targets))
        members = list(targets)
        members += [(LOOP_OVERHEAD, s, False) for s in shapes if s in PAIRED_OVERHEAD]
        members += [(LOOP_ALONE.name, s, False) for s in shapes if s in PAIRED_ALONE]
        members += [(MEMORY_BOUND.name, s, False) for s in shapes if s in PAIRED_FLOOR]
        runners = [
            (m, *make_runner(named[m[0]], Case(m[1], m[2]), tf.float32, True)) for m in members
        ]
        between, samples = _bandwidth_sampler(shapes)
        round_robin(runners, PAIRED_ROUNDS, best, between)
        bandwidth = max(bandwidth, *samples)
    rows = [
        dict(contender=n, shape=list(s), masked=m, dtype="float32", backward=True, seconds=t)
        for (n, s, m), t in best.items()
    ]
    return {"rows": rows, "bandwidth": bandwidth}


def forward() -> dict:
    from benchmarks.contenders import BY_NAME, Case, Contender, make_runner

    add = Contender("x + y", lambda a, b, m=None: tf.squeeze(a + b, -1), "graph")
    out = {}
    for shape in PAIRED_FLOOR:
        runners = [
            (c.name, *make_runner(c, Case(shape), tf.float32, False))
            for c in (BY_NAME["fused"], add)
        ]
        best = round_robin(runners, FORWARD_ROUNDS, {})
        out[str(list(shape))] = {"fused": best["fused"], "add": best["x + y"]}
    return out


def engine() -> dict:
    from corrops import _corrops_numpy as native

    b, t, k = 256, 4096, 4
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(b, t, 1, 1)).astype(np.float32) for _ in range(k)]
    ys = [rng.normal(size=(b, t, 1, 1)).astype(np.float32) for _ in range(k)]
    g = np.full((b, 1, 1), 1.0 / (b * t), np.float32)

    def step(n: int) -> None:
        for i in range(k):
            _, st = native.forward_f32(xs[i], ys[i], None, "pearson", 1e-7, n)
            native.backward_f32(g, xs[i], ys[i], None, st, "pearson", 1e-7, n)

    times: dict[int, list[float]] = {1: [], 2: []}
    bandwidth: dict[int, list[float]] = {1: [], 2: []}
    for r in range(ENGINE_ROUNDS):
        for n in (1, 2):
            start = time.perf_counter()
            step(n)
            times[n].append((time.perf_counter() - start) / k)
            if r % 10 == 0:
                bandwidth[n].append(stream_bandwidth(n, megabytes=256, repeats=3, pattern="add"))
    return {
        "engine_1": min(times[1]),
        "engine_2": min(times[2]),
        "bandwidth_1": max(bandwidth[1]),
        "bandwidth_2": max(bandwidth[2]),
    }


def floor(rounds: str) -> dict:
    from benchmarks.contenders import BY_NAME, LOOP_OVERHEAD, MEMORY_BOUND, Case, make_runner

    out = {}
    between, samples = _bandwidth_sampler(list(PAIRED_FLOOR))
    for shape in PAIRED_FLOOR:
        contenders = (BY_NAME["fused"], BY_NAME[LOOP_OVERHEAD], MEMORY_BOUND)
        runners = [(c.name, *make_runner(c, Case(shape), tf.float32, True)) for c in contenders]
        best = round_robin(runners, int(rounds), {}, between)
        out[str(list(shape))] = {
            "fused": best["fused"],
            "overhead": best[LOOP_OVERHEAD],
            "bound": best[MEMORY_BOUND.name],
        }
    return {"times": out, "bandwidth": max(samples)}


PROBES: dict[str, Callable[..., dict]] = {
    "memory": memory,
    "threads": threads,
    "paired": paired,
    "forward": forward,
    "engine": engine,
    "floor": floor,
}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(PROBES[name](*args)))

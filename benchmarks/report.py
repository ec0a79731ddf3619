"""Runs the benchmark suite and writes benchmarks/REPORT.md, report.png and
README.md's speed table.

    python benchmarks/report.py [--quick] [--readme]

Measured in the same run: the machine's streaming bandwidth (a copy on all
cores), the suite (median time per iteration of every contender), peak
temporary memory of forward+backward (TF's BFC allocator statistics, in a
subprocess) and the fused op's intra-op thread scaling (subprocesses). Speed
targets are stated as ratios from this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))
from benchmarks.targets import (  # noqa: E402
    MEMORY_FLOOR,
    TARGETS,
    Target,
    paired_groups,
    shapes_with,
)

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stream_bandwidth(
    cores: int = 0, megabytes: int = 512, repeats: int = 7, pattern: str = "copy"
) -> float:
    """GB/s of a streaming pass split over `cores` threads, all cores by
    default, counting bytes read + bytes written. pattern "copy" copies one
    array; "add" reads two arrays and writes a third with ordinary stores, the
    fused op's own access pattern (read x, y; write the loss or gradient)."""
    n = megabytes * 2**20 // 8
    src = np.ones(n)
    other = np.ones(n) if pattern == "add" else src
    dst = np.empty_like(src)
    cores = cores or os.cpu_count() or 1
    bounds = np.linspace(0, n, cores + 1).astype(int)

    def part(i: int) -> None:
        s = slice(bounds[i], bounds[i + 1])
        if pattern == "add":
            np.add(src[s], other[s], out=dst[s])
        else:
            np.copyto(dst[s], src[s])

    best = float("inf")
    for _ in range(repeats):
        threads = [threading.Thread(target=part, args=(i,)) for i in range(cores)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = min(best, time.perf_counter() - start)
    arrays = 3 if pattern == "add" else 2
    return arrays * src.nbytes / best / 1e9


# The step at (256, 4096, 1) with this many intra-op threads: the fused op,
# the loop overhead and the memory-pattern bound (the fastest step with the
# fused op's structure), round-robin in one process.
THREADS_ROUNDS = 1 if os.environ.get("CORROPS_BENCH_SMOKE") else 15


def round_robin(runners, rounds: int, best: dict, between=None) -> dict:
    """Times each runner (key, run, k) once per round, `rounds` rounds, and
    keeps each key's minimum time per iteration in `best` (returned).
    `between(r)`, if given, runs after round r. One call of each per round:
    a burst of interference on a shared machine then lands on all alike."""
    for r in range(rounds):
        for member, run, k in runners:
            t = time.perf_counter()
            run()
            secs = (time.perf_counter() - t) / k
            best[member] = min(best.get(member, secs), secs)
        if between is not None:
            between(r)
    return best


# The contenders each target compares, measured round-robin in one process:
# one call of each per round, so a burst of interference on a shared machine
# (it lasts seconds, longer than one contender's rounds in the suite) lands on
# all of them alike instead of on one. Each entry: (contender, shape, masked).
PAIRED_GROUPS = paired_groups(TARGETS)
# Shapes whose loop overhead rides along (the bound is paired too), and those
# whose group measures the bandwidth between rounds and times the
# memory-pattern bound (floor targets; contenders.MEMORY_BOUND).
PAIRED_FLOOR = shapes_with(TARGETS, "floor")
# (The bound names are contenders.LOOP_OVERHEAD and LOOP_ALONE.name, spelled
# out: the report's own process does not import TensorFlow.)
PAIRED_OVERHEAD = list(
    dict.fromkeys(shapes_with(TARGETS, "speed-up", "loop overhead (x*y)") + PAIRED_FLOOR)
)
# Shapes whose group also times the loop alone (contenders.LOOP_ALONE): the
# speed-up targets' strict bound.
PAIRED_ALONE = shapes_with(TARGETS, "speed-up", "loop alone (no loss)")
PAIRED_ROUNDS = 1 if os.environ.get("CORROPS_BENCH_SMOKE") else 25


# The fused forward alone against the machine's read-2-write-1 speed at the
# floor shapes: TF's own x + y (read x, y; write one per-step tensor with
# plain stores, which the forward must use too: the mean reads the loss next)
# in the same loop, alternating with the fused forward in one process. The
# floor assumes memcpy's non-temporal copy bandwidth for every byte.
FORWARD_ROUNDS = 1 if os.environ.get("CORROPS_BENCH_SMOKE") else 20

# The bare engine's own thread scaling, with no TF plumbing and no process-to-
# process noise: the NumPy binding's fwd+bwd (the compact upstream gradient of
# a mean, as in the TF step) with 1 and 2 threads alternating in one process,
# and the memory system's read-2-write-1 bandwidth with 1 and 2 threads
# alternating in the same process. A memory-bound engine scales as the memory
# system does; this pair says whether the engine leaves scaling on the table.
ENGINE_ROUNDS = 1 if os.environ.get("CORROPS_BENCH_SMOKE") else 30


def run_script(probe: str, *args: str, extra_env: dict | None = None):
    """Runs benchmarks/probes.py's `probe` in a fresh process; returns its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.probes", probe, *args],
        env={**ENV, **(extra_env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_suite(json_path: Path, quick: bool) -> list[dict]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE / "test_bench.py"),  # the suite; the report's own tests run with the tests
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={json_path}",
    ]
    if quick:
        cmd += ["-k", "float32 and fwd+bwd"]
    subprocess.run(cmd, env=ENV, check=True, cwd=ROOT)
    rows = []
    for bench in json.loads(json_path.read_text())["benchmarks"]:
        info = bench["extra_info"]
        # The minimum over rounds: on a shared machine (steal time) interference
        # only ever adds time, so the minimum is the stable statistic.
        info["seconds"] = bench["stats"]["min"] / info["iterations"]
        info["median_seconds"] = bench["stats"]["median"] / info["iterations"]
        rows.append(info)
    return rows


def key(r: dict) -> tuple:
    return (tuple(r["shape"]), r["masked"], r["dtype"], r["backward"])


def case_label(shape, masked) -> str:
    return f"({', '.join(map(str, shape))})" + (" masked" if masked else "")


@dataclass(frozen=True)
class Outcome:
    """A target judged on this run's measurements. Where this run measured a
    bound on what any implementation could reach (the loop overhead, the
    memory system's thread scaling), `reachable` says whether that bound meets
    the target; None where no bound is measured. `value`: the measured ratio."""

    name: str
    wanted: str
    measured: str
    met: bool
    reachable: bool | None = None
    value: float | None = None

    @property
    def verdict(self) -> str:
        if self.met:
            return "yes"
        if self.reachable is False:
            return "**no**: the bound measured in this run is below the target"
        return "**no**"


def ratio_text(value: float, threshold: float) -> str:
    """`value` to 2 decimals, or 3 where 2 would round a miss up to the threshold
    (0.649 against 0.65 prints 0.649, never a 0.65 marked missed)."""
    text = f"{value:.2f}"
    if value < threshold <= float(text):
        text = f"{value:.3f}"
    return text


def bound_note(
    bound: float | None,
    fused: float,
    at_most: str,
    measured: str,
    where: str = "",
) -> tuple[bool, str | None]:
    """Whether a bound's time `bound` bounds a target, and the note saying so.

    A bound (the loop overhead, the memory-pattern bound) counts only if it
    measured no slower than the fused step (`fused`): one that is slower bounds
    nothing, and quoting it as "at most" would claim less than the fused step
    already reaches. `at_most` is the note of a bound that counts, `measured`
    the bound's time or ratio; no bound time (None or 0): (False, None)."""
    if not bound:
        return False, None
    if bound <= fused:
        return True, at_most
    return False, f"{measured}, slower than the fused step{where} here: no bound"


def _outcome(target: Target, value: float, text: str, notes=(), reachable=None) -> Outcome:
    notes = [n for n in notes if n]
    return Outcome(
        target.name,
        target.wanted,
        text + (f" ({'; '.join(notes)})" if notes else ""),
        target.met_by(value),
        reachable,
        value,
    )


class _Measured:
    """This run's measurements, as the target evaluators read them."""

    def __init__(self, rows, bandwidth, memory, scaling, forward):
        self.by = {(r["contender"], *key(r)): r["seconds"] for r in rows}
        self.bandwidth, self.memory, self.scaling = bandwidth, memory, scaling
        self.forward = forward or {}

    def time(self, name, shape, masked=False) -> float | None:
        return self.by.get((name, tuple(shape), masked, "float32", True))


def _speed_up(target: Target, m: _Measured) -> Outcome | None:
    import tensorflow as tf

    from benchmarks.contenders import LOOP_ALONE, LOOP_OVERHEAD, Case, floor_bytes

    f, s = m.time(target.contender, target.shape), m.time(str(target.against), target.shape)
    if not (f and s):
        return None
    notes, bounds = [], []
    if LOOP_ALONE.name in target.bounds:
        # The loop alone is strict (every contender runs its ops).
        a = m.time(LOOP_ALONE.name, target.shape)
        x = f"{s / a:.1f}x" if a else ""
        alone, note = bound_note(a, f, f"at most {x}: the loop alone", f"the loop alone {x}")
        if alone and a < f:
            note += f"; net of it {(s - a) / (f - a):.1f}x"
        notes.append(note)
        bounds += [a] if alone else []
    if LOOP_OVERHEAD in target.bounds:
        # The x*y loop overhead runs more ops than the fused step, and at tiny
        # shapes it or noise can make it the slower of the two.
        o = m.time(LOOP_OVERHEAD, target.shape)
        x = f"{s / o:.1f}x" if o else ""
        counts, note = bound_note(o, f, f"at most {x}: loop overhead", f"loop overhead {x}")
        notes.append(note)
        bounds += [o] if counts else []
    for name in target.bounds:
        if name in (LOOP_ALONE.name, LOOP_OVERHEAD, MEMORY_FLOOR):
            continue
        # A bound of the target's own framework (its loop with x*y as the
        # loss), not strict as the x*y loop overhead above.
        o = m.time(name, target.shape)
        x = f"{s / o:.1f}x" if o else ""
        counts, note = bound_note(o, f, f"at most {x}: {name}", f"{name} {x}")
        notes.append(note)
        bounds += [o] if counts else []
    if MEMORY_FLOOR in target.bounds:
        # The least a step with a reduced loss moves, at this run's bandwidth:
        # x and y read by the forward and again by the backward, the gradient
        # written once (the forward's statistics are all the backward needs
        # besides them). No implementation is faster than the memory system.
        bytes_ = floor_bytes(Case(target.shape), tf.float32, backward=True, per_step_loss=False)
        floor_t = bytes_ / (m.bandwidth * 1e9)
        x = f"{s / floor_t:.1f}x"
        notes.append(
            f"at most {x}: the memory floor, x and y read twice and the gradient "
            f"written once at {m.bandwidth:.1f} GB/s"
        )
        bounds.append(floor_t)
    reachable = target.met_by(s / max(bounds)) if bounds else None
    return _outcome(target, s / f, f"{s / f:.1f}x", notes, reachable)


def _floor(target: Target, m: _Measured) -> Outcome | None:
    import tensorflow as tf

    from benchmarks.contenders import LOOP_OVERHEAD, MEMORY_BOUND, Case, floor_bytes

    f = m.time(target.contender, target.shape)
    if not f:
        return None
    floor_t = floor_bytes(Case(target.shape), tf.float32, backward=True) / (m.bandwidth * 1e9)
    ratio = floor_t / f
    # The memory-pattern bound: the fused op's structure with nothing to compute.
    b = m.time(MEMORY_BOUND.name, target.shape)
    v = floor_t / b if b else 0.0
    bounded, note = bound_note(
        b,
        f,
        f"at most {ratio_text(v, target.threshold)}: memory-pattern bound",
        f"memory-pattern bound {v:.2f}",
    )
    notes = [note]
    o = m.time(LOOP_OVERHEAD, target.shape)
    if o:
        notes.append(f"loop overhead alone: {floor_t / o:.2f}")
    fwd = m.forward.get(str(list(target.shape)))
    if fwd:
        notes.append(
            f"forward alone {fwd['fused'] * 1e3:.3f} ms, {fwd['fused'] / fwd['add']:.2f}x "
            f"TF's x + y over the same arrays ({fwd['add'] * 1e3:.3f} ms)"
        )
    reachable = target.met_by(v) if bounded else None
    return _outcome(target, ratio, ratio_text(ratio, target.threshold), notes, reachable)


def _memory(target: Target, m: _Measured) -> Outcome | None:
    if not m.memory:
        return None
    ratio = m.memory[target.contender] / max(m.memory[str(target.against)], 1)
    return _outcome(target, ratio, f"{ratio:.2f}")


def _threads(target: Target, m: _Measured) -> Outcome | None:
    import tensorflow as tf

    from benchmarks.contenders import LOOP_OVERHEAD, MEMORY_BOUND, Case, floor_bytes

    scaling = m.scaling
    if not scaling:
        return None
    t1, t2 = scaling["1"][target.contender], scaling["2"][target.contender]
    ratio = t1 / t2
    # The step's TF ops (mean, its gradient) scale as they scale.
    plumbing = scaling["1"][LOOP_OVERHEAD] / scaling["2"][LOOP_OVERHEAD]
    notes = [f"loop overhead alone: {plumbing:.2f}x"]
    reachable = None
    m1, m2 = scaling["1"].get(MEMORY_BOUND.name), scaling["2"].get(MEMORY_BOUND.name)
    # No step with the fused op's structure (forward op, TF's mean, backward
    # op) beats the bound on 2 threads, so T1 / its time bounds the speed-up
    # from this 1-thread time.
    measured = (
        f"memory-pattern bound 1 -> 2 threads {m1 * 1e3:.3f} -> {m2 * 1e3:.3f} ms ({m1 / m2:.2f}x)"
        if m1 and m2
        else ""
    )
    bounded, note = bound_note(
        m2 if m1 else None,
        t2,
        f"{measured}, so at most {t1 / m2 if m2 else 0:.2f}x from this 1-thread time",
        measured,
        where=" on 2 threads",
    )
    notes.append(note)
    if bounded:
        reachable = target.met_by(t1 / m2)
    bw1, bw2 = scaling["1"].get("bandwidth"), scaling["2"].get("bandwidth")
    if bw1 and bw2:
        # A memory-bound step cannot take less than its bytes at the 2-thread
        # bandwidth, so T1 / that time bounds the speed-up of any
        # implementation as fast as this one on one thread.
        case = Case(target.shape)
        floor_2 = floor_bytes(case, tf.float32, True, per_step_grad=False) / (bw2 * 1e9)
        notes.append(
            f"read-2-write-1 bandwidth 1 -> 2 threads {bw1:.1f} -> {bw2:.1f} GB/s "
            f"({bw2 / bw1:.2f}x); bytes at the 2-thread bandwidth take "
            f"{floor_2 * 1e3:.3f} ms, so at most {t1 / floor_2:.2f}x from this 1-thread time"
        )
        reachable = reachable is not False and target.met_by(t1 / floor_2)
    engine = scaling.get("engine")
    if engine:
        notes.append(
            "bare engine in one process, 1 and 2 threads alternating: "
            f"{engine['engine_1'] / engine['engine_2']:.2f}x, with the memory system's "
            f"{engine['bandwidth_2'] / engine['bandwidth_1']:.2f}x in the same process"
        )
    return _outcome(target, ratio, f"{ratio:.2f}x", notes, reachable)


def _same_count(target: Target, m: _Measured) -> Outcome | None:
    other = m.time(target.contender, target.shape, target.masked)
    base = m.time(target.contender, target.base or target.shape)
    if not (base and other):
        return None
    return _outcome(target, other / base, f"{other / base:.2f}x")


EVALUATORS = {
    "speed-up": _speed_up,
    "floor": _floor,
    "memory": _memory,
    "threads": _threads,
    "same-count": _same_count,
}


def evaluate_targets(
    rows, bandwidth, memory, scaling, forward=None, targets: list[Target] = TARGETS
) -> list[Outcome]:
    """Each target of benchmarks/targets.json judged on this run; a target
    whose measurements are missing is left out. `forward` (probes.forward's
    result, optional): the fused forward alone and TF's x + y in one process,
    per floor shape."""
    measured = _Measured(rows, bandwidth, memory, scaling, forward)
    outcomes = (EVALUATORS[t.kind](t, measured) for t in targets)
    return [o for o in outcomes if o is not None]


def cpu_isa() -> str:
    """The engine copy in use, and where it is AVX-512, the input size below
    which a call runs the AVX2 copy instead (cpu_dispatch.h engine_isa)."""
    try:
        from corrops import _corrops_numpy
    except ImportError:
        return "unknown (NumPy module not built)"
    isa = _corrops_numpy.cpu_isa()
    if isa != "avx512":
        return isa
    limit = _corrops_numpy.avx512_min_input_bytes()
    return f"avx512 (avx2 for calls with under {limit / 2**20:g} MiB of input)"


def write_report(
    rows,
    bandwidth,
    memory,
    scaling,
    quick,
    bandwidth_1core=None,
    out_dir: Path = HERE,
    paired_rows=None,
    paired_bandwidth=None,
    forward=None,
) -> None:
    """Writes REPORT.md. The targets come from `paired_rows` and
    `paired_bandwidth` (probes.paired's round-robin measurements, the
    bandwidth sampled between those rounds) where given, else from the
    suite's rows and the start-of-run bandwidth; `forward`: probes.forward's
    result, quoted with the floor targets."""
    import tensorflow as tf

    from benchmarks.contenders import LOOP_OVERHEAD

    lines = [
        "# corrops benchmark report",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}; "
        f"streaming bandwidth (copy on all cores, read+write) **{bandwidth:.1f} GB/s**"
        + (f" ({bandwidth_1core:.1f} GB/s on one core)" if bandwidth_1core else "")
        + ", measured at the start of this run.",
        "",
        "Generated by `python benchmarks/report.py`" + (" --quick" if quick else "") + ". "
        "How the numbers are taken: [docs/BENCHMARKS.md](../docs/BENCHMARKS.md). Times are "
        "per iteration; `ms (min)` is the minimum over the rounds, and every ratio is taken "
        "from it; `ms (median)` is printed beside it. `vs fused` = contender time / fused "
        "time; `floor` = the time to move an ideal fused op's bytes once at the measured "
        "bandwidth, divided by the contender's time (1.0 = at the floor). "
        f"`{LOOP_OVERHEAD}` and `the loop alone` are not losses: the benchmark loop with a "
        "product as the loss, and with no loss at all.",
        "",
        f"CPU engine instruction set in this run: {cpu_isa()} "
        "(run-time dispatch, csrc/core/cpu_dispatch.h).",
        "",
    ]
    targets = evaluate_targets(
        paired_rows or rows, paired_bandwidth or bandwidth, memory, scaling, forward
    )
    lines += ["## Targets", ""]
    if paired_rows:
        lines += [
            "Float32 forward+backward. The times a target compares are measured round-robin "
            f"in one process, {PAIRED_ROUNDS} rounds; the floor targets use the copy bandwidth "
            "sampled between those rounds"
            + (f" ({paired_bandwidth:.1f} GB/s, the highest sample)" if paired_bandwidth else "")
            + ". A bound quoted beside a target (the loop alone, the memory-pattern bound) was "
            "measured in the same rounds. The tables after the targets are the suite's own "
            "sequential measurements, at the start-of-run bandwidth.",
            "",
        ]
    lines += ["| target | wanted | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {t.wanted} | {t.measured} | {t.verdict} |" for t in targets]
    if forward:
        lines += [
            "",
            "Floor targets, the forward alone (benchmarks/probes.py, forward): the "
            "fused forward and TF's own x + y, which moves the same bytes (read x and y, "
            "write one per-step tensor with ordinary stores), alternating in one loop, "
            f"{FORWARD_ROUNDS} rounds, the minimum of each: "
            + "; ".join(
                f"{shape.replace('[', '(').replace(']', ')')} {v['fused'] * 1e3:.3f} ms vs "
                f"{v['add'] * 1e3:.3f} ms ({v['fused'] / v['add']:.2f}x)"
                for shape, v in forward.items()
            )
            + ". The floor counts every byte at memcpy's copy bandwidth, whose stores bypass "
            "the cache; the forward's loss cannot (the mean reads it next), so a store to a line "
            "not in cache first reads it from memory.",
        ]
    if memory:
        lines += [
            "",
            "Peak temporary memory of forward+backward at (256, 4096, 1) float32 "
            "(TF BFC allocator statistics, beyond inputs and the returned gradient): "
            + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in memory.items())
            + ".",
        ]
    if scaling:
        lines += [
            "",
            "Forward+backward at (256, 4096, 1) float32 with 1 and 2 intra-op threads: "
            + "; ".join(
                f"{name} {scaling['1'][name] * 1e3:.3f} -> {scaling['2'][name] * 1e3:.3f} ms"
                for name in scaling["1"]
                if name != "bandwidth"
            )
            + ".",
        ]
        engine = scaling.get("engine")
        if engine:
            lines += [
                "",
                "The bare engine (NumPy binding, fwd+bwd with the compact upstream gradient, "
                "both input gradients, (256, 4096, 1) float32), 1 and 2 threads alternating in "
                "one process: "
                f"{engine['engine_1'] * 1e3:.3f} -> {engine['engine_2'] * 1e3:.3f} ms "
                f"({engine['engine_1'] / engine['engine_2']:.2f}x); the memory system's "
                "read-2-write-1 bandwidth alternating in the same process: "
                f"{engine['bandwidth_1']:.1f} -> {engine['bandwidth_2']:.1f} GB/s "
                f"({engine['bandwidth_2'] / engine['bandwidth_1']:.2f}x).",
            ]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    for backward in (True, False):
        lines += ["", f"## {'Forward + backward' if backward else 'Forward only'}", ""]
        for k in sorted(groups, key=lambda k: (k[2], k[1], k[0])):
            if k[3] != backward:
                continue
            group = groups[k]
            fused = next((r["seconds"] for r in group if r["contender"] == "fused"), None)
            lines += [
                f"### {case_label(k[0], k[1])}, {k[2]}",
                "",
                "| contender | ms (min) | ms (median) | vs fused | floor |",
                "|---|---|---|---|---|",
            ]
            for r in sorted(group, key=lambda r: r["seconds"]):
                floor_t = r["floor_bytes"] / (bandwidth * 1e9)
                vs = f"{r['seconds'] / fused:.2f}x" if fused else "-"
                median = r.get("median_seconds")
                median_ms = f"{median * 1e3:.3f}" if median else "-"
                lines.append(
                    f"| {r['contender']} | {r['seconds'] * 1e3:.3f} | {median_ms} | {vs} | "
                    f"{floor_t / r['seconds']:.2f} |"
                )
            lines.append("")
    lines += ["![time against T](report.png)", ""]
    (out_dir / "REPORT.md").write_text("\n".join(lines))


README_BEGIN = "<!-- begin: targets, written by benchmarks/report.py -->"
README_END = "<!-- end: targets -->"


def readme_targets(report_text: str) -> str:
    """README.md's speed table: the targets table of a REPORT.md text with
    each measurement's value only (the report keeps the bounds beside it)."""
    machine = next(
        line.split(";", 1)[0].removeprefix("Machine: ")
        for line in report_text.splitlines()
        if line.startswith("Machine: ")
    )
    section = report_text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    lines = [
        f"Measured on {machine}:",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---|---|",
    ]
    for row in rows:
        name, wanted, measured, verdict = (c.strip() for c in row.strip("|").split(" | "))
        met = "yes" if verdict == "yes" else "no"
        lines.append(f"| {name} | {wanted} | {measured.split(' (')[0]} | {met} |")
    return "\n".join(lines)


def update_readme(readme: Path, report_text: str) -> None:
    """Replaces README.md's speed table (between README_BEGIN and README_END)
    with the one readme_targets makes from `report_text`."""
    text = readme.read_text()
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    table = readme_targets(report_text)
    readme.write_text(f"{head}{README_BEGIN}\n{table}\n{README_END}{tail}")


def plot(rows, bandwidth) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [
        r
        for r in rows
        if r["dtype"] == "float32" and r["backward"] and not r["masked"] and r["shape"][2] == 1
    ]
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in sorted({r["contender"] for r in sel}):
        pts = sorted(
            (r["shape"][1], r["seconds"], r["shape"][0]) for r in sel if r["contender"] == name
        )
        ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], marker="o", label=name)
    floor = sorted(
        (r["shape"][1], r["floor_bytes"] / (bandwidth * 1e9))
        for r in sel
        if r["contender"] == "fused"
    )
    ax.plot(
        [p[0] for p in floor],
        [p[1] * 1e3 for p in floor],
        "k--",
        lw=2,
        label=f"bandwidth floor ({bandwidth:.0f} GB/s)",
    )
    labels = {r["shape"][1]: f"T={r['shape'][1]}\nB={r['shape'][0]}" for r in sel}
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted(labels), [labels[t] for t in sorted(labels)])
    ax.set_xlabel("time steps T (batch B as in the grid)")
    ax.set_ylabel("forward+backward, ms per step (float32)")
    ax.set_title("corrops vs the naive formula and the fallback")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "report.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="float32 forward+backward only")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="only rewrite README.md's speed table from the existing REPORT.md",
    )
    args = parser.parse_args()
    if args.readme:
        update_readme(ROOT / "README.md", (HERE / "REPORT.md").read_text())
        return
    bandwidth, bandwidth_1core = stream_bandwidth(), stream_bandwidth(cores=1)
    print(f"streaming bandwidth: {bandwidth:.1f} GB/s ({bandwidth_1core:.1f} on one core)")
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_suite(Path(tmp) / "bench.json", args.quick)
    memory = run_script("memory", extra_env={"TF_CPU_ALLOCATOR_USE_BFC": "true"})
    paired = run_script("paired")
    # Two processes per thread count, alternating, the minimum of each: a burst
    # of interference then cannot land on one thread count alone.
    runs = [(n, run_script("threads", n)) for _ in range(2) for n in ("1", "2")]
    # Times: the minimum; bandwidth: the maximum (interference only lowers it).
    best = {name: max if name == "bandwidth" else min for name in runs[0][1]}
    scaling = {
        n: {name: pick(t[name] for m, t in runs if m == n) for name, pick in best.items()}
        for n in ("1", "2")
    }
    scaling["engine"] = run_script("engine")
    forward = run_script("forward")
    write_report(
        rows,
        bandwidth,
        memory,
        scaling,
        args.quick,
        bandwidth_1core,
        paired_rows=paired["rows"],
        paired_bandwidth=paired["bandwidth"],
        forward=forward,
    )
    plot(rows, bandwidth)
    if not args.quick:  # the README quotes full runs only
        update_readme(ROOT / "README.md", (HERE / "REPORT.md").read_text())
    print((HERE / "REPORT.md").read_text())


if __name__ == "__main__":
    main()

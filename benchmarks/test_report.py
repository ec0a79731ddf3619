"""The report's arithmetic on made-up timings: which targets it calls met,
the bounds it quotes, and that it writes a table per case."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import tensorflow as tf

from benchmarks import report
from benchmarks.contenders import LOOP_ALONE, LOOP_OVERHEAD, MEMORY_BOUND, Case, floor_bytes

BANDWIDTH = 40.0  # GB/s


def _row(name: str, shape, seconds: float, masked: bool = False) -> dict:
    return {
        "contender": name,
        "shape": list(shape),
        "masked": masked,
        "dtype": "float32",
        "backward": True,
        "iterations": 4,
        "floor_bytes": floor_bytes(Case(tuple(shape), masked), tf.float32, True),
        "seconds": seconds,
    }


def _floor_seconds(shape) -> float:
    return floor_bytes(Case(shape), tf.float32, True) / (BANDWIDTH * 1e9)


@pytest.fixture
def rows() -> list[dict]:
    out = []
    for shape, seed, fused in [((20, 100, 1), 40e-6, 10e-6), ((64, 1000, 1), 200e-6, 60e-6)]:
        out += [_row("naive graph", shape, seed), _row("fused", shape, fused)]
        out.append(_row(LOOP_OVERHEAD, shape, fused / 2))
    big = (256, 4096, 1)
    out += [
        _row("fused", big, _floor_seconds(big) / 0.8),  # 0.80 of the floor: met
        _row("naive graph", big, 3 * _floor_seconds(big) / 0.8),  # 3x: not met
        _row("naive XLA", big, 2 * _floor_seconds(big) / 0.8),  # 2x < 2.5x: not met
        _row(LOOP_OVERHEAD, big, _floor_seconds(big) / 0.9),
        _row("fused", big, 1.5 * _floor_seconds(big) / 0.8, masked=True),  # 1.5x: not met
        _row("fused", (64, 65536, 1), _floor_seconds((64, 65536, 1)) / 0.5),  # 0.5: not met
        _row(MEMORY_BOUND.name, (64, 65536, 1), _floor_seconds((64, 65536, 1)) / 0.7),
    ]
    return out


def test_targets(rows):
    targets = report.evaluate_targets(
        rows,
        BANDWIDTH,
        {"fused": 0, "fallback graph": 12 * 2**20},
        {
            "1": {"fused": 2e-3, LOOP_OVERHEAD: 1e-3, "bandwidth": 30.0},
            "2": {"fused": 1e-3, LOOP_OVERHEAD: 8e-4, "bandwidth": 36.0},
            "engine": {
                "engine_1": 2e-3,
                "engine_2": 1.25e-3,
                "bandwidth_1": 20.0,
                "bandwidth_2": 30.0,
            },
        },
        {"[256, 4096, 1]": {"fused": 1e-3, "add": 0.8e-3}},  # no entry for (64, 65536, 1)
    )
    got = {t.name: (t.measured, t.met) for t in targets}
    reachable = {t.name: t.reachable for t in targets}
    assert got["fused vs naive tf.function, (20, 100, 1)"] == (
        "4.0x (at most 8.0x: loop overhead)",
        True,
    )
    assert got["fused vs naive tf.function, (64, 1000, 1)"][1] is False  # 3.3x
    assert got["fused vs naive tf.function, (256, 4096, 1)"][1] is False
    assert got["fused vs naive XLA, (256, 4096, 1)"] == ("2.0x", False)
    assert got["floor time / fused time, (256, 4096, 1)"] == (
        "0.80 (loop overhead alone: 0.90; forward alone 1.000 ms, 1.25x TF's x + y over the "
        "same arrays (0.800 ms))",
        True,
    )
    assert got["floor time / fused time, (64, 65536, 1)"] == (
        "0.50 (at most 0.70: memory-pattern bound)",
        False,
    )
    assert got["peak temporary memory fused / fallback graph, (256, 4096, 1)"] == ("0.00", True)
    scaling, met = got["fused intra-op threads 1 -> 2, (256, 4096, 1)"]
    # 24 MiB (no per-step g read) at 36 GB/s: 0.699 ms; 2 ms / 0.699 ms = 2.86x.
    assert met and scaling == (
        "2.00x (loop overhead alone: 1.25x; read-2-write-1 bandwidth 1 -> 2 threads "
        "30.0 -> 36.0 GB/s (1.20x); bytes at the 2-thread bandwidth take 0.699 ms, "
        "so at most 2.86x from this 1-thread time; bare engine in one process, 1 and 2 "
        "threads alternating: 1.60x, with the memory system's 1.50x in the same process)"
    )
    assert got["fused (256, 4096, 1) masked vs (256, 4096, 1), same element count"] == (
        "1.50x",
        False,
    )
    # A bound is stated where one is measured: loop overhead 8x and 6.7x
    # (>= 4x: reachable), the thread bound 2.86x (>= 1.6x); none elsewhere.
    assert reachable["fused vs naive tf.function, (20, 100, 1)"] is True
    assert reachable["fused vs naive tf.function, (64, 1000, 1)"] is True
    assert reachable["fused intra-op threads 1 -> 2, (256, 4096, 1)"] is True
    assert reachable["fused vs naive XLA, (256, 4096, 1)"] is None
    # The floor: the memory-pattern bound where it was timed (0.70 >= 0.65).
    assert reachable["floor time / fused time, (64, 65536, 1)"] is True
    assert reachable["floor time / fused time, (256, 4096, 1)"] is None


def test_ratio_text_never_rounds_a_miss_up_to_the_target():
    assert report.ratio_text(0.6493, 0.65) == "0.649"
    assert report.ratio_text(0.6503, 0.65) == "0.65"
    assert report.ratio_text(0.5549, 0.65) == "0.55"
    assert report.ratio_text(0.644, 0.65) == "0.64"


def test_unreachable_targets_say_so():
    """A miss whose measured bound is below the target says so; others don't."""
    shape = (20, 100, 1)
    rows = [
        _row("naive graph", shape, 30e-6),
        _row("fused", shape, 15e-6),
        _row(LOOP_OVERHEAD, shape, 12e-6),  # at most 2.5x: below 4x
    ]
    scaling = {  # bytes at 37 GB/s: 0.68 ms; 1.0 ms / 0.68 ms = 1.47x < 1.6x
        "1": {"fused": 1.0e-3, LOOP_OVERHEAD: 0.7e-3, "bandwidth": 34.0},
        "2": {"fused": 0.8e-3, LOOP_OVERHEAD: 0.6e-3, "bandwidth": 37.0},
    }
    by = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, scaling)}
    small = by["fused vs naive tf.function, (20, 100, 1)"]
    assert (small.met, small.reachable) == (False, False)
    assert small.verdict.startswith("**no**: the bound measured in this run is below")
    threads = by["fused intra-op threads 1 -> 2, (256, 4096, 1)"]
    assert (threads.met, threads.reachable) == (False, False)
    assert "at most 1.47x" in threads.measured
    # The bandwidth allows it, the memory-pattern bound on 2 threads does not:
    # 1.0 ms / 0.7 ms = 1.43x < 1.6x.
    scaling["1"].update({MEMORY_BOUND.name: 0.9e-3, "bandwidth": 20.0})
    scaling["2"].update({MEMORY_BOUND.name: 0.7e-3, "bandwidth": 80.0})
    threads = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, scaling)}[
        "fused intra-op threads 1 -> 2, (256, 4096, 1)"
    ]
    assert (threads.met, threads.reachable) == (False, False)
    assert (
        "memory-pattern bound 1 -> 2 threads 0.900 -> 0.700 ms (1.29x), "
        "so at most 1.43x from this 1-thread time" in threads.measured
    )
    scaling["2"][MEMORY_BOUND.name] = 0.5e-3  # 2.0x: both bounds allow it
    threads = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, scaling)}[
        "fused intra-op threads 1 -> 2, (256, 4096, 1)"
    ]
    assert (threads.met, threads.reachable) == (False, True)
    big = (64, 65536, 1)
    floor_rows = [
        _row("fused", big, _floor_seconds(big) / 0.5),
        _row(MEMORY_BOUND.name, big, _floor_seconds(big) / 0.6),  # the bound: 0.60 < 0.65
    ]
    floor = {t.name: t for t in report.evaluate_targets(floor_rows, BANDWIDTH, None, None)}[
        "floor time / fused time, (64, 65536, 1)"
    ]
    assert (floor.met, floor.reachable) == (False, False)
    assert floor.measured == "0.50 (at most 0.60: memory-pattern bound)"
    rows[2] = _row(LOOP_OVERHEAD, shape, 5e-6)  # 2.0x, bound 6x: a plain miss
    small = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, None)}[
        "fused vs naive tf.function, (20, 100, 1)"
    ]
    assert small.reachable is True and small.verdict == "**no**"


def test_write_report(rows, tmp_path: Path):
    report.write_report(
        rows, BANDWIDTH, None, None, quick=True, bandwidth_1core=25.0, out_dir=tmp_path
    )
    text = (tmp_path / "REPORT.md").read_text()
    assert "**40.0 GB/s** (25.0 GB/s on one core)" in text
    assert "### (256, 4096, 1) masked, float32" in text
    assert "| fused | " in text and "| **no** |" in text
    assert "| contender | ms (min) | ms (median) | vs fused | floor |" in text


def test_floor_bytes_compact_grad():
    """The compact upstream gradient (one value per sequence) is not read per step."""
    case = Case((256, 4096, 1))
    full = floor_bytes(case, tf.float32, True)
    assert full - floor_bytes(case, tf.float32, True, per_step_grad=False) == 256 * 4096 * 4
    assert floor_bytes(case, tf.float32, True, per_step_grad=False) == 6 * 256 * 4096 * 4


def test_floor_bytes_of_a_loss_reduced_in_the_op():
    """No per-step loss written nor per-step gradient read: x and y twice,
    the gradient once."""
    case = Case((64, 65536, 1))
    assert floor_bytes(case, tf.float32, True, per_step_loss=False) == 5 * 64 * 65536 * 4
    assert floor_bytes(case, tf.float32, False, per_step_loss=False) == 2 * 64 * 65536 * 4


def test_the_memory_floor_bounds_a_speed_up_over_torch_compile():
    """A target quoting the memory floor: naive time over the time the
    reduced step's bytes take at the run's bandwidth."""
    shape = (64, 65536, 1)
    floor = floor_bytes(Case(shape), tf.float32, True, per_step_loss=False) / (BANDWIDTH * 1e9)
    rows = [
        _row("naive torch.compile", shape, 1.5 * floor),
        _row("corrops.torch mean compile", shape, 1.2 * floor),  # 1.25x, below the floor's 1.5x
        _row("torch.compile loop overhead (x*y)", shape, 0.5 * floor),  # 3.0x: counts
    ]
    by = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, None)}
    target = by["corrops.torch mean compile vs naive torch.compile, (64, 65536, 1)"]
    assert (target.met, target.reachable) == (False, False)  # 1.5 / max(0.5, 1) = 1.5x < 2x
    assert target.measured == (
        "1.3x (at most 3.0x: torch.compile loop overhead (x*y); at most 1.5x: the memory "
        "floor, x and y read twice and the gradient written once at 40.0 GB/s)"
    )


def test_stream_bandwidth_patterns():
    for pattern in ("copy", "add"):
        gbs = report.stream_bandwidth(cores=1, megabytes=8, repeats=2, pattern=pattern)
        assert 0.1 < gbs < 10_000, (pattern, gbs)


def test_write_report_thread_scaling(rows, tmp_path: Path):
    scaling = {
        "1": {"fused": 1.0e-3, LOOP_OVERHEAD: 0.7e-3, "bandwidth": 34.0},
        "2": {"fused": 0.8e-3, LOOP_OVERHEAD: 0.6e-3, "bandwidth": 37.0},
        "engine": {"engine_1": 1.3e-3, "engine_2": 1e-3, "bandwidth_1": 16.0, "bandwidth_2": 22.0},
    }
    report.write_report(rows, BANDWIDTH, None, scaling, quick=True, out_dir=tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "fused 1.000 -> 0.800 ms; loop overhead (x*y) 0.700 -> 0.600 ms." in text
    assert "1.300 -> 1.000 ms (1.30x)" in text and "16.0 -> 22.0 GB/s (1.38x)" in text
    assert "**no**: the bound measured in this run is below the target" in text


def test_paired_script_measures_every_member():
    """The round-robin target measurement runs (one round under the smoke
    run) and returns a time for each member, each paired loop overhead and
    each floor shape's memory-pattern bound."""
    out = report.run_script("paired", extra_env={"CORROPS_BENCH_SMOKE": "1"})
    got = {(r["contender"], tuple(r["shape"]), r["masked"]) for r in out["rows"]}
    want = {m for group in report.PAIRED_GROUPS for m in group}
    want |= {(LOOP_OVERHEAD, s, False) for s in report.PAIRED_OVERHEAD}
    want |= {(LOOP_ALONE.name, s, False) for s in report.PAIRED_ALONE}
    want |= {(MEMORY_BOUND.name, s, False) for s in report.PAIRED_FLOOR}
    assert got == want
    assert all(r["seconds"] > 0 and r["backward"] for r in out["rows"])
    assert out["bandwidth"] > 0


def test_targets_use_paired_rows_and_bandwidth(rows, tmp_path: Path):
    """Given round-robin rows and the bandwidth sampled next to them, the
    targets use those, the tables the suite's rows and start-of-run bandwidth."""
    big = (256, 4096, 1)
    at_20 = floor_bytes(Case(big), tf.float32, True) / (20.0 * 1e9)
    # 0.70 of the floor at 20 GB/s; the suite's fused row is 0.80 at 40 GB/s, so
    # each mix-up of rows and bandwidth gives another number (0.80, 0.35, 1.60).
    paired = [_row("fused", big, at_20 / 0.7)]
    report.write_report(
        rows, BANDWIDTH, None, None, quick=True, out_dir=tmp_path,
        paired_rows=paired, paired_bandwidth=20.0,
    )  # fmt: skip
    text = (tmp_path / "REPORT.md").read_text()
    assert "| floor time / fused time, (256, 4096, 1) | >= 0.65 | 0.70 | yes |" in text
    assert "(20.0 GB/s, the highest sample)" in text
    # The table still shows the suite's fused row against the 40 GB/s floor.
    assert f"| fused | {_floor_seconds(big) / 0.8 * 1e3:.3f} | - | 1.00x | 0.80 |" in text


def test_engine_script_measures_both_thread_counts():
    """The in-process engine scaling measurement runs (one round under smoke)."""
    out = report.run_script("engine", extra_env={"CORROPS_BENCH_SMOKE": "1"})
    assert set(out) == {"engine_1", "engine_2", "bandwidth_1", "bandwidth_2"}
    assert all(v > 0 for v in out.values())


def test_threads_script_times_the_step_and_its_bounds():
    """The thread-scaling measurement runs (one round under smoke) and times the
    fused step, the loop overhead and the memory-pattern bound, with the bandwidth."""
    out = report.run_script("threads", "2", extra_env={"CORROPS_BENCH_SMOKE": "1"})
    assert set(out) == {"fused", LOOP_OVERHEAD, MEMORY_BOUND.name, "bandwidth"}
    assert all(v > 0 for v in out.values())


def test_write_report_forward_against_add(rows, tmp_path: Path):
    """The floor targets' forward-alone measurement is quoted per shape."""
    forward = {
        "[256, 4096, 1]": {"fused": 0.5e-3, "add": 0.4e-3},
        "[64, 65536, 1]": {"fused": 3.0e-3, "add": 3.0e-3},
    }
    report.write_report(rows, BANDWIDTH, None, None, quick=True, out_dir=tmp_path, forward=forward)
    text = (tmp_path / "REPORT.md").read_text()
    assert "(256, 4096, 1) 0.500 ms vs 0.400 ms (1.25x); (64, 65536, 1) 3.000 ms vs" in text
    assert "forward alone 0.500 ms, 1.25x TF's x + y over the same arrays (0.400 ms)" in text


def test_forward_script_measures_both_floor_shapes():
    """The forward-alone comparison runs (one round under smoke) for each floor shape."""
    out = report.run_script("forward", extra_env={"CORROPS_BENCH_SMOKE": "1"})
    assert set(out) == {str(list(s)) for s in report.PAIRED_FLOOR}
    assert all(v["fused"] > 0 and v["add"] > 0 for v in out.values())


def test_round_robin_keeps_each_minimum_per_iteration():
    calls: list[str] = []
    times = {"a": iter([0.04, 0.02, 0.06]), "b": iter([0.01, 0.01, 0.01])}

    def runner(name: str):
        def run():
            calls.append(name)
            time.sleep(next(times[name]))

        return run

    after: list[int] = []
    best = report.round_robin(
        [("a", runner("a"), 4), ("b", runner("b"), 1)], 3, {}, between=after.append
    )
    assert calls == ["a", "b"] * 3  # one call of each per round, in order
    assert after == [0, 1, 2]
    # The round that slept least, per iteration (k = 4): 0.02 / 4.
    assert 0.005 <= best["a"] < 0.015
    assert 0.01 <= best["b"] < 0.05


def test_a_bound_slower_than_the_fused_step_bounds_nothing():
    """Noise (or, at tiny shapes, the x*y gradient's extra ops) can make a
    bound measure slower than the fused step; the report then quotes it as no
    bound instead of an 'at most' the fused step already beats."""
    small, big = (20, 100, 1), (64, 65536, 1)
    rows = [
        _row("naive graph", small, 80e-6),
        _row("fused", small, 30e-6),  # 2.7x
        _row(LOOP_OVERHEAD, small, 36e-6),  # 2.2x: slower than fused
        _row("fused", big, _floor_seconds(big) / 0.6),
        _row(MEMORY_BOUND.name, big, _floor_seconds(big) / 0.5),  # slower than fused
    ]
    scaling = {
        "1": {"fused": 1.5e-3, LOOP_OVERHEAD: 1.2e-3, MEMORY_BOUND.name: 1.4e-3},
        "2": {"fused": 1.0e-3, LOOP_OVERHEAD: 0.9e-3, MEMORY_BOUND.name: 1.1e-3},
    }
    by = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, scaling)}
    tiny = by["fused vs naive tf.function, (20, 100, 1)"]
    assert (tiny.met, tiny.reachable, tiny.verdict) == (False, None, "**no**")
    assert tiny.measured == "2.7x (loop overhead 2.2x, slower than the fused step here: no bound)"
    floor = by["floor time / fused time, (64, 65536, 1)"]
    assert (floor.met, floor.reachable) == (False, None)
    assert floor.measured == (
        "0.60 (memory-pattern bound 0.50, slower than the fused step here: no bound)"
    )
    threads = by["fused intra-op threads 1 -> 2, (256, 4096, 1)"]
    assert (threads.met, threads.reachable) == (False, None)
    assert "slower than the fused step on 2 threads here: no bound" in threads.measured
    assert "at most" not in threads.measured


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        (None, (False, None)),
        (0.0, (False, None)),
        (0.9, (True, "at most 2.0x")),
        (1.0, (True, "at most 2.0x")),  # as fast as the fused step still bounds it
        (1.1, (False, "1.1 ms, slower than the fused step on 2 threads here: no bound")),
    ],
)
def test_bound_note_counts_a_bound_only_when_no_slower_than_the_fused_step(bound, expected):
    assert report.bound_note(bound, 1.0, "at most 2.0x", "1.1 ms", " on 2 threads") == expected


def test_the_loop_alone_bounds_the_speed_up_strictly():
    """The loop alone (no loss at all) bounds the speed-up over the naive formula even
    where the x*y loop overhead measured slower than the fused step; the
    tighter of two bounds that count decides; `net of it` compares what each
    adds to the loop."""
    small = (20, 100, 1)
    rows = [
        _row("naive graph", small, 75e-6),
        _row("fused", small, 40e-6),  # 1.9x
        _row(LOOP_OVERHEAD, small, 41e-6),  # slower than fused: no bound
        _row(LOOP_ALONE.name, small, 30e-6),  # at most 2.5x: below 4x
    ]
    by = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, None)}
    tiny = by["fused vs naive tf.function, (20, 100, 1)"]
    assert (tiny.met, tiny.reachable) == (False, False)
    assert tiny.verdict.startswith("**no**: the bound measured in this run is below")
    assert tiny.measured == (
        "1.9x (at most 2.5x: the loop alone; net of it 4.5x; "
        "loop overhead 1.8x, slower than the fused step here: no bound)"
    )
    rows[2] = _row(LOOP_OVERHEAD, small, 25e-6)  # 3.0x: counts, but the loop alone is tighter
    rows[3] = _row(LOOP_ALONE.name, small, 15e-6)  # 5.0x
    tiny = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, None)}[
        "fused vs naive tf.function, (20, 100, 1)"
    ]
    assert tiny.reachable is False  # 75 / max(25, 15) = 3.0x < 4x
    rows[2] = _row(LOOP_OVERHEAD, small, 10e-6)  # 7.5x
    tiny = {t.name: t for t in report.evaluate_targets(rows, BANDWIDTH, None, None)}[
        "fused vs naive tf.function, (20, 100, 1)"
    ]
    assert tiny.reachable is True  # 75 / 15 = 5.0x
    assert "at most 5.0x: the loop alone; net of it 2.4x; at most 7.5x: loop overhead" in (
        tiny.measured
    )


def test_memory_probe_measures_each_implementation():
    """The peak-memory measurement runs under TF's BFC allocator, as report.py
    runs it, and gives a non-negative temporary size per implementation."""
    out = report.run_script("memory", extra_env={"TF_CPU_ALLOCATOR_USE_BFC": "true"})
    assert set(out) == {"fused", "fallback graph", "fallback XLA"}
    assert all(v >= 0 for v in out.values())

"""floor_check: its arithmetic on made-up timings, and one smoke process."""

from __future__ import annotations

import pytest
import tensorflow as tf

from benchmarks import floor_check, report
from benchmarks.contenders import Case, floor_bytes


def _result(ratio: float, bandwidth: float = 20.0) -> dict:
    times = {}
    for shape in report.PAIRED_FLOOR:
        floor = floor_bytes(Case(shape), tf.float32, True) / (bandwidth * 1e9)
        times[str(list(shape))] = {
            "fused": floor / ratio,
            "overhead": floor / (2 * ratio),
            "bound": floor / (1.5 * ratio),
        }
    return {"times": times, "bandwidth": bandwidth}


def test_floor_ratios():
    ratios = floor_check.floor_ratios(_result(0.6))
    assert set(ratios) == {str(list(s)) for s in report.PAIRED_FLOOR}
    for fused, overhead, bound in ratios.values():
        assert fused == pytest.approx(0.6) and overhead == pytest.approx(1.2)
        assert bound == pytest.approx(0.9)


def test_summary_lists_every_process_and_the_median():
    lines = floor_check.summary("default environment", [_result(0.6), _result(0.7), _result(0.5)])
    assert lines[0] == "default environment:"
    assert sum(line.startswith("  process") for line in lines) == 3
    assert (
        "  [256, 4096, 1] fused: median 0.60, range 0.50-0.70, >= 0.65 in 1 of 3 processes" in lines
    )
    assert (
        "  [256, 4096, 1] memory-pattern bound: median 0.90, range 0.75-1.05, "
        ">= 0.65 in 3 of 3 processes"
    ) in lines


def test_parse_env_rejects_a_bare_word():
    assert floor_check.parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        floor_check.parse_env(["TF_CPU_ALLOCATOR_USE_BFC"])


def test_floor_script_measures_both_floor_shapes():
    """One process, one round (the smoke run's iterations): a time for each."""
    out = report.run_script("floor", "1", extra_env={"CORROPS_BENCH_SMOKE": "1"})
    assert set(out["times"]) == {str(list(s)) for s in report.PAIRED_FLOOR}
    assert all(min(t["fused"], t["overhead"], t["bound"]) > 0 for t in out["times"].values())
    assert out["bandwidth"] > 0

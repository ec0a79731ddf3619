"""eager_call: one smoke run of the eager-call benchmark (no timing checked)."""

from __future__ import annotations

from benchmarks import eager_call


def test_smoke_run_prints_every_shape_and_the_target(capsys):
    eager_call.main(["--rounds", "1", "--calls", "1"])
    out = capsys.readouterr().out
    for shape in eager_call.SHAPES:
        assert f"| {shape} |" in out
    assert "Target: eager corr_loss at (8, 100, 1)" in out

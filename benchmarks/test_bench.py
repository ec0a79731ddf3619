"""pytest-benchmark suite: every contender x shape x dtype x pass.

    python -m pytest benchmarks                        # full grid
    CORROPS_BENCH_SMOKE=1 python -m pytest benchmarks  # tiny shapes, one round (CI)
    python benchmarks/report.py                        # suite + REPORT.md + plot

Each measured call runs K iterations (see contenders.py); extra_info records K
and the bytes an ideal fused implementation must move, so the report can give
times per iteration and ratios to the bandwidth floor.
"""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from benchmarks.contenders import CONTENDERS, floor_bytes, grid, make_runner

SMOKE = bool(os.environ.get("CORROPS_BENCH_SMOKE"))
DTYPES = [tf.float32, tf.float16]


def _combinations():
    # Contenders innermost: the measurements a ratio compares run back to back,
    # so a burst of interference on a shared machine hits one shape's contenders
    # alike instead of one contender's whole grid.
    for case in grid():
        for dtype in DTYPES:
            for backward in (False, True):
                for contender in CONTENDERS:
                    if case.masked and not contender.supports_mask:
                        continue  # the naive formula has no mask
                    if (
                        SMOKE
                        and contender.mode == "torch.compile"
                        and (case != grid()[0] or dtype != tf.float32)
                    ):
                        continue  # a smoke run compiles each once (seconds per compile)
                    yield pytest.param(
                        contender,
                        case,
                        dtype,
                        backward,
                        id=f"{contender.name.replace(' ', '-')}-{case.id}-{dtype.name}-"
                        f"{'fwd+bwd' if backward else 'fwd'}",
                    )


@pytest.mark.parametrize(("contender", "case", "dtype", "backward"), list(_combinations()))
def test_loss(benchmark, contender, case, dtype, backward):
    run, k = make_runner(contender, case, dtype, backward)
    benchmark.extra_info.update(
        contender=contender.name,
        shape=list(case.shape),
        masked=case.masked,
        dtype=dtype.name,
        backward=backward,
        iterations=k,
        floor_bytes=floor_bytes(case, dtype, backward),
    )
    # 15 rounds: the minimum needs a few quiet moments on a shared machine.
    rounds = 1 if SMOKE else 15
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=0 if SMOKE else 1)

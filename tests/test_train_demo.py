"""The quick start's main job (scripts/demo.sh runs examples/train_demo.py):
run end to end, as a user would, so that it cannot rot. Checks that training
with corrops.corr_loss learns the curves' shape and that the timing table has
every shape and contender; never how fast anything is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import corrops

ROOT = Path(__file__).resolve().parent.parent


def test_demo_trains_and_prints_the_timing_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_demo.py"), "--epochs", "2",
         "--timing-rounds", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    fused = corrops.fused_available()  # CI requires it (conftest); the demo then uses it
    assert ("(fused implementation)" if fused else "(tf implementation)") in out, out
    losses = [float(v) for v in re.findall(r"epoch\s+\d+\s+loss (\S+)", out)]
    assert len(losses) == 2 and losses[1] < losses[0], out
    r = re.search(r"Pearson r: mean (\S+) \(min \S+\); before training (\S+)", out)
    assert r is not None, out
    # Untrained, the held-out r is ~0.3; two epochs reach ~0.8. A wrong loss
    # or gradient does not get there.
    assert float(r.group(1)) > float(r.group(2)) + 0.2, out
    if not fused:  # the demo prints no timing table without the fused op
        assert "vs naive graph" not in out, out
        return
    header = next(line for line in out.splitlines() if line.strip().startswith("shape"))
    for name in ("fused", "fallback graph", "naive graph", "naive XLA", "vs naive graph"):
        assert name in header, out
    ratios = []
    for shape in ("(20, 100, 1)", "(64, 1000, 1)", "(256, 4096, 1)"):
        row = next((line for line in out.splitlines() if line.strip().startswith(shape)), None)
        assert row is not None, out
        cells = row.strip()[len(shape) :].split()
        assert len(cells) == 6 and all(float(c.rstrip("x")) > 0 for c in cells), row
        ratios += [float(c.rstrip("x")) for c in cells[-2:]]
    # A speed-up below 1x comes with its explanation.
    assert ("note: at" in out) == any(r < 1 for r in ratios), out

"""corrops.torch under torch.distributed: DDP with the gloo backend over 2
CPU processes gives the loss and gradients of one process on the same data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

WORKER = Path(__file__).parent / "workers" / "ddp_torch.py"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_ddp_gloo_matches_one_process(tmp_path):
    done = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path / "out")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ddp, single = result["ddp"], result["single"]
    np.testing.assert_allclose(ddp["loss"], single["loss"], rtol=1e-12)
    for got, want in zip(ddp["grads"], single["grads"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    assert result["frameworks"] == []

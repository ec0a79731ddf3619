"""The Python examples of README.md and docs/*.md run as written.

Every ```python block runs, in the order of its file, in a fresh namespace,
or in the namespace of the block before it when the line before its fence is
``<!-- example: continues -->``; one subprocess per file, in a temporary
directory, with a time limit. A block whose fence follows
``<!-- example: skip (reason) -->`` does not run: its own test is reported
as skipped, with the reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*example:\s*(skip|continues)\s*(?:\((.*)\))?\s*-->")
TIMEOUT = 600  # seconds per file

# Runs the blocks given as JSON on stdin; on the first failure prints the
# block's place and traceback and exits 1.
RUNNER = """
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {}
for b in blocks:
    if not b["continues"]:
        namespace = {"__name__": "__main__"}
    try:
        exec(compile(b["code"], b["where"], "exec"), namespace)
    except BaseException:
        print("example failed: " + b["where"], file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print("ran " + b["where"])
"""


@dataclass(frozen=True)
class Block:
    where: str  # file:line of the fence
    code: str
    continues: bool
    skip: str | None  # the reason, for a skipped block


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            marker = MARKER.search(lines[i - 1]) if i > 0 else None
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            kind = marker.group(1) if marker else None
            out.append(
                Block(
                    where=f"{path.relative_to(ROOT)}:{i + 1}",
                    code="\n".join(lines[i + 1 : end]) + "\n",
                    continues=kind == "continues",
                    skip=(marker.group(2) or "marked skip") if kind == "skip" else None,
                )
            )
            i = end
        i += 1
    return out


RUN = [p for p in FILES if any(b.skip is None for b in blocks(p))]
SKIPPED = [b for p in FILES for b in blocks(p) if b.skip is not None]


@pytest.mark.parametrize("path", RUN, ids=lambda p: p.name)
def test_examples_run_as_written(path, tmp_path):
    todo = [b.__dict__ for b in blocks(path) if b.skip is None]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(todo),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    assert done.stdout.count("\nran ") + done.stdout.startswith("ran ") == len(todo), done.stdout


@pytest.mark.parametrize("block", SKIPPED, ids=lambda b: b.where)
def test_marked_examples_are_reported(block):
    pytest.skip(f"{block.where} not run: {block.skip}")


def test_every_file_with_examples_is_found():
    """The parser sees the blocks: README.md has several, and a skip marker
    is read with its reason."""
    assert len(blocks(ROOT / "README.md")) >= 4
    assert all(b.skip for b in SKIPPED) and SKIPPED

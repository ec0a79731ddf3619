"""The targets table (benchmarks/targets.json): it parses, names contenders
that exist, and README.md and REPORT.md state what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report, targets
from benchmarks.contenders import BY_NAME, LOOP_ALONE, LOOP_OVERHEAD, MEMORY_BOUND

ROOT = Path(__file__).resolve().parent.parent


def test_every_target_names_timed_contenders_and_known_bounds():
    known = {*BY_NAME, MEMORY_BOUND.name, LOOP_ALONE.name, LOOP_OVERHEAD}
    for t in targets.TARGETS:
        assert {m[0] for m in t.members()} <= known, t
        assert set(t.bounds) <= known | {targets.MEMORY_FLOOR}, t
    assert set(targets.TF_LOOP_BOUNDS) == {LOOP_ALONE.name, LOOP_OVERHEAD}


def test_paired_groups_hold_every_member_once():
    groups = targets.paired_groups(targets.TARGETS)
    members = [m for g in groups for m in g]
    assert len(members) == len(set(members))
    assert set(members) == {m for t in targets.TARGETS for m in t.members()}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"kind": "speedup", "shape": [1, 2, 1], "at_least": 2}, "unknown kind"),
        ({"kind": "floor", "shape": [1, 2, 1]}, "exactly one of at_least, at_most"),
        ({"kind": "floor", "shape": [1, 2, 1], "at_least": 1, "at_most": 2}, "exactly one"),
        ({"kind": "floor", "shape": [1, 2, 1], "at_least": 1, "shap": 1}, "unknown fields"),
    ],
)
def test_a_malformed_entry_is_an_error_naming_it(tmp_path: Path, entry, message):
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"targets": [entry]}))
    with pytest.raises(ValueError, match=message):
        targets.load(path)


def test_wanted_and_met_follow_the_direction():
    faster = targets.Target("speed-up", (1, 2, 1), 4.0, True, against="naive graph")
    assert faster.wanted == ">= 4x" and faster.met_by(4.0) and not faster.met_by(3.9)
    smaller = targets.Target("memory", (1, 2, 1), 0.3, False, against="fallback graph")
    assert smaller.wanted == "<= 0.3" and smaller.met_by(0.3) and not smaller.met_by(0.31)


def test_report_states_the_targets_of_the_table():
    """REPORT.md was generated from this targets table: the same targets, in
    its order, with what each wants."""
    text = (ROOT / "benchmarks" / "REPORT.md").read_text()
    table = report.readme_targets(text).splitlines()[4:]
    stated = [tuple(c.strip() for c in row.strip("|").split(" | ")[:2]) for row in table]
    assert stated == [(t.name, t.wanted) for t in targets.TARGETS]


def test_readme_speed_table_is_the_reports():
    """README.md's speed table is the one report.py writes from REPORT.md:
    no number in it is copied by hand."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(report.README_BEGIN, 1)[1].split(report.README_END, 1)[0]
    report_text = (ROOT / "benchmarks" / "REPORT.md").read_text()
    assert block.strip() == report.readme_targets(report_text)


def test_update_readme_replaces_only_the_table(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nold\n{report.README_END}\nafter\n")
    report_text = (
        "Machine: A CPU, 2 cores; TensorFlow 2.21.0\n\n## Targets\n\n"
        "| target | wanted | measured | met |\n|---|---|---|---|\n"
        "| t1 | >= 4x | 5.0x (at most 6.0x: bound) | yes |\n"
        "| t2 | <= 0.3 | 0.40 | **no**: the bound measured in this run is below the target |\n"
        "\n## Forward + backward\n\n| contender | ms |\n|---|---|\n| fused | 1 |\n"
    )
    report.update_readme(readme, report_text)
    assert readme.read_text() == (
        f"intro\n{report.README_BEGIN}\nMeasured on A CPU, 2 cores:\n\n"
        "| target | wanted | measured | met |\n|---|---|---|---|\n"
        "| t1 | >= 4x | 5.0x | yes |\n| t2 | <= 0.3 | 0.40 | no |\n"
        f"{report.README_END}\nafter\n"
    )

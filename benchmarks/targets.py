"""The benchmark targets, read from benchmarks/targets.json: each target's
name, what it wants, and the contenders the report must time for it.

The table is data so that the report, the README's speed table and the docs
all state the same targets; report.py measures and judges them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PATH = Path(__file__).resolve().parent / "targets.json"
KINDS = ("speed-up", "floor", "memory", "threads", "same-count")
FIELDS = {
    "kind",
    "shape",
    "at_least",
    "at_most",
    "contender",
    "against",
    "masked",
    "base",
    "bounds",
}
# How a contender is named in a target's title where its benchmark name is terse.
TITLE = {"naive graph": "naive tf.function"}

Member = tuple[str, tuple[int, ...], bool]  # (contender, shape, masked)


@dataclass(frozen=True)
class Target:
    """One entry of targets.json. `threshold` is the value to reach: a lower
    bound if `higher_is_better`, else an upper bound."""

    kind: str
    shape: tuple[int, ...]
    threshold: float
    higher_is_better: bool
    contender: str = "fused"
    against: str | None = None
    masked: bool = False
    base: tuple[int, ...] | None = None
    bounds: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        shape = str(self.shape)
        if self.kind == "speed-up":
            against = TITLE.get(self.against or "", self.against)
            return f"{self.contender} vs {against}, {shape}"
        if self.kind == "floor":
            return f"floor time / {self.contender} time, {shape}"
        if self.kind == "memory":
            return f"peak temporary memory {self.contender} / {self.against}, {shape}"
        if self.kind == "threads":
            return f"{self.contender} intra-op threads 1 -> 2, {shape}"
        label = shape + (" masked" if self.masked else "")
        return f"{self.contender} {label} vs {self.base}, same element count"

    @property
    def wanted(self) -> str:
        unit = "x" if self.kind in ("speed-up", "threads", "same-count") else ""
        return f"{'>=' if self.higher_is_better else '<='} {self.threshold:g}{unit}"

    def met_by(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def members(self) -> list[Member]:
        """The timed contenders this target compares (none for memory and
        threads, which have probes of their own)."""
        own = (self.contender, self.shape, self.masked)
        if self.kind == "speed-up":
            # Bounds of their own (not the TF loop's, which the report adds
            # per shape) are timed with the pair.
            own_bounds = [
                (b, self.shape, False)
                for b in self.bounds
                if b not in TF_LOOP_BOUNDS and b != MEMORY_FLOOR
            ]
            return [own, (str(self.against), self.shape, False), *own_bounds]
        if self.kind == "floor":
            return [own]
        if self.kind == "same-count":
            return [own, (self.contender, self.base or self.shape, False)]
        return []


# The TF benchmark loop's bounds (benchmarks/contenders.py's LOOP_ALONE and
# LOOP_OVERHEAD), spelled out: the report's own process imports no TensorFlow.
TF_LOOP_BOUNDS = ("loop alone (no loss)", "loop overhead (x*y)")


# A speed-up bound that is no timed contender: the step's ideal bytes at the
# run's bandwidth (benchmarks/report.py, with the loss reduced in the op).
MEMORY_FLOOR = "memory floor"


def _parse(entry: dict) -> Target:
    kind = entry["kind"]
    if kind not in KINDS:
        raise ValueError(f"{PATH.name}: unknown kind {kind!r}; one of {KINDS}")
    if ("at_least" in entry) == ("at_most" in entry):
        raise ValueError(f"{PATH.name}: {entry} needs exactly one of at_least, at_most")
    unknown = set(entry) - FIELDS
    if unknown:
        raise ValueError(f"{PATH.name}: {entry} has unknown fields {sorted(unknown)}")
    return Target(
        kind=kind,
        shape=tuple(entry["shape"]),
        threshold=float(entry.get("at_least", entry.get("at_most"))),
        higher_is_better="at_least" in entry,
        contender=entry.get("contender", "fused"),
        against=entry.get("against"),
        masked=bool(entry.get("masked", False)),
        base=tuple(entry["base"]) if "base" in entry else None,
        bounds=tuple(entry.get("bounds", ())),
    )


def load(path: Path = PATH) -> list[Target]:
    return [_parse(e) for e in json.loads(path.read_text())["targets"]]


TARGETS = load()


def paired_groups(targets: list[Target]) -> list[list[Member]]:
    """The contenders the targets compare, one round-robin group per target
    shape (a same-count target's base joins its shape's group), each member
    once, in the table's order."""
    groups: dict[tuple[int, ...], list[Member]] = {}
    for t in targets:
        group = groups.setdefault(t.shape, [])
        group += [m for m in t.members() if m not in group]
    return [g for g in groups.values() if g]


def shapes_with(targets: list[Target], kind: str, bound: str | None = None) -> list[tuple]:
    """The shapes of the targets of `kind` (that quote `bound`, if given)."""
    picked = [t.shape for t in targets if t.kind == kind and (bound is None or bound in t.bounds)]
    return list(dict.fromkeys(picked))

"""A plan as EXPLAIN (FORMAT JSON) describes it, read into the facts budgets judge.

Pure: no connection, no pytest. ``Plan.from_explain`` takes the JSON document one
EXPLAIN returned (with or without ANALYZE and BUFFERS) and the text-format output of
the same statement, and answers the questions a reviewer asks of a plan: how many
blocks did the execution touch, which tables were read whole, which indexes were
used (and with a condition or end to end), and where the row estimates were wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Node types that read a table's heap directly.
_SEQ_SCANS = ("Seq Scan", "Parallel Seq Scan")
#: The node of INSERT / UPDATE / DELETE / MERGE: it writes its relation, it does not read it.
_WRITE = "ModifyTable"
#: Nodes below these may stop before reading everything they planned to: a LIMIT, a
#: semi/anti join or a merge join that ran out of input on the other side, EXISTS.
_EARLY_STOP_JOINS = ("Semi", "Anti")
_BLOCKING = ("Sort", "Hash")
#: Row estimates that steer the plan: what a table scan returns (statistics) and what a
#: join returns (join method and order). An aggregate's group count or a bitmap AND
#: (always 0 actual rows) is judged by neither.
_JOINS = ("Nested Loop", "Hash Join", "Merge Join")
#: An estimate is "wrong" when off by this factor and the larger figure is this big:
#: on a handful of rows the planner's guess does not matter.
MISESTIMATE_FACTOR = 10.0
MISESTIMATE_MIN_ROWS = 100


@dataclass(frozen=True)
class Node:
    """One plan node, flattened: what it read and how well it was estimated."""

    kind: str  # "Seq Scan", "Index Scan", "Bitmap Index Scan", ...
    relation: str  # table read or written ('' when none); a bitmap index scan's table
    index: str  # index used ('' when none)
    condition: bool  # an Index Cond narrowed the index scan (False: walked end to end)
    estimated: float  # rows per loop, as planned
    actual: float | None  # rows per loop, as run (None without ANALYZE)
    loops: int
    removed: int  # rows removed by a filter (ANALYZE only)
    may_stop_early: bool  # below a LIMIT, semi/anti or merge join, or a subplan
    filter: str = ""  # the rows it threw away were judged by this ("Filter")

    @property
    def label(self) -> str:
        on = f" using {self.index}" if self.index and self.kind != "Bitmap Index Scan" else ""
        target = self.index if self.kind == "Bitmap Index Scan" else self.relation
        return f"{self.kind}{on} on {target}" if target else self.kind


@dataclass(frozen=True)
class Misestimate:
    """A node whose row estimate was off by more than ``MISESTIMATE_FACTOR``."""

    node: str
    estimated: float
    actual: float

    @property
    def factor(self) -> float:
        low, high = sorted((max(self.estimated, 1.0), max(self.actual, 1.0)))
        return high / low

    def __str__(self) -> str:
        return (f"{self.node}: estimated {self.estimated:g} rows, got {self.actual:g} "
                f"({self.factor:.0f}x off)")


@dataclass(frozen=True)
class Plan:
    """The facts of one EXPLAIN of one statement.

    ``buffers`` is the execution's shared hit + read + temp read + written blocks, from
    the top plan node (which includes its children and subplans), planning excluded.
    Without ANALYZE there are no buffers, actual rows or timings: they are ``None``.
    """

    buffers: int | None
    shared_hit: int | None
    shared_read: int | None
    temp: int | None
    rows_estimated: int
    rows_actual: int | None
    execution_ms: float | None
    planning_ms: float | None
    nodes: tuple[Node, ...]
    text: str = ""
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_explain(cls, document: Any, text: str = "") -> Plan:
        """``document``: the value EXPLAIN (FORMAT JSON) returned (a one-item list)."""
        top = document[0] if isinstance(document, list) else document
        root = top["Plan"]
        analyzed = "Actual Loops" in root
        buffered = "Shared Hit Blocks" in root
        hit = int(root.get("Shared Hit Blocks", 0))
        read = int(root.get("Shared Read Blocks", 0))
        temp = int(root.get("Temp Read Blocks", 0)) + int(root.get("Temp Written Blocks", 0))
        return cls(
            buffers=hit + read + temp if buffered else None,
            shared_hit=hit if buffered else None,
            shared_read=read if buffered else None,
            temp=temp if buffered else None,
            rows_estimated=int(root.get("Plan Rows", 0)),
            rows_actual=int(root["Actual Rows"]) if analyzed else None,
            execution_ms=float(top["Execution Time"]) if "Execution Time" in top else None,
            planning_ms=float(top["Planning Time"]) if "Planning Time" in top else None,
            nodes=tuple(_walk(root, relation="", early=False)),
            text=text,
            document=top,
        )

    @property
    def seq_scans(self) -> tuple[str, ...]:
        """Tables read whole (sequential scans), in plan order, without repeats."""
        return _unique(n.relation for n in self.nodes if n.kind in _SEQ_SCANS)

    @property
    def indexes(self) -> tuple[str, ...]:
        """Indexes the plan uses, in plan order, without repeats."""
        return _unique(n.index for n in self.nodes if n.index)

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the plan reads (a write's target only when it is also scanned)."""
        return _unique(n.relation for n in self.nodes if n.relation and n.kind != _WRITE)

    def uses(self, index: str, table: str = "") -> bool:
        return any(n.index == index and (not table or n.relation == table) for n in self.nodes)

    def index_scans_of(self, table: str) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.index and n.relation == table)

    def seq_scan_of(self, table: str) -> Node | None:
        return next((n for n in self.nodes if n.kind in _SEQ_SCANS and n.relation == table), None)

    def seq_scan_rows(self, table: str) -> int | None:
        """Rows a sequential scan of ``table`` went through (ANALYZE only)."""
        for node in self.nodes:
            if node.kind in _SEQ_SCANS and node.relation == table and node.actual is not None:
                return int(node.actual) + node.removed
        return None

    @property
    def misestimates(self) -> tuple[Misestimate, ...]:
        """Table scans and joins whose estimate was more than ``MISESTIMATE_FACTOR`` off,
        worst first.

        Only nodes that ran to completion are judged: below a LIMIT, an EXISTS, a
        semi/anti join or a merge join, reading fewer rows than planned is the point.
        """
        found = []
        for node in self.nodes:
            if node.actual is None or node.loops == 0 or node.may_stop_early or not _steers_plan(node):
                continue
            if node.actual == 0:
                continue  # nothing matched: every estimate is "infinitely" off, and none matters
            wrong = Misestimate(node.label, node.estimated, node.actual)
            if wrong.factor > MISESTIMATE_FACTOR and max(node.estimated, node.actual) >= MISESTIMATE_MIN_ROWS:
                found.append(wrong)
        return tuple(sorted(found, key=lambda m: -m.factor))


def _walk(node: dict[str, Any], relation: str, early: bool) -> Iterator[Node]:
    kind = str(node.get("Node Type", ""))
    own = str(node.get("Relation Name", ""))
    index = str(node.get("Index Name", ""))
    loops = int(node.get("Actual Loops", 1))
    actual = node.get("Actual Rows")
    yield Node(
        kind=kind,
        relation=own or (relation if kind == "Bitmap Index Scan" else ""),
        index=index,
        condition="Index Cond" in node,
        estimated=float(node.get("Plan Rows", 0)),
        actual=float(actual) if actual is not None else None,
        loops=loops,
        removed=int(node.get("Rows Removed by Filter", 0)),
        may_stop_early=early,
        filter=str(node.get("Filter", "")),
    )
    semi = node.get("Join Type") in _EARLY_STOP_JOINS
    # A sort, a hash or a whole-input aggregate reads all of its input before it returns a
    # row, so a LIMIT above it stops nothing below it.
    blocking = kind in _BLOCKING or (kind in ("Aggregate", "SetOp") and node.get("Strategy") in ("Plain", "Hashed"))
    if blocking:
        early = False
    for child in node.get("Plans", ()):
        relationship = child.get("Parent Relationship")
        # A semi/anti join stops reading its inner side at the first match (the outer
        # side runs to the end); a LIMIT or a merge join may stop any input early.
        child_early = (
            early
            or kind in ("Limit", "Merge Join")
            or (semi and relationship == "Inner")
            or relationship in ("SubPlan", "InitPlan")
        )
        yield from _walk(child, own or relation, child_early)


def _steers_plan(node: Node) -> bool:
    if node.kind in _JOINS:
        return True
    return bool(node.relation) and node.kind.endswith("Scan") and node.kind != "Bitmap Index Scan"


def _unique(names: Iterator[str] | Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))

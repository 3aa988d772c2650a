"""Query lint over a test's captured statements: what the seeds' query rules forbid.

- ``queries.lint-select-star``: ``SELECT *`` in an application query (name the columns);
- ``queries.lint-unbounded-read``: a read of a table marked large (``dbarch_large_tables``)
  with neither WHERE nor LIMIT;
- ``queries.lint-table-read-in-loop``: a whole-table read (no WHERE, no LIMIT) run more
  than once from one call site.

Each is a warning with its call site and fix, one per shape per test; each can be
switched off with ``dbarch_query_lint_off``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.queries import callsite
from pytest_dbarch.queries.fingerprint import SELECT
from pytest_dbarch.queries.statement import Statement

SELECT_STAR = "queries.lint-select-star"
UNBOUNDED_READ = "queries.lint-unbounded-read"
TABLE_READ_IN_LOOP = "queries.lint-table-read-in-loop"
NO_LINT = "queries.lint"
RULE_NAMES = {"select-star": SELECT_STAR, "unbounded-read": UNBOUNDED_READ, "table-read-in-loop": TABLE_READ_IN_LOOP}


@dataclass(frozen=True)
class LintRules:
    large_tables: frozenset[str] = frozenset()
    off: frozenset[str] = frozenset()  # rule ids switched off

    @classmethod
    def from_settings(cls, large_tables: tuple[str, ...], off: tuple[str, ...]) -> LintRules:
        unknown = [name for name in off if name not in RULE_NAMES and name != "all"]
        if unknown:
            raise ValueError(
                f"dbarch_query_lint_off names unknown rule(s) {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(RULE_NAMES)} or all"
            )
        ids = frozenset(RULE_NAMES.values()) if "all" in off else frozenset(RULE_NAMES[n] for n in off)
        return cls(frozenset(t.lower() for t in large_tables), ids)

    @property
    def enabled(self) -> bool:
        return len(self.off) < len(RULE_NAMES)


def _whole_table(statement: Statement) -> bool:
    shape = statement.shape
    return bool(shape.tables) and not (shape.has_where or shape.has_limit or shape.single_row_aggregate)


def candidates(reads: list[Statement], rules: LintRules) -> list[Statement]:
    """The reads some rule could flag, told from their text alone: a statement's shape
    needs sqlglot (0.25 s to import, a parse per new text), and most statements of a
    test can be ruled out without it. Each test is a necessary condition of its rule,
    so nothing a rule would flag is ever left out:

    - select-star: a ``*`` in the text (``SELECT *`` and ``t.*`` have one);
    - unbounded-read: the last part of a large table's name in the lowercased text
      (every table name the shape lists is written in the text; a quoted name with a
      doubled quote or a ``U&`` escape is not, so such text always goes through);
    - table-read-in-loop: its call site (the whole user stack) sent two reads or more.
    """
    off = rules.off
    star = SELECT_STAR not in off
    large = [t.rsplit(".", 1)[-1] for t in rules.large_tables] if UNBOUNDED_READ not in off else []
    loop = TABLE_READ_IN_LOOP not in off
    sites: dict[object, int] = defaultdict(int)
    if loop:
        for statement in reads:
            if statement.stack:
                sites[statement.stack] += 1
    kept = []
    for statement in reads:
        sql = statement.sql
        if star and "*" in sql:
            kept.append(statement)
        elif large and _may_name(sql.lower(), large):
            kept.append(statement)
        elif loop and statement.stack and sites[statement.stack] > 1:
            kept.append(statement)
    return kept


def _may_name(text: str, names: list[str]) -> bool:
    return '""' in text or 'u&"' in text or any(name in text for name in names)


def lint(statements: list[Statement], rules: LintRules) -> list[Finding]:
    reads = candidates([s for s in statements if s.application and s.kind == SELECT and not s.error], rules)
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()

    def add(rule: str, statement: Statement, title: str, fix: str, count: int = 1) -> None:
        if rule in rules.off or (rule, statement.shape.id) in seen:
            return
        seen.add((rule, statement.shape.id))
        evidence = [f"query:  {statement.where or '(no user frame)'}", f"sql:    {statement.shape.fingerprint}"]
        if count > 1:
            evidence.append(f"count:  {count} times")
        loop = callsite.loop_site(statement.stack) if rule == TABLE_READ_IN_LOOP else None
        if loop is not None:
            evidence.insert(1, f"loop:   {loop}  {callsite.source_line(loop)}")
        findings.append(Finding(rule, Area.QUERIES, Status.WARNING, title, "\n".join(evidence), statement.where, fix))

    by_site: dict[tuple, list[Statement]] = defaultdict(list)
    for statement in reads:
        shape = statement.shape
        if shape.select_star:
            add(SELECT_STAR, statement, f"SELECT * reads every column of {', '.join(shape.tables) or 'a table'}",
                "name the columns the code needs, so new columns cost nothing and covering indexes can serve it")
        large = [t for t in shape.tables if t in rules.large_tables or t.rsplit(".", 1)[-1] in rules.large_tables]
        if large and _whole_table(statement):
            add(UNBOUNDED_READ, statement, f"Unbounded read of large table {', '.join(large)}",
                "add a WHERE that uses an index and a LIMIT (paginate with a keyset: WHERE id > $last ORDER BY id LIMIT n)")
        if _whole_table(statement) and statement.stack:
            by_site[(shape.id, statement.stack)].append(statement)
    for members in by_site.values():
        if len(members) > 1:
            first = members[0]
            add(TABLE_READ_IN_LOOP, first,
                f"Whole-table read of {', '.join(first.shape.tables)} inside a loop ({len(members)} times)",
                "read the table once before the loop and reuse the rows", len(members))
    return findings

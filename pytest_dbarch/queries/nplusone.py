"""N+1 detection over a test's captured statements.

Four rules, each with a stable id:

- ``queries.nplusone-lazy-load``: one relationship lazily loaded from one call site for
  ``threshold`` (2) or more distinct parents;
- ``queries.nplusone-repeated-query``: one SELECT shape from one user call stack with
  ``threshold`` or more distinct parameter sets (or inlined literals);
- ``queries.repeated-identical-query`` (warning): the same statement with the same
  parameters 3 or more times from one call stack, in one transaction of one
  connection and one thread (separate requests, sessions or transactions that each
  need the same row are not a cache miss, nor are two call sites);
- ``queries.write-loop`` (warning): 5 or more single-row writes of one shape from one
  call stack.

The stack key holds user frames only, so library frames in between never split a
group. Never flagged: eager-loader batches (``selectinload`` chunks, ``yield_per``),
pages (LIMIT/OFFSET/FETCH, keyset walks; ``LIMIT 1`` is a lookup, not a page), batches of keys (IN lists, ``= ANY``),
catalog queries, transaction control, the plugin's own statements, statements sent by
test code (the test, fixtures, conftest.py, helpers of the test tree: the innermost user
frame decides), and repeats made by a loop in test code around calls into the
application (a test seeding rows through the application's API): the test's doing, not
the application's. A loop of requests (or tasks) is its own warning,
``queries.nplusone-client-loop``.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.queries import callsite
from pytest_dbarch.queries.fingerprint import SELECT, TX, WRITE_KINDS
from pytest_dbarch.queries.statement import Statement

LAZY_LOAD = "queries.nplusone-lazy-load"
REPEATED_QUERY = "queries.nplusone-repeated-query"
IDENTICAL_QUERY = "queries.repeated-identical-query"
WRITE_LOOP = "queries.write-loop"
CLIENT_LOOP = "queries.nplusone-client-loop"
NO_NPLUSONE = "queries.nplusone"
NPLUSONE_RULES = (LAZY_LOAD, REPEATED_QUERY)
_IGNORE_KINDS = ("relationship", "fingerprint", "file", "function")


class BadSetting(ValueError):
    """A setting the user can fix; the message says how."""


@dataclass(frozen=True)
class Ignore:
    """One ignore-list entry, ``kind:pattern``."""

    kind: str
    pattern: str

    @classmethod
    def parse(cls, entry: str) -> Ignore:
        kind, sep, pattern = entry.partition(":")
        if not sep or kind.strip() not in _IGNORE_KINDS or not pattern.strip():
            raise BadSetting(
                f"dbarch_nplusone_ignore entry {entry!r} is not understood; write one of "
                + ", ".join(f"{k}:<...>" for k in _IGNORE_KINDS)
                + " (e.g. relationship:Account.contacts)"
            )
        return cls(kind.strip(), pattern.strip())


def read_baseline(path: str | None, rootdir: str) -> frozenset[str]:
    """Accepted finding ids, one per line; '#' starts a comment."""
    if not path:
        return frozenset()
    file = Path(path) if Path(path).is_absolute() else Path(rootdir) / path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSetting(
            f"dbarch_nplusone_baseline {str(file)!r} cannot be read ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or exc}); fix the path or remove the setting"
        ) from None
    return frozenset(line.split("#", 1)[0].strip() for line in text.splitlines()) - {""}


@dataclass(frozen=True)
class Rules:
    """How one test is checked."""

    mode: str = "warn"  # warn / error / off
    threshold: int = 2
    repeated: int = 3
    write_loop: int = 5
    ignore: tuple[Ignore, ...] = ()
    baseline: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Group:
    """Statements one rule found together."""

    rule: str
    statements: list[Statement]
    distinct: int  # parents, parameter sets or repeats, as the rule counts them

    @property
    def first(self) -> Statement:
        return self.statements[0]


def _eligible(statement: Statement) -> bool:
    return statement.application and not statement.error


def _transactions(statements: list[Statement]) -> dict[int, int]:
    """Which transaction of its connection each statement ran in (by ``id``): every
    BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE on a connection starts the next one."""
    current: dict[int, int] = defaultdict(int)
    found: dict[int, int] = {}
    for statement in statements:
        if statement.kind == TX:
            current[statement.connection] += 1
        else:
            found[id(statement)] = current[statement.connection]
    return found


def groups(statements: list[Statement], rules: Rules) -> list[Group]:
    """Apply the four rules; ignore list and baseline are applied later."""
    found: list[Group] = []
    lazy: dict[tuple, list[Statement]] = defaultdict(list)
    reads: dict[tuple, list[Statement]] = defaultdict(list)
    identical: dict[tuple, list[Statement]] = defaultdict(list)
    writes: dict[tuple, list[Statement]] = defaultdict(list)
    transaction = _transactions(statements)
    for statement in statements:
        if not _eligible(statement):
            continue
        relationship = statement.relationship
        if relationship is not None:
            if relationship.lazy:
                lazy[(relationship.name, statement.stack)].append(statement)
            continue  # eager-loader batches are never N+1s
        if statement.kind == SELECT:
            shape = statement.shape
            if not ((shape.has_limit and not shape.single_row) or shape.in_list):
                # One call site, one transaction of one connection, one thread: a cache miss.
                key = (statement.sql, statement.param_key(), statement.stack, statement.connection,
                       transaction.get(id(statement), 0), statement.thread)
                identical[key].append(statement)
                if statement.stack:
                    reads[(shape.id, statement.stack)].append(statement)
        elif statement.kind in WRITE_KINDS and not statement.many and statement.stack:
            writes[(statement.shape.id, statement.stack)].append(statement)
    for members in lazy.values():
        parents = {s.relationship.parent for s in members if s.relationship is not None}
        if len(parents) >= rules.threshold:
            found.append(Group(LAZY_LOAD, members, len(parents)))
    for members in reads.values():
        distinct = {(s.sql, s.param_key()) for s in members}
        if len(distinct) >= rules.threshold:
            found.append(Group(REPEATED_QUERY, members, len(distinct)))
    for members in identical.values():
        if len(members) >= rules.repeated:
            found.append(Group(IDENTICAL_QUERY, members, len(members)))
    for members in writes.values():
        if len(members) >= rules.write_loop:
            found.append(Group(WRITE_LOOP, members, len(members)))
    return found


def finding_id(group: Group) -> str:
    """Stable across edits that move lines: rule, shape, relationship, files and functions."""
    first = group.first
    key = repr((
        group.rule,
        first.shape.id,
        first.relationship.name if first.relationship else "",
        callsite.stack_key_without_lines(first.stack),
    ))
    return hashlib.blake2b(key.encode(), digest_size=5).hexdigest()


def ignored(group: Group, ignores: Iterable[Ignore]) -> Ignore | None:
    """The first entry that matches the group. ``file:`` matches the file of the
    query's own line only (not every file on the stack: a test file calls all the
    application's code); ``function:`` any function on the user stack."""
    first = group.first
    sites = callsite.sites(first.stack)
    for entry in ignores:
        if entry.kind == "relationship" and first.relationship and first.relationship.name == entry.pattern:
            return entry
        if entry.kind == "fingerprint" and first.shape.id == entry.pattern:
            return entry
        if entry.kind == "file" and sites and fnmatch.fnmatch(sites[0].file, entry.pattern):
            return entry
        if entry.kind == "function" and any(
            entry.pattern in (s.function, s.function.rsplit(".", 1)[-1]) for s in sites
        ):
            return entry
    return None


def _parent_query(group: Group, statements: list[Statement]) -> Statement | None:
    """The SELECT that produced the rows the loop walks: the last one before the group."""
    start = statements.index(group.first)
    members = {id(s) for s in group.statements}
    fingerprint = group.first.shape.id
    for statement in reversed(statements[:start]):
        if statement.counted and statement.kind == SELECT and id(statement) not in members:
            if statement.shape.id != fingerprint:
                return statement
    return None


def _fix(group: Group, loop: callsite.Site | None) -> str:
    first = group.first
    where = f" before the loop at {loop}" if loop else ""
    if group.rule == LAZY_LOAD and first.relationship is not None:
        name = first.relationship.name
        owner = name.split(".", 1)[0]
        if first.relationship.direction == "MANYTOONE":
            return f"load it with the parent rows: .options(joinedload({name})) on the query that loads {owner}"
        return f"load all of them in one query: .options(selectinload({name})) on the query that loads {owner}"
    if group.rule == REPEATED_QUERY:
        return (
            "fetch every key in one query" + where + ": WHERE key IN (...) / = ANY(%s) "
            "(SQLAlchemy: select(Model).where(Model.id.in_(ids))), then look rows up in a dict"
        )
    if group.rule == IDENTICAL_QUERY:
        if loop is not None:
            return f"run it once before the loop at {loop} and reuse the result"
        return (
            f"the same result is read {len(group.statements)} times in one transaction at {first.where}: reuse "
            "the first result (for a row by its primary key, session.get(Model, id) answers from the "
            "identity map without a query)"
        )
    if group.rule == CLIENT_LOOP:
        return (
            "the application does not loop; the test" + (f"'s loop at {loop}" if loop else "") + " sends one "
            "request per item. If real API clients do the same, give them one request for all items "
            "(a list endpoint with the related data, or ?ids=1,2,3); otherwise it is the test's doing"
        )
    return (
        "send the rows in one statement" + where + ": cursor.executemany(...) or "
        "session.execute(insert(Model), rows) instead of one write per row"
    )


def _title(group: Group) -> str:
    first, n = group.first, len(group.statements)
    if group.rule == LAZY_LOAD and first.relationship is not None:
        return f"N+1: {first.relationship.name} lazy-loaded for {group.distinct} parents ({n} queries)"
    if group.rule == REPEATED_QUERY:
        return f"N+1: the same query ran {n} times from one call site with {group.distinct} different parameters"
    if group.rule == IDENTICAL_QUERY:
        return f"The same query with the same parameters ran {n} times from one call site in one transaction"
    if group.rule == CLIENT_LOOP:
        return (
            f"API client N+1: a loop in the test calls the application once per item, each call "
            f"running this query ({n} queries)"
        )
    return f"Row-by-row writes: {n} single-row {first.kind.upper()}s from one call site"


def to_finding(group: Group, statements: list[Statement], rules: Rules) -> Finding:
    """Query line, loop line, parent query, relationship, SQL with $n, counts, fix."""
    first = group.first
    loop = callsite.loop_site(first.stack)  # parsed only now, when reporting
    parent = _parent_query(group, statements)
    ident = finding_id(group)
    accepted = ident in rules.baseline
    if group.rule in NPLUSONE_RULES and rules.mode == "error" and not accepted:
        status = Status.FAILED
    else:
        status = Status.WARNING
    lines = [f"query:  {first.where or '(no user frame)'}"]
    if loop is not None:
        lines.append(f"loop:   {loop}  {callsite.source_line(loop)}")
    if first.relationship is not None:
        lines.append(f"relationship: {first.relationship.name} ({first.relationship.direction.lower()}, lazy)")
    if parent is not None and group.rule in NPLUSONE_RULES:
        lines.append(f"parent query: {parent.where}  {parent.shape.fingerprint[:200]}")
    lines.append(f"sql:    {first.shape.fingerprint}  (fingerprint {first.shape.id})")
    lines.append(f"count:  {len(group.statements)} statements, {group.distinct} distinct "
                 + ("parents" if group.rule == LAZY_LOAD else "parameter sets" if group.rule in (REPEATED_QUERY, CLIENT_LOOP) else "repeats"))
    stack = [site for i, site in enumerate(callsite.sites(first.stack)) if i == 0 or str(site) != str(callsite.sites(first.stack)[i - 1])]
    if len(stack) > 1:
        lines.append("stack:  " + " <- ".join(str(s) for s in stack))
    lines.append(f"id:     {ident}" + ("  (accepted in the baseline)" if accepted else ""))
    title = _title(group) + (" [baseline]" if accepted else "")
    return Finding(
        rule=group.rule,
        area=Area.QUERIES,
        status=status,
        title=title,
        evidence="\n".join(lines),
        where=first.where,
        fix=_fix(group, loop),
    )


def _test_loop(group: Group) -> callsite.Site | None:
    """The loop in test code that repeats the group's calls into the application."""
    loop = callsite.loop_site(group.first.stack)
    if loop is not None and callsite.kind_of(callsite.absolute(loop.file)) == callsite.TEST:
        return loop
    return None


def _each_task_below(group: Group, threshold: int) -> bool:
    """True when the statements ran in two or more tasks (requests, jobs the test
    started) and none of them repeated the query ``threshold`` times by itself: the
    repeats are the test's (two requests on one line, a ``gather``), not an N+1."""
    per_unit: dict[int, set[Any]] = defaultdict(set)
    for s in group.statements:
        if not s.unit:
            return False
        per_unit[s.unit].add(s.relationship.parent if group.rule == LAZY_LOAD and s.relationship else
                             (s.sql, s.param_key()))
    return len(per_unit) > 1 and max(map(len, per_unit.values())) < threshold


def arranged_by_test(group: Group, rules: Rules) -> bool:
    """True when test code repeats the calls into the application that run the
    statements (a loop in the test, a line calling it twice, several requests or
    tasks), the application itself does not loop."""
    first = group.first
    if not first.stack or first.from_test_code:
        return False
    if group.rule in NPLUSONE_RULES and _each_task_below(group, rules.threshold):
        return True
    repeats = callsite.repeat_site(first.stack)
    return repeats is not None and callsite.kind_of(callsite.absolute(repeats.file)) == callsite.TEST


def detect(statements: list[Statement], rules: Rules) -> list[Finding]:
    """Findings for one test's statements (nothing when the mode is off).

    A test's loop around calls into the application is the test's doing; when those
    calls ran in another thread (requests through a test client), the loop is an API
    client's N+1, reported as a warning of its own (``queries.nplusone-client-loop``).
    """
    if rules.mode == "off":
        return []
    found = []
    for group in groups(statements, rules):
        if arranged_by_test(group, rules):
            if not (group.rule in NPLUSONE_RULES and group.first.handed and _test_loop(group)):
                continue
            group = Group(CLIENT_LOOP, group.statements, group.distinct)
        finding = to_finding(group, statements, rules)
        entry = ignored(group, rules.ignore)
        if entry is not None:
            finding = replace(
                finding,
                status=Status.IGNORED,
                title=f"{finding.title} (ignored: dbarch_nplusone_ignore {entry.kind}:{entry.pattern})",
            )
        found.append(finding)
    return found

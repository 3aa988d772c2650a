"""Small Markdown pieces shared by the renderers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pytest_dbarch.report.ledger import Item
from pytest_dbarch.report.model import Report, item_text

EVIDENCE_LINES = 20
EXAMPLES = 3
# A passed check may end its title with "(<n> <unit>s checked)": grouped lines sum them.
_CHECKED = re.compile(r"^(?P<label>.+?) \((?P<n>\d[\d,]*) (?P<unit>[a-z]+?)s? checked\)$")


def header(title: str, report: Report) -> list[str]:
    return [
        f"# {title} - {report.task_id}",
        "",
        f"Project: {report.project} · agent: {report.agent_id} · run {report.run} · "
        f"started {report.started_at} · updated {report.updated_at}",
        f"Task status: `task-status-{report.task_id}.json` · phase: **{report.phase}** · "
        f"{report.run_line}",
        "",
    ]


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def staleness(item: Item, report: Report) -> str:
    """``not re-checked in this run, last seen in run 2`` for a stale item, else ``""``."""
    return f"not re-checked in this run, last seen in run {item.last_run}" if report.is_stale(item) else ""


def checklist_item(item: Item, report: Report) -> str:
    finding = item.finding
    box = "x" if not finding.is_problem else " "
    context = [f"{finding.status.value}", f"`{finding.rule}`"]
    if finding.nodeid:
        context.append(f"test `{finding.nodeid}`")
    if finding.where:
        context.append(f"at `{finding.where}`")
    if stale := staleness(item, report):
        context.append(stale)
    return f"- [{box}] {item_text(finding)} ({'; '.join(context)})"


def by_rule(items: Iterable[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.finding.rule, []).append(item)
    return grouped


def passed_lines(items: Iterable[Item], report: Report) -> list[str]:
    """One line per passed check (rule), with counts, however many tests it covered."""
    lines = []
    for rule, group in by_rule(items).items():
        if len(group) == 1:
            lines.append(checklist_item(group[0], report))
            continue
        lines.append(f"- [x] {group_text(group)} ({'; '.join(_group_context(rule, group, report))})")
    return lines


def group_text(group: list[Item]) -> str:
    """One line for many passed items of one check: ``No N+1 queries: 1,998 tests, 24,112
    statements``; ``revision 0001, 0002, 0003 and 5 more: has a downgrade``; or examples."""
    parsed = [_CHECKED.match(i.finding.title) for i in group]
    labels = list(dict.fromkeys(m["label"] if m else i.finding.title for m, i in zip(parsed, group)))
    tests = {i.finding.nodeid for i in group if i.finding.nodeid}
    if len(labels) == 1:
        counts = [plural(len(tests), "test")] if tests else [plural(len(group), "check")]
        if all(parsed) and len({m["unit"] for m in parsed if m}) == 1:
            total = sum(int(m["n"].replace(",", "")) for m in parsed if m)
            counts.append(plural(total, parsed[0]["unit"]))  # type: ignore[index]
        return f"{labels[0]}: {', '.join(counts)}"
    return _varying(labels) or (
        f"{plural(len(group), 'check')} passed — " + "; ".join(labels[:EXAMPLES])
        + (f"; and {len(labels) - EXAMPLES} more" if len(labels) > EXAMPLES else "")
    )


def _varying(labels: list[str]) -> str:
    """``prefix a, b, c and 5 more suffix`` when the labels differ in one word only."""
    first, last = min(labels), max(labels)
    head = 0
    while head < min(len(first), len(last)) and first[head] == last[head]:
        head += 1
    prefix = labels[0][: labels[0][:head].rfind(" ") + 1]
    tail = 0
    while all(tail < len(label) - len(prefix) and label[-1 - tail] == labels[0][-1 - tail] for label in labels):
        tail += 1
    suffix = labels[0][len(labels[0]) - tail :] if tail else ""
    while suffix and suffix[0].isalnum():
        suffix = suffix[1:]
    middles = [label[len(prefix) : len(label) - len(suffix)] for label in labels]
    if len(prefix) + len(suffix) < 8 or any(not m or len(m.split()) != 1 for m in middles):
        return ""
    shown = ", ".join(middles[:EXAMPLES]) + (f" and {len(middles) - EXAMPLES} more" if len(middles) > EXAMPLES else "")
    if not prefix:  # "has a primary key: accounts, audit_log, ..." reads better than the reverse
        return f"{suffix.strip()}: {shown}"
    return f"{prefix}{shown}{suffix}"


def _group_context(rule: str, group: list[Item], report: Report) -> list[str]:
    context = ["passed", f"`{rule}`"]
    labels = {m["label"] if (m := _CHECKED.match(i.finding.title)) else i.finding.title for i in group}
    if len(labels) > 1:
        tests = {i.finding.nodeid for i in group if i.finding.nodeid}
        context.append(plural(len(group), "check") + (f" in {plural(len(tests), 'test')}" if tests else ""))
    stale = [i for i in group if report.is_stale(i)]
    if stale:
        context.append(
            f"{len(stale):,} not re-checked in this run, last seen in run "
            + _runs(i.last_run for i in stale)
        )
    return context


def _runs(numbers: Iterable[int]) -> str:
    values = sorted(set(numbers))
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def evidence_block(text: str) -> list[str]:
    lines = text.splitlines()
    shown = lines[:EVIDENCE_LINES]
    if len(lines) > EVIDENCE_LINES:
        shown.append(f"... ({len(lines) - EVIDENCE_LINES} more lines)")
    fence = "````" if "```" in text else "```"
    return [fence, *shown, fence]


def counts_line(counts: dict[str, int]) -> str:
    line = (
        f"{counts['checks']} checks: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['warning']} warning, {counts['error']} error"
    )
    if counts.get("stale"):
        line += f"; {counts['stale']} not re-checked in this run"
    return line


def failing_test_line(nodeid: str, outcome: str, run: int, report: Report) -> str:
    when = "in this run" if run == report.run else f"in run {run}, not re-run since"
    verb = "failed" if outcome == "failed" else "errored"
    return f"- [ ] Make `{nodeid}` pass again ({verb} {when})"

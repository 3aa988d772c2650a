"""``architecture-notes-{ID}.md``: what the checks' evidence says about the system.

Query patterns (queries area), index recommendations (any finding about an index),
schema facts (schema, models, migrations) and performance figures (performance area),
each with the evidence the checks gathered. A passed check with no evidence says nothing
the checklist does not, so it is left out here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pytest_dbarch.findings import Area, Finding
from pytest_dbarch.report._markdown import evidence_block, header
from pytest_dbarch.report.model import Report, item_text

KIND = "architecture-notes"


def _about_indexes(finding: Finding) -> bool:
    text = f"{finding.rule} {finding.title} {finding.fix}".lower()
    return "index" in text


SECTIONS: tuple[tuple[str, Callable[[Finding], bool]], ...] = (
    ("Query patterns", lambda f: f.area is Area.QUERIES),
    ("Index recommendations", lambda f: _about_indexes(f) and f.is_problem),
    ("Schema facts", lambda f: f.area in (Area.SCHEMA, Area.MODELS, Area.MIGRATIONS, Area.DATABASES)),
    ("Performance figures", lambda f: f.area is Area.PERFORMANCE),
    ("Concurrency", lambda f: f.area is Area.CONCURRENCY),
)


def render(report: Report) -> str:
    lines = header("Database architecture notes", report)
    for title, wanted in SECTIONS:
        lines += [f"## {title}", ""]
        # The same passed finding from many tests is one note.
        chosen = list(
            dict.fromkeys(
                f if f.is_problem else replace(f, nodeid="")
                for f in report.findings
                if wanted(f) and (f.evidence or f.is_problem)
            )
        )
        if not chosen:
            lines += ["_Nothing recorded in this task._", ""]
            continue
        for finding in chosen:
            where = f" at `{finding.where}`" if finding.where else ""
            lines.append(f"### {finding.title}")
            lines.append("")
            lines.append(f"`{finding.rule}` ({finding.status.value}){where}")
            if finding.is_problem:
                lines.append(f"Recommendation: {item_text(finding)}")
            if finding.evidence:
                lines.append("")
                lines += evidence_block(finding.evidence)
            lines.append("")
    return "\n".join(lines)

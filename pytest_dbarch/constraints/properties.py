"""``.check()``: the constraint checks over some tables, as Findings, undone afterwards.

Tables are visited parents first. Each check of each table runs in a savepoint of its
own, and all of it in one more, so the test's data is as it was when ``check`` returns.
A table whose columns cannot all be generated gets one warning instead of the checks
that need rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_dbarch.constraints import intent as intent_module
from pytest_dbarch.constraints import model_checks, referential, valid_rows, violators
from pytest_dbarch.constraints.context import Context, check_settings
from pytest_dbarch.constraints.skips import Skips
from pytest_dbarch.constraints.probe import Probe
from pytest_dbarch.constraints.rows import KeysExhausted
from pytest_dbarch.constraints.schema import TableSpec, order
from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Area, Finding, Status
from pytest_dbarch.postgres.catalog import Catalog

if TYPE_CHECKING:
    from hypothesis import settings as hypothesis_settings
    from sqlalchemy import MetaData

CHECKS: tuple[tuple[str, Callable[[Context, TableSpec], list[Finding]]], ...] = (
    (valid_rows.RULE, valid_rows.check),
    (violators.RULE, violators.check),
    (model_checks.RULE, model_checks.check),
    (model_checks.STRICTER, model_checks.stricter),
    (referential.RULE, referential.check),
)
UNSUPPORTED = "constraints.unsupported-column"


def tables_to_check(catalog: Catalog) -> list[str]:
    """Tables that hold rows (partitions are checked through their parent)."""
    return [t.qualified for t in catalog.base_tables() if not t.is_partition]


def run(probe: Probe, catalog: Catalog, specs: Callable[[str], TableSpec], metadata: MetaData | None,
        names: list[str] | None, *, settings: hypothesis_settings | None = None, skips: Skips | None = None,
        seed: int = 0) -> list[Finding]:
    ctx = Context(probe, catalog, specs, intent_module.read(metadata, catalog), check_settings(settings),
                  skips or Skips(), seed)
    chosen = order([specs(name) for name in (names if names is not None else tables_to_check(catalog))])
    findings: list[Finding] = []
    with probe.savepoint():
        for spec in chosen:
            findings += check_table(ctx, spec)
    return findings


def check_table(ctx: Context, spec: TableSpec) -> list[Finding]:
    if spec.problems:
        return [Finding(UNSUPPORTED, Area.MODELS, Status.WARNING,
                        f"{spec.qualified}: rows cannot be generated, so its constraints were not exercised",
                        evidence="\n".join(spec.problems), where=spec.qualified,
                        fix="give the column a default or make it nullable, or skip the table in "
                            "dbarch_constraints_skip with the reason")]
    findings: list[Finding] = []
    for rule, run_check in CHECKS:
        if rule != valid_rows.RULE and any(f.rule == valid_rows.RULE and f.status is Status.FAILED for f in findings):
            findings.append(Finding(rule, Area.MODELS, Status.WARNING,
                                    f"{spec.qualified}: not checked, no valid row can be drawn "
                                    f"(see {valid_rows.RULE})", where=spec.qualified))
            continue
        with ctx.savepoint():
            try:
                findings += run_check(ctx, spec)
            except KeysExhausted as exc:  # the check's own rows found no free key: its limit, not a defect
                findings.append(Finding(rule, Area.MODELS, Status.WARNING,
                                        f"{spec.qualified}: not checked, no free key for the rows it needs",
                                        evidence=exc.cause, where=spec.qualified, fix=exc.fix))
            except DbarchError as exc:
                title = exc.cause if exc.cause.startswith(spec.qualified) else f"{spec.qualified}: {exc.cause}"
                findings.append(Finding(rule, Area.MODELS, Status.ERROR, title, where=spec.qualified, fix=exc.fix))
    return findings

"""Row-level security and function privileges (R01, R02)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_dbarch.schema_lint import ddl
from pytest_dbarch.schema_lint.facts import alter
from pytest_dbarch.schema_lint.options import LintOptions
from pytest_dbarch.schema_lint.rule import Schema, Violation

if TYPE_CHECKING:
    from pytest_dbarch.postgres.catalog import Function


def _policies(schema: Schema) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for policy in schema.catalog.policies:
        found.setdefault(f"{policy.schema}.{policy.table}", []).append(policy.name)
    return found


def inert_policies(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """R01 (part): policies on a table whose row-level security is off do nothing."""
    policies = _policies(schema)
    for table in schema.tables():
        names = policies.get(table.qualified)
        if names and not table.rls_enabled:
            yield Violation(
                table.qualified,
                f"{table.qualified} has {len(names)} row-level security polic{'ies' if len(names) > 1 else 'y'} "
                "but row-level security is off: they are ignored",
                fix=alter(table, "ENABLE ROW LEVEL SECURITY"),
                evidence="policies: " + ", ".join(names),
                names=tuple(names),
            )


def rls_disabled(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """R01: every table has row-level security on, with policies (Supabase-style exposure)."""
    policies = _policies(schema)
    for table in schema.tables():
        if not table.rls_enabled:
            yield Violation(
                table.qualified,
                f"{table.qualified} has row-level security off",
                fix=alter(table, "ENABLE ROW LEVEL SECURITY") + " -- then CREATE POLICY ... for each role that reads it",
                evidence="any role granted the table sees and changes every row",
            )
        elif not policies.get(table.qualified):
            yield Violation(
                table.qualified,
                f"{table.qualified} has row-level security on but no policy: only its owner sees rows",
                fix=f"CREATE POLICY {ddl.ident(table.name + '_read')} ON {ddl.relation(table.schema, table.name)} "
                "FOR SELECT USING (<condition>);",
            )


def _has_search_path(config: tuple[str, ...]) -> bool:
    return any(item.lower().startswith("search_path=") for item in config)


def _signature(function: Function) -> str:
    return f"{ddl.relation(function.schema, function.name)}({function.arguments})"


def definer_search_path(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """R02: SECURITY DEFINER functions pin their search_path."""
    for function in schema.catalog.functions:
        if not function.security_definer or _has_search_path(function.config):
            continue
        keyword = "PROCEDURE" if function.kind == "procedure" else "FUNCTION"
        yield Violation(
            "",
            f"SECURITY DEFINER {function.kind} {function.schema}.{function.name}({function.arguments}) "
            "does not set search_path",
            fix=f"ALTER {keyword} {_signature(function)} SET search_path = pg_catalog, pg_temp;",
            evidence="it runs with its owner's rights, and a caller who can create objects in a schema "
            "on the search path can make it call theirs",
            names=(function.name,),
        )


def function_search_path(schema: Schema, options: LintOptions) -> Iterable[Violation]:
    """R02 (strict): every function pins its search_path."""
    for function in schema.catalog.functions:
        if function.security_definer or _has_search_path(function.config) or function.kind == "aggregate":
            continue
        if function.language in ("c", "internal"):
            continue
        keyword = "PROCEDURE" if function.kind == "procedure" else "FUNCTION"
        yield Violation(
            "",
            f"{function.kind} {function.schema}.{function.name}({function.arguments}) has a mutable search_path",
            fix=f"ALTER {keyword} {_signature(function)} SET search_path = pg_catalog, public;",
            evidence="the objects it names resolve against the caller's search_path",
            names=(function.name,),
        )

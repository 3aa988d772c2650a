"""The lint's policy: which rules run at which severity, what is waived, and the
house rules some checks compare against (primary-key types, text vs varchar, naming
patterns, required columns).

The same words are accepted from the ini file, ``dbarch_schema_lint(**options)`` and
``dbarch lint``; a bad value is one ``DbarchError`` that names the setting and the fix.

Rules (``dbarch_schema_lint_rules``, fixture ``rules=``, ``dbarch lint --rules``), one
entry per line:

- ``schema.fk-index = failed`` sets a rule's severity (``failed``, ``warning``, ``off``,
  or ``on`` for its default); an exact id also turns an opt-in rule on. A glob
  (``schema.* = failed``, a strict mode) changes the rules that are on and leaves
  opt-in rules off.
- ``schema.fk-index`` alone (no ``=``) selects: only the selected rules run (and those
  turned on by their exact id).

Waivers (``dbarch_schema_lint_ignore``, fixture ``ignore=``, ``--ignore``), one per
line: ``<rule or glob> <object> [reason]``. The object is a table (``audit_log``,
``billing.invoices``), a column or other object inside one (``contacts.account_id``,
``public.contacts.legacy_id``), a bare object name (``ix_contacts_email``, or a
column name on every table), or a glob of any of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from pytest_dbarch.errors import DbarchError
from pytest_dbarch.findings import Status
from pytest_dbarch.schema_lint.violation import Violation

if TYPE_CHECKING:
    from pytest_dbarch.config import Settings

OFF = "off"


class RuleFacts(Protocol):
    """What the policy reads of a rule (``rule.Rule`` has it; the policy needs no more)."""

    @property
    def id(self) -> str: ...
    @property
    def severity(self) -> Status | None: ...
    @property
    def policy(self) -> str: ...


STRING_POLICIES = ("any", "text", "varchar")
STATS_MODES = ("auto", "on", "off")
NAMING_KINDS = (
    "table", "column", "index", "unique", "primary_key", "foreign_key", "check", "exclusion", "sequence",
    "function", "view",
)
_SEVERITIES = {
    "failed": Status.FAILED, "fail": Status.FAILED,
    "warning": Status.WARNING, "warn": Status.WARNING,
    "off": OFF, "on": "on",
}
# SQL type names as users write them -> pg_type.typname
TYPE_ALIASES = {
    "bigint": "int8", "int8": "int8", "bigserial": "int8", "integer": "int4", "int": "int4", "int4": "int4",
    "serial": "int4", "smallint": "int2", "int2": "int2", "uuid": "uuid", "text": "text",
    "varchar": "varchar", "character varying": "varchar", "char": "bpchar", "character": "bpchar",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp", "date": "date",
    "numeric": "numeric", "decimal": "numeric", "boolean": "bool", "bool": "bool",
    "jsonb": "jsonb", "json": "json", "citext": "citext",
}

#: The option names ``dbarch_schema_lint(**options)`` accepts.
FIXTURE_OPTIONS = (
    "rules", "ignore", "pk_types", "strings", "naming", "required_columns", "stats", "schemas", "models", "queries",
)


def type_name(text: str) -> str:
    word = " ".join(text.lower().split())
    return TYPE_ALIASES.get(word, word)


@dataclass(frozen=True)
class Waiver:
    rule: str
    target: str
    reason: str = ""

    def covers(self, rule: str, violation: Violation) -> bool:
        if not fnmatchcase(rule, self.rule):
            return False
        return any(fnmatchcase(name, self.target) for name in _object_names(violation))


def _object_names(violation: Violation) -> Iterable[str]:
    table = violation.table
    bare = table.split(".", 1)[-1] if table else ""
    if table:
        yield table
        yield bare
    for name in violation.names:
        yield name
        if table:
            yield f"{bare}.{name}"
            yield f"{table}.{name}"


@dataclass(frozen=True)
class LintOptions:
    """The resolved policy of one lint run."""

    only: tuple[str, ...] = ()  # selected rules (ids or globs); empty: all that are on
    severities: tuple[tuple[str, Any], ...] = ()  # (id or glob, Status / "off" / "on"), in order
    ignore: tuple[Waiver, ...] = ()
    pk_types: tuple[str, ...] = ()  # typnames; empty: the rule's default (no int2/int4)
    strings: str = "any"
    naming: tuple[tuple[str, re.Pattern[str]], ...] = ()
    required_columns: tuple[tuple[str, str | None], ...] = ()  # (name, typname or None)
    stats: str = "auto"
    schemas: tuple[str, ...] = ()
    min_stats_days: float = 7.0

    def naming_pattern(self, kind: str) -> re.Pattern[str] | None:
        return dict(self.naming).get(kind)

    def severity(self, rule: RuleFacts) -> Status | None:
        """The severity ``rule`` runs at under this policy, or None when it does not run."""
        return self.resolve(rule)[0]

    def resolve(self, rule: RuleFacts) -> tuple[Status | None, bool]:
        """(severity or None, whether the user set it): a severity the user set applies to
        every finding of the rule; otherwise a rule may rate single findings itself."""
        severity: Status | None = rule.severity
        explicit = False
        if rule.severity is None and rule.policy and self._policy_set(rule.policy):
            severity = Status.WARNING
        named = False  # turned on by its exact id: runs even outside a selection
        for pattern, value in self.severities:
            exact = pattern == rule.id
            if not exact and not fnmatchcase(rule.id, pattern):
                continue
            if value == OFF:
                severity, explicit, named = None, True, False
            elif not exact and severity is None:
                continue  # a glob never turns an opt-in rule on
            elif value == "on":
                severity, named = severity or rule.severity or Status.WARNING, named or exact
            else:
                severity, explicit, named = value, True, named or exact
        if self.only and not named:
            if not any(fnmatchcase(rule.id, p) for p in self.only):
                return None, explicit
            if severity is None and rule.id in self.only:
                severity = Status.WARNING
        return severity, explicit

    def _policy_set(self, name: str) -> bool:
        value = getattr(self, name)
        return value not in ((), None, "", "any")

    def waiver(self, rule: str, violation: Violation) -> Waiver | None:
        return next((w for w in self.ignore if w.covers(rule, violation)), None)

    def merged(self, **overrides: Any) -> LintOptions:
        """These options with fixture or command-line values on top (rules and waivers add up)."""
        unknown = sorted(set(overrides) - set(FIXTURE_OPTIONS))
        if unknown:
            raise DbarchError(
                f"unknown schema-lint option {', '.join(repr(u) for u in unknown)}",
                f"use one of {', '.join(FIXTURE_OPTIONS)}",
            )
        options = self
        for name, value in overrides.items():
            options = _apply(options, name, value, name)
        return options


def _apply(options: LintOptions, name: str, value: Any, label: str) -> LintOptions:
    """``options`` with one more setting applied; ``label`` names it in errors."""
    if value in (None, (), [], "") or name in ("models", "queries"):  # evidence, not policy
        return options
    if name == "rules":
        only, severities = parse_rules(_lines(value), label)
        return replace(options, only=only or options.only, severities=options.severities + severities)
    if name == "ignore":
        return replace(options, ignore=options.ignore + parse_ignore(_lines(value), label))
    if name == "pk_types":
        return replace(options, pk_types=parse_pk_types(_lines(value)))
    if name == "strings":
        return replace(options, strings=_choice(str(value), STRING_POLICIES, label))
    if name == "naming":
        return replace(options, naming=parse_naming(_lines(value), label))
    if name == "required_columns":
        return replace(options, required_columns=parse_required(_lines(value)))
    if name == "stats":
        return replace(options, stats=_choice(str(value), STATS_MODES, label))
    if name == "schemas":
        return replace(options, schemas=tuple(w for line in _lines(value) for w in line.replace(",", " ").split()))
    raise DbarchError(f"unknown schema-lint option {name!r}", f"use one of {', '.join(FIXTURE_OPTIONS)}")


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    if isinstance(value, Mapping):
        return [f"{k} = {v}" for k, v in value.items()]
    return [str(v) for v in value]


def _choice(value: str, choices: tuple[str, ...], setting: str) -> str:
    word = value.strip().lower()
    if word not in choices:
        raise DbarchError(f"{setting} is {value!r}", f"choose one of {', '.join(choices)}")
    return word


def parse_rules(lines: Iterable[str], setting: str) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """Selection and severities from ``id``, ``id = severity``, ``glob = severity`` lines."""
    only: list[str] = []
    severities: list[tuple[str, Any]] = []
    for raw in lines:
        for entry in _entries(raw):
            if "=" not in entry:
                only.append(_rule_pattern(entry, setting))
                continue
            pattern, _, word = entry.partition("=")
            value = _SEVERITIES.get(word.strip().lower())
            if value is None:
                raise DbarchError(
                    f"{setting}: {entry.strip()!r} gives the severity {word.strip()!r}",
                    "write <rule> = failed, warning, on or off (e.g. schema.fk-index = failed)",
                )
            severities.append((_rule_pattern(pattern, setting), value))
    return tuple(only), tuple(severities)


def _entries(line: str) -> list[str]:
    """One line may hold several entries: ``a = failed, b = off`` or ``a b c``."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return []
    if "=" in line:
        return [part for part in re.split(r"[,;]\s*", line) if part.strip()]
    return line.replace(",", " ").split()


def _rule_pattern(text: str, setting: str) -> str:
    from pytest_dbarch.schema_lint import RULES

    pattern = text.strip()
    if not pattern.startswith("schema.") and pattern != "*":
        pattern = f"schema.{pattern}"
    if not any(fnmatchcase(rule.id, pattern) for rule in RULES):
        close = [r.id for r in RULES if pattern.removeprefix("schema.")[:6] in r.id][:3]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DbarchError(
            f"{setting}: no schema-lint rule matches {text.strip()!r}{hint}",
            "run 'dbarch lint --list-rules' for the rule ids",
        )
    return pattern


def parse_ignore(lines: Iterable[str], setting: str) -> tuple[Waiver, ...]:
    waivers = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise DbarchError(
                f"{setting}: {line!r} names no object",
                "write '<rule> <table or object> [reason]' (e.g. schema.fk-index audit_log.row_id "
                "append-only, never deleted), or switch the rule off with '<rule> = off'",
            )
        rule = parts[0] if parts[0] == "*" else _rule_pattern(parts[0], setting)
        waivers.append(Waiver(rule, parts[1], parts[2] if len(parts) > 2 else ""))
    return tuple(waivers)


def parse_pk_types(lines: Iterable[str]) -> tuple[str, ...]:
    """``bigint uuid`` -> ``("int8", "uuid")``; a line that is one known name with spaces
    (``timestamp with time zone``) stays whole."""
    words: list[str] = []
    for line in lines:
        text = " ".join(line.split("#", 1)[0].lower().split())
        if text in TYPE_ALIASES:
            words.append(TYPE_ALIASES[text])
        else:
            words += [type_name(w) for w in text.replace(",", " ").split()]
    return tuple(words)


def parse_naming(lines: Iterable[str], setting: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    patterns = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        kind, sep, regex = line.partition("=")
        kind = kind.strip().lower().replace(" ", "_")
        if not sep or kind not in NAMING_KINDS:
            raise DbarchError(
                f"{setting}: {line!r} is not '<kind> = <regex>'",
                f"use one of {', '.join(NAMING_KINDS)} as the kind, e.g. index = ^(ix|ux)_[a-z0-9_]+$",
            )
        try:
            patterns.append((kind, re.compile(regex.strip())))
        except re.error as exc:
            raise DbarchError(
                f"{setting}: the {kind} pattern {regex.strip()!r} is not a regular expression: {exc}",
                "fix the pattern (Python re syntax; it must match the whole name)",
            ) from None
    return tuple(patterns)


def parse_required(lines: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    required = []
    for line in lines:
        for word in line.split("#", 1)[0].replace(",", " ").split():
            name, _, kind = word.partition(":")
            required.append((name, type_name(kind) if kind else None))
    return tuple(required)


def from_settings(settings: Settings) -> LintOptions:
    """The ini / command-line policy of a pytest session."""
    return from_values(
        {
            "rules": settings.schema_lint_rules,
            "ignore": settings.schema_lint_ignore,
            "pk_types": settings.schema_lint_pk_types,
            "strings": settings.schema_lint_strings,
            "naming": settings.schema_lint_naming,
            "required_columns": settings.schema_lint_required_columns,
            "stats": settings.schema_lint_stats,
            "schemas": settings.schema_lint_schemas,
        },
        prefix="dbarch_schema_lint_",
    )


def from_values(values: Mapping[str, Any], prefix: str = "", base: LintOptions | None = None) -> LintOptions:
    """``base`` (default: the defaults) with raw setting values applied; errors name each
    setting as ``prefix + name``."""
    options = base or LintOptions()
    for name, value in values.items():
        options = _apply(options, name, value, prefix + name)
    return options


def enabled(value: str | None) -> bool:
    """``dbarch_schema_lint``: true/on/yes/1 turn the collected items on."""
    word = (value or "").strip().lower()
    if word in ("", "false", "off", "no", "0"):
        return False
    if word in ("true", "on", "yes", "1"):
        return True
    raise DbarchError(
        f"dbarch_schema_lint is {value!r}", "write dbarch_schema_lint = true (or false)"
    )

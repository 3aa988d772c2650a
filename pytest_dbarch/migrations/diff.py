"""Differences between two snapshots, phrased the way a reviewer would write them.

``compare(expected, actual)`` lists what ``actual`` lost ("column contacts.id: default
nextval('contacts_id_seq'::regclass) lost"), what it has that ``expected`` did not
("index ix_contacts_status left behind") and what changed ("constraint ck_x on t:
definition changed from ... to ..."), one line each, in a stable order.
"""

from __future__ import annotations

import re

from pytest_dbarch.migrations.snapshot import Snapshot

_LONG = 160  # definitions longer than this are shown on their own lines


def compare(expected: Snapshot, actual: Snapshot, lost: str = "lost", extra: str = "left behind") -> list[str]:
    lines: list[str] = []
    before, after = expected.objects, actual.objects
    if before == after:  # the common case, decided in C (unchanged objects share their fields)
        return lines
    # A relation lost or left behind is one line, not one more per column or constraint.
    whole = {name for kind, name in before.keys() ^ after.keys() if kind in _RELATIONS}
    for key in sorted(before.keys() | after.keys()):
        kind, name = key
        if _part_of(kind, name, whole):
            continue
        if key not in after:
            lines.append(f"{kind} {name} {lost}")
        elif key not in before:
            lines.append(f"{kind} {name} {extra}")
        else:
            lines.extend(_field_changes(kind, name, before[key], after[key], lost, extra))
    return lines


def is_order_change(line: str) -> bool:
    """A line that says only that columns changed places (not that any was lost)."""
    return ": columns order changed from (" in line


_QUALIFIER = re.compile(r'(?<![\w".])(?:"[^"]+"|[a-z_][a-z0-9_$]*)\.(?=(?:"[^"]+"|[a-z_][a-z0-9_$]*)\()', re.I)
_DEFAULT_CHANGE = re.compile(r"^column \S+: default changed from (.*) to (.*)$")


def is_requalified(line: str) -> bool:
    """A default that calls a function of the same name in another schema, and nothing
    else changed: ``gen_random_uuid()`` (built in since PostgreSQL 13) against
    ``public.gen_random_uuid()`` (pgcrypto's). Which one an unqualified name binds to
    depends on the server the history ran on, not on the revision."""
    match = _DEFAULT_CHANGE.match(line)
    if match is None:
        return False
    was, now = match.groups()
    return was != now and _QUALIFIER.sub("", was) == _QUALIFIER.sub("", now)


def is_extension_kept(line: str) -> bool:
    """An extension the upgrade installed that the downgrade leaves installed: often kept
    on purpose (other objects may use it, ``CREATE EXTENSION IF NOT EXISTS`` upgrades
    again), unlike one the downgrade removes."""
    return line.startswith("extension ") and line.endswith(" left behind")


_RELATIONS = {"table", "view", "materialized view", "foreign table", "composite type"}


def _part_of(kind: str, name: str, relations: set[str]) -> bool:
    if kind == "column":
        return name.rsplit(".", 1)[0] in relations
    if kind in ("constraint", "trigger", "policy"):
        return name.rsplit(" on ", 1)[-1] in relations
    return False


def _field_changes(kind: str, name: str, old: dict[str, str], new: dict[str, str], lost: str, extra: str) -> list[str]:
    lines = []
    for fname in sorted(old.keys() | new.keys()):
        was, now = old.get(fname, ""), new.get(fname, "")
        if was == now:
            continue
        if fname == "columns" and sorted(was.split(", ")) != sorted(now.split(", ")):
            continue  # added or missing columns are reported one by one
        subject = f"{kind} {name}: {fname}"
        if fname == "privileges":
            was_items, now_items = set(was.split()), set(now.split())
            lines += [f"{kind} {name}: {_grant(i)} {lost}" for i in sorted(was_items - now_items)]
            lines += [f"{kind} {name}: {_grant(i)} {extra}" for i in sorted(now_items - was_items)]
        elif fname == "columns":
            lines.append(f"{subject} order changed from ({was}) to ({now})")
        elif now == "":
            lines.append(f"{subject} {_show(was)} {lost}" if was != "yes" else f"{kind} {name}: no longer {fname}")
        elif was == "":
            lines.append(f"{subject} {_show(now)} {extra}" if now != "yes" else f"{kind} {name}: now {fname}")
        else:
            was_shown, now_shown = _from_difference(was, now)
            lines.append(f"{subject} changed from {_show(was_shown)} to {_show(now_shown)}")
    return lines


def _from_difference(was: str, now: str) -> tuple[str, str]:
    """Long definitions that share a beginning are shown from shortly before where they
    differ, so the line says what changed (two function bodies cut at the same place
    read as equal)."""
    a, b = " ".join(was.split()), " ".join(now.split())
    if len(a) <= _LONG and len(b) <= _LONG:
        return a, b
    same = 0
    for x, y in zip(a, b):
        if x != y:
            break
        same += 1
    if same < _LONG // 2:
        return a, b
    start = same - 40
    return "..." + a[start:], "..." + b[start:]


def _show(value: str) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= _LONG else flat[: _LONG - 3] + "..."


_PRIVILEGES = {
    "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "D": "TRUNCATE", "x": "REFERENCES",
    "t": "TRIGGER", "X": "EXECUTE", "U": "USAGE", "C": "CREATE", "c": "CONNECT", "T": "TEMPORARY",
    "m": "MAINTAIN", "s": "SET", "A": "ALTER SYSTEM",
}


def _grant(item: str) -> str:
    """``=r/postgres`` as ``grant SELECT to PUBLIC``."""
    grantee, _, rest = item.partition("=")
    letters = rest.split("/")[0]
    names = [_PRIVILEGES.get(ch, ch) for ch in letters if ch != "*"]
    return f"grant {', '.join(names)} to {grantee or 'PUBLIC'}"

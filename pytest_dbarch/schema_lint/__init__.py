"""Schema architecture lint: rules over the live catalog, the models beside it, and
the DDL that fixes each finding.

``registry.RULES`` lists every rule (id, default severity, why); ``lint.py`` runs them;
``hooks.py`` is the pytest face (items, ``dbarch_schema_lint`` fixture) and ``cli.py``
the ``dbarch lint`` command. Ids follow ``shared/reference/schema-lint-rules.md``
(``ref``). Severities: failed (integrity or outage risk), warning (cost or likely
mistake), None (opt-in: an opinion, or needs a policy setting).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``RULES`` and ``BY_ID`` load the rule modules on first use, not when any part of
    the package (its pytest hooks, at every session start) is imported."""
    if name in ("RULES", "BY_ID"):
        from pytest_dbarch.schema_lint import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""What the generated items (migration checks, schema lint, constraint checks) share at
collection: whether this run asked for them."""

from __future__ import annotations

from pathlib import Path

import pytest


def in_scope(config: pytest.Config, source: Path) -> bool:
    """Generate the items on a default run, or when an argument names ``source`` (the
    history, the schema source, the ini file) or a directory above it; not when the
    user picked other test files."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return True
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == source or path in source.parents:
            return True
    return False

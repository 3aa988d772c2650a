"""Outputs: each renders Findings and nothing else."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def task_status_schema() -> dict[str, Any]:
    """The JSON Schema of ``task-status-{ID}.json`` shipped with the package."""
    text = resources.files(__name__).joinpath("task-status.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))

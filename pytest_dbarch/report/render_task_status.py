"""``task-status-{ID}.json``: the seeds' task status object, plus counts.

Shape (see ``task-status.schema.json``): ``agentId``, ``taskId``, ``relatedAgentFiles``,
``description``, ``startedAt``, ``workstreams`` (``id`` = area, ``status``,
``crossAgentReferences``), ``decisions``; added: ``project``, ``updatedAt``, ``status``,
``phase``, ``runs``, ``counts``, and per workstream ``title``, ``counts``, ``open``.
"""

from __future__ import annotations

import json

from pytest_dbarch.report.model import Report

KIND = "task-status"


def render(report: Report) -> str:
    data = {
        "agentId": report.agent_id,
        "taskId": report.task_id,
        "project": report.project,
        "relatedAgentFiles": list(report.related_files),
        "description": report.description,
        "startedAt": report.started_at,
        "updatedAt": report.updated_at,
        "status": report.status,
        "phase": report.phase,
        "runs": report.run,
        "counts": report.counts,
        "workstreams": [
            {
                "id": w.area.value,
                "title": w.title,
                "status": w.status,
                "crossAgentReferences": list(w.cross_references),
                "counts": w.counts,
                "open": [f"{f.rule}: {f.title}" for f in w.open],
            }
            for w in report.workstreams
        ],
        "decisions": list(report.decisions),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

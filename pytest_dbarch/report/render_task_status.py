"""``task-status-{ID}.json``: the seeds' task status object, plus counts.

Shape (see ``task-status.schema.json``): ``agentId``, ``taskId``, ``relatedAgentFiles``,
``description``, ``startedAt``, ``workstreams`` (``id`` = area, ``status``,
``crossAgentReferences``), ``decisions``; added: ``project``, ``updatedAt``, ``status``,
``phase``, ``runs``, ``lastRun`` (what the newest run covered), ``counts`` (``stale``:
items not re-checked in the newest run), ``failingTests``, and per workstream
``title``, ``counts``, ``open``, ``stale``. Every item, with the run it was last seen
in, is in ``ledger-{ID}.json``.
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
        "lastRun": report.last_run,
        "counts": report.counts,
        "failingTests": [{"test": t.nodeid, "outcome": t.outcome, "run": t.run} for t in report.failing],
        "workstreams": [
            {
                "id": w.area.value,
                "title": w.title,
                "status": w.status,
                "crossAgentReferences": list(w.cross_references),
                "counts": w.counts,
                "open": [f"{i.finding.rule}: {i.finding.title}" for i in w.open],
                "stale": [
                    f"{i.finding.rule}: {i.finding.title} (last seen in run {i.last_run})"
                    for i in w.open
                    if report.is_stale(i)
                ],
            }
            for w in report.workstreams
        ],
        "decisions": list(report.decisions),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

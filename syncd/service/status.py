"""What `syncd status` and `GET /api/v1/status` show: runs, holds, overdue changes, resyncs, open
escalations, the daemon."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from syncd.domain.escalation import open_problems
from syncd.service.leader import Holder
from syncd.state.store import StateStore, aware


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else aware(moment).isoformat(timespec="seconds")


def gather_status(store: StateStore, today: date, daemon: Holder | None, next_cycle: datetime | None = None,
                  runs: int = 10) -> dict[str, Any]:
    """The state at a glance, JSON-ready (ids and counts, never a name or a mobile)."""
    return {
        "daemon": {"running": daemon is not None, **(daemon.as_json() if daemon else {}),
                   "next_cycle": _time(next_cycle)},
        "runs": [
            {"id": run.id, "trigger": run.trigger, "mode": run.mode, "scope": run.scope,
             "started_at": _time(run.started_at), "finished_at": _time(run.finished_at),
             "outcome": run.outcome or ("running" if run.finished_at is None else None), "counts": run.counts}
            for run in store.runs(runs)
        ],
        "held": [
            {"run_id": run_id, "started_at": _time(started), "changes": count,
             "decide": f"syncd approve {run_id} | syncd reject {run_id}"}
            for run_id, started, count in store.held_runs()
        ],
        "overdue": [
            {"kind": entry.kind, "subject": entry.subject, "state": entry.state, "run_id": entry.run_id,
             "detected_at": _time(entry.detected_at), "due": entry.due_at.isoformat(),
             "error": entry.error_category}
            for entry in store.overdue(today)
        ],
        "resyncs": [request.as_json() for request in store.resyncs()],
        "escalations": [{k: v for k, v in problem.as_json().items() if k != "notices"}
                        for problem in open_problems(store)],
    }

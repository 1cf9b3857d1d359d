"""Manual resyncs: a queued request carried out as a scoped cycle, by the daemon or inline by the CLI."""

from __future__ import annotations

import threading

import structlog

from syncd.config import Config
from syncd.domain.scope import ResyncRequest
from syncd.domain.source import Source
from syncd.domain.target import Target, TargetError
from syncd.engine.cycle import CycleOptions, run_cycle
from syncd.state.store import Busy, StateStore

log = structlog.get_logger(__name__)


def carry_out(request: ResyncRequest, config: Config, source: Source, target: Target, store: StateStore,
              stop: threading.Event | None = None) -> ResyncRequest | None:
    """Run the request's scoped cycle and record how it ended; None when another cycle holds the lock
    (the request goes back to the queue)."""
    options = CycleOptions(trigger="resync", full=request.full, scope=request.scope, stop=stop)
    log.info("resync.started", resync_id=request.id, scope=request.scope.describe(), full=request.full,
             requested_by=request.requested_by)
    try:
        result = run_cycle(config, source, target, store, options)
    except Busy:
        store.requeue_resync(request.id)
        return None
    except TargetError as exc:  # a full resync's directory read can fail before any plan exists
        store.finish_resync(request.id, "failed", None, exc.category, 1, f"the directory refused: {exc.category}")
        log.warning("resync.failed", resync_id=request.id, category=exc.category)
        return store.resync(request.id)
    status, outcome, exit_code, message = "done", result.outcome, result.exit_code, ""
    subject = request.scope.value
    if request.scope.kind == "employee" and subject not in result.snapshot.people and not result.plan.changes:
        rejected = [r for r in result.snapshot.rejections if r.kind == "person" and r.key == subject]
        status, outcome, exit_code = "failed", "rejected" if rejected else "not_found", 1
        message = (f"{subject}: the HR record was rejected ({rejected[0].field}: {rejected[0].reason})" if rejected
                   else f"{subject} is not in HR's records")
    elif request.scope.kind == "department" and subject not in result.snapshot.departments and not result.plan.changes:
        status, outcome, exit_code = "failed", "not_found", 1
        message = f"{subject} is not in HR's departments"
    store.finish_resync(request.id, status, result.run_id, outcome, exit_code, message)
    log.info("resync.finished", resync_id=request.id, run_id=result.run_id, outcome=outcome)
    return store.resync(request.id)


def cycle_outcome(done: ResyncRequest) -> str:
    """How a carried-out resync counts among cycles: by its run, not by its request. A resync of an id
    HR does not know (or rejects) is a request that failed, while its cycle ran and succeeded."""
    if done.outcome in ("not_found", "rejected"):
        return "success"
    return "success" if done.exit_code == 0 else "failed"

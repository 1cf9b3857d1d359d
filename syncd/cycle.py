"""One cycle, as data flows: read → validate → reconcile → apply → summary (DESIGN.md §2)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog

from syncd.apply import Applier, ApplyReport
from syncd.config import Config
from syncd.model import Plan, Snapshot
from syncd.reconcile import reconcile
from syncd.source import Source
from syncd.state.store import StateStore
from syncd.target import Target
from syncd.validate import CodeTables, build_snapshot

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class CycleResult:
    """What one cycle read, planned and did."""

    snapshot: Snapshot
    plan: Plan
    run_id: str | None = None
    report: ApplyReport = field(default_factory=ApplyReport)
    outcome: str = "success"  # success | partial | failed | dry_run

    @property
    def exit_code(self) -> int:
        """0 success (or dry run), 1 when a change failed or the run stopped."""
        return 0 if self.outcome in ("success", "dry_run") else 1


def run_cycle(config: Config, source: Source, target: Target, store: StateStore, *,
              trigger: str = "manual", dry_run: bool = False) -> CycleResult:
    """Run one cycle; with `dry_run` compute and return the plan without writing anything."""
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(trigger=trigger, unit=config.unit.root_department)
    try:
        codes = CodeTables.load(config.source.code_tables)
        snapshot = build_snapshot(source, config.unit.root_department, codes)
        for rejection in snapshot.rejections:
            log.warning("record.rejected", kind=rejection.kind, key=rejection.key, field=rejection.field,
                        reason=rejection.reason, location=rejection.location())
        plan = reconcile(snapshot, store.links(), config.unit.root_department)
        result = CycleResult(snapshot, plan)
        if dry_run:
            result.outcome = "dry_run"
            _summary(result, started)
            return result
        result.run_id = store.start_run(trigger, "incremental", dry_run=False)
        structlog.contextvars.bind_contextvars(run_id=result.run_id)
        applier = Applier(target, store, store.links(), config.unit.root_department,
                          config.unit.root_organization_code, config.escalation.deadline_workdays)
        result.report = applier.apply(result.run_id, plan)
        if result.report.stopped:
            result.outcome = "failed"
        elif result.report.failed:
            result.outcome = "partial"
        counts = {**result.report.counts(), "rejected": len(snapshot.rejections)}
        store.finish_run(result.run_id, result.outcome, counts)
        _summary(result, started)
        return result
    finally:
        structlog.contextvars.unbind_contextvars("trigger", "unit", "run_id")


def _summary(result: CycleResult, started: float) -> None:
    """The one canonical line per cycle."""
    done = sum(1 for o in result.report.outcomes if o.state == "done")
    log.info(
        "cycle.finished",
        outcome=result.outcome,
        complete=result.snapshot.complete,
        departments=len(result.snapshot.departments),
        people=len(result.snapshot.people),
        rejected=len(result.snapshot.rejections),
        planned=len(result.plan),
        done=done,
        failed=result.report.failed,
        stopped=result.report.stopped,
        duration_s=round(time.monotonic() - started, 3),
        **{f"plan_{kind.value}": len(changes) for kind, changes in result.plan.by_kind().items()},
    )

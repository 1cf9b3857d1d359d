"""One cycle, as data flows: read → validate → reconcile → apply → summary (DESIGN.md §2)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog

from syncd.apply import Applier, ApplyReport, DryRunJournal
from syncd.config import Config
from syncd.drift import Drift, detect_drift
from syncd.guard import WAITING, Held, Limits, ScopeViolation, check_scope, guard
from syncd.model import Change, ChangeKind, Plan, Snapshot
from syncd.reconcile import reconcile
from syncd.recovery import recover
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
    held: list[Held] = field(default_factory=list)
    drift: Drift | None = None
    decide_runs: list[str] = field(default_factory=list)  # runs whose holds an operator must decide
    outcome: str = "success"  # success | partial | failed | held | dry_run

    @property
    def exit_code(self) -> int:
        """0 success (or dry run), 1 when a change failed or the run stopped, 3 when held by a guard."""
        return {"success": 0, "dry_run": 0, "held": 3}.get(self.outcome, 1)


def run_cycle(config: Config, source: Source, target: Target, store: StateStore, *,
              trigger: str = "manual", dry_run: bool = False, full: bool = False) -> CycleResult:
    """Run one cycle under the cycle lock; with `dry_run` compute and return the plan, writing nothing.

    `full` also reads the unit's part of the directory and repairs what was changed by hand.
    Raises Busy when another cycle holds the lock.
    """
    with store.exclusive():
        return _run_cycle(config, source, target, store, trigger=trigger, dry_run=dry_run, full=full)


def _run_cycle(config: Config, source: Source, target: Target, store: StateStore, *,
               trigger: str, dry_run: bool, full: bool) -> CycleResult:
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(trigger=trigger, unit=config.unit.root_department)
    try:
        codes = CodeTables.load(config.source.code_tables)
        snapshot = build_snapshot(source, config.unit.root_department, codes)
        for rejection in snapshot.rejections:
            # A file and line locate a record without naming anyone; a DN may hold a name (cn=…).
            log.warning("record.rejected", kind=rejection.kind, key=rejection.key, field=rejection.field,
                        reason=rejection.reason, location=rejection.location() if rejection.line else rejection.kind)
        if not dry_run:
            recover(store, target, config.unit.root_department, config.unit.root_organization_code,
                    config.unit.ext_org_code_prefix)
        links = store.links()
        drift = None
        if full:
            org_codes = [config.unit.root_organization_code,
                         *(link.organization_code for link in links.departments.values() if link.status == "active")]
            linked = [link.employee_code for link in links.people.values() if link.status == "active"]
            drift = detect_drift(links, target.read_people(org_codes, linked))
            links = drift.links
            log.info("drift.checked", changed=len(drift.changed_fields), moved=len(drift.moved),
                     deactivated=len(drift.deactivated), missing=len(drift.missing), unknown=len(drift.unknown))
        plan = reconcile(snapshot, links, config.unit.root_department)
        if drift is not None and config.safety.unknown_people == "deactivate" and snapshot.complete:
            # Only people whose main position is in the unit; the applier skips anyone a join of
            # this same run adopts (their mobile matched an HR record after all).
            ours = set(org_codes)
            plan.changes.extend(Change(ChangeKind.LEAVE, entry.employee_code, {"employee_code": entry.employee_code},
                                       reason="in the directory, unknown to HR")
                                for entry in drift.unknown if entry.organization_code in ours)
        result = CycleResult(snapshot, plan, drift=drift)
        try:
            check_scope(plan, snapshot, config.unit.root_department)
        except ScopeViolation as exc:
            log.error("plan.refused", reason=str(exc))
            result.outcome, result.report.stopped = "failed", f"plan refused: {exc}"
            _summary(result, started)
            return result
        safety = config.safety
        limits = Limits(safety.max_deactivations, safety.max_deactivation_share, safety.structure_changes == "hold")
        guarded = guard(plan, links, limits, store.approvals())
        result.held = guarded.held
        applier_options = (config.escalation.deadline_workdays, safety.quarantine_failure_share,
                           config.target.concurrency, config.escalation.workday_overrides,
                           config.unit.ext_org_code_prefix)
        if dry_run:
            # Dry run at the transport boundary: the plan is applied against a target that records
            # its writes instead of sending them, with a journal that keeps nothing.
            dry = Applier(target, DryRunJournal(), links, config.unit.root_department,
                          config.unit.root_organization_code, *applier_options)
            result.report = dry.apply("dry-run", guarded.allowed, guarded.held)
            result.outcome = "dry_run"
            _summary(result, started)
            return result
        result.run_id = store.start_run(trigger, "full" if full else "incremental", dry_run=False)
        structlog.contextvars.bind_contextvars(run_id=result.run_id)
        applier = Applier(target, store, links, config.unit.root_department, config.unit.root_organization_code,
                          *applier_options)
        # A hold already waiting for a decision is not journaled (or announced) again: the admin
        # decides once, on the run that first held it.
        pending = store.pending_holds()
        new_holds = [h for h in guarded.held if h.change.fingerprint() not in pending]
        result.report = applier.apply(result.run_id, guarded.allowed, new_holds)
        store.settle_decisions({c.fingerprint() for c in plan.changes},
                               {o.change.fingerprint() for o in result.report.outcomes if o.state == "done"},
                               result.run_id)
        if result.report.stopped:
            result.outcome = "failed"
        elif result.report.failed:
            result.outcome = "partial"
        elif guarded.needs_approval:
            result.outcome = "held"
        if guarded.needs_approval:  # announced whatever else happened: a failure elsewhere must not hide it
            waiting_on = {pending[fp] for h in guarded.held if (fp := h.change.fingerprint()) in pending}
            if any(h.reason != WAITING for h in new_holds):
                log.warning("plan.held", held=len(guarded.held), reasons=sorted({h.reason for h in guarded.held}))
            else:
                log.info("plan.still_held", held=len(guarded.held), decide_run=sorted(waiting_on))
            result.decide_runs = sorted({*waiting_on, *([result.run_id] if new_holds else [])})
        counts = {**result.report.counts(), "held": len(guarded.held), "rejected": len(snapshot.rejections),
                  "incomplete_people": len({i.key for i in snapshot.issues})}
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
        incomplete=len({issue.key for issue in result.snapshot.issues}),
        planned=len(result.plan),
        held=len(result.held),
        done=done,
        failed=result.report.failed,
        stopped=result.report.stopped,
        duration_s=round(time.monotonic() - started, 3),
        **{f"plan_{kind.value}": len(changes) for kind, changes in result.plan.by_kind().items()},
    )

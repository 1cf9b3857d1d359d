"""One cycle, as data flows: read → plan → guard → apply → record (DESIGN.md §2).

The steps are shared by every way a cycle starts: `syncd sync`, the daemon's schedule and a
manual resync of one person or department (a `Scope`). Each step is a function of what the step
before it produced; `run_cycle` strings them together under the cycle lock.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from syncd.config import Config
from syncd.domain.correlate import find_existing
from syncd.domain.drift import Drift, detect_drift
from syncd.domain.guard import WAITING, GuardedPlan, Held, InPost, Limits, ScopeViolation, check_scope, guard
from syncd.domain.model import Change, ChangeKind, LinkState, PersonStatus, Plan, Snapshot
from syncd.domain.reconcile import reconcile
from syncd.domain.scope import EVERYTHING, Scope, keep_in_scope, narrow
from syncd.domain.source import Source, change_token
from syncd.domain.target import Target
from syncd.domain.validate import SOURCE_REJECTION, CodeTables, build_snapshot
from syncd.engine.apply import Applier, ApplyReport, ApplySettings, DryRunJournal
from syncd.engine.recovery import recover
from syncd.state.store import DECIDED_AT, StateStore, aware

log = structlog.get_logger(__name__)

SOURCE_TOKEN = "source.change_token"
IN_POST = "source.in_post"  # in-post people of the last complete whole-unit read let through
YOUNG_GENERATION = 50_000  # objects allocated between the collector's passes during a cycle (see young_generation)


@dataclass(frozen=True, slots=True)
class CycleOptions:
    """How a cycle runs: who started it, what it covers, and whether it may write."""

    trigger: str = "manual"  # manual | schedule | full | resync | demo | start
    full: bool = False  # also read the directory and repair what was changed by hand
    dry_run: bool = False  # compute and show the plan; write nothing
    scope: Scope = EVERYTHING
    # An incremental cycle of the daemon: when the source says nothing changed since the last
    # complete read and nothing is left to retry, record a skipped cycle and read nothing.
    skip_unchanged: bool = False
    stop: threading.Event | None = None  # set by SIGTERM: finish the change in flight, then stop

    @property
    def mode(self) -> str:
        """`full` or `incremental`, as the run is recorded."""
        return "full" if self.full else "incremental"


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
    taken_in: int = 0  # earlier runs' holds outside a scoped run's plan that it now holds too
    outcome: str = "success"  # success | partial | failed | held | dry_run | skipped
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 success (or dry run, or skipped), 1 when a change failed or the run stopped, 3 when held."""
        return {"success": 0, "dry_run": 0, "skipped": 0, "held": 3}.get(self.outcome, 1)


@dataclass(slots=True)
class Planned:
    """The plan step's product: the plan, the links it was made from, and what the drift check found."""

    snapshot: Snapshot
    plan: Plan
    links: LinkState  # every link (scoped runs plan from a part, apply with all)
    drift: Drift | None
    subjects: frozenset[str] | None = None  # a scoped run's subjects; None for the whole unit


def run_cycle(config: Config, source: Source, target: Target, store: StateStore,
              options: CycleOptions | None = None) -> CycleResult:
    """Run one cycle under the cycle lock; raises Busy when another cycle holds it."""
    options = options or CycleOptions()
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(trigger=options.trigger, unit=config.unit.root_department)
    try:
        with store.exclusive(), young_generation(YOUNG_GENERATION):
            result = _steps(config, source, target, store, options)
        result.duration_s = round(time.monotonic() - started, 3)
        _summary(result, options)
        return result
    finally:
        structlog.contextvars.unbind_contextvars("trigger", "unit", "run_id")


@contextmanager
def young_generation(size: int) -> Iterator[None]:
    """Let the collector's youngest generation grow to `size` objects for the duration, then restore.

    A cycle builds millions of records that live until it ends and hold no reference cycles. With
    the default threshold (700) the collector runs every 700 of them and, as they age, walks the
    whole growing snapshot again and again: 14 full passes and 3.7 s of a 40 s cycle at 1,000,000
    people, against 0.4 s with 50,000. Young garbage cycles still go within 50,000 allocations.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(size, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _steps(config: Config, source: Source, target: Target, store: StateStore, options: CycleOptions) -> CycleResult:
    token = change_token(source, store.value(SOURCE_TOKEN))
    if options.skip_unchanged and _nothing_to_do(store, token):
        return CycleResult(Snapshot(), Plan(), outcome="skipped")
    snapshot = read(config, source)
    if not options.dry_run:
        recover(store, target, config.unit.root_department, config.unit.root_organization_code,
                config.unit.ext_org_code_prefix)
    planned = plan(config, snapshot, store, target, options)
    result = CycleResult(snapshot, planned.plan, drift=planned.drift)
    try:
        check_scope(planned.plan, snapshot, config.unit.root_department)
    except ScopeViolation as exc:
        log.error("plan.refused", reason=str(exc))
        result.outcome, result.report.stopped = "failed", f"plan refused: {exc}"
        return result
    guarded = guard_plan(config, planned, store)
    result.held = guarded.held
    apply(config, planned, guarded, store, target, options, result)
    if not options.dry_run:
        record(store, result, guarded, planned.subjects)
        if snapshot.complete and options.scope.everything and token is not None:
            # Only a complete whole-unit read vouches for the token: taken before the read, so a
            # change made during it is seen again next time.
            store.set_value(SOURCE_TOKEN, token)
        if snapshot.complete and options.scope.everything and not guarded.shrink_held:
            # The size the sanity floor compares with: only a read let through (or approved) sets it,
            # or a shrunken export held once would pass on the next cycle.
            store.set_value(IN_POST, str(in_post_count(snapshot)))
    return result


def _nothing_to_do(store: StateStore, token: str | None) -> bool:
    """Whether an incremental cycle may be skipped: the source unchanged since the last complete read,
    the last run left nothing to retry, and nobody decided a held change since."""
    if token is None or store.value(SOURCE_TOKEN) != token:
        return False
    last = store.last_unit_run(finished=False)  # a run a crash left unfinished needs recovery: not skipped
    if last is None or last.outcome not in ("success", "held"):
        return False
    decided = store.value(DECIDED_AT)
    return not (decided and datetime.fromisoformat(decided) > aware(last.started_at))


def read(config: Config, source: Source) -> Snapshot:
    """Read the HR source to the end and validate it; every rejected record is logged (no names)."""
    snapshot = build_snapshot(source, config.unit.root_department, CodeTables.load(config.source.code_tables))
    for rejection in snapshot.rejections:
        if rejection.kind == SOURCE_REJECTION:
            # The one line that says why this read cannot vouch for anyone's absence.
            log.error("source.incomplete", reason=rejection.reason, departments=len(snapshot.departments),
                      consequence="no leave, no department retirement, no value from the damaged part")
            continue
        # A file and line locate a record without naming anyone; a DN may hold a name (cn=…).
        log.warning("record.rejected", kind=rejection.kind, key=rejection.key, field=rejection.field,
                    reason=rejection.reason, location=rejection.location() if rejection.line else rejection.kind)
    return snapshot


def plan(config: Config, snapshot: Snapshot, store: StateStore, target: Target, options: CycleOptions) -> Planned:
    """Reconcile the snapshot with the links (corrected by a drift check in full mode), cut to the scope."""
    scope = options.scope
    # Every link even for one person: adopting by mobile must know every employeeCode already linked.
    # Read "like" the snapshot: a link shares its person's strings (a third of the memory at 1,000,000).
    links = store.links(like=snapshot)
    inputs = narrow(scope, snapshot, links)
    scoped_links = inputs.links
    drift = None
    org_codes = [config.unit.root_organization_code]
    if options.full:
        if scope.everything:
            org_codes += [link.organization_code for link in links.departments.values() if link.status == "active"]
        else:
            org_codes = [link.organization_code for link in scoped_links.departments.values()
                         if link.status == "active"]
        linked = [link.employee_code for link in scoped_links.people.values() if link.status == "active"]
        drift = detect_drift(scoped_links, target.read_people(org_codes, linked))
        scoped_links = drift.links
        log.info("drift.checked", changed=len(drift.changed_fields), moved=len(drift.moved),
                 deactivated=len(drift.deactivated), missing=len(drift.missing), unknown=len(drift.unknown))
    # What was built by hand is adopted, not created twice: HR's unlinked departments are looked for
    # under their parent's node, its unlinked people by mobile (reads only, in a dry run too).
    found = find_existing(inputs.snapshot, links, target, config.unit.root_department,
                          config.unit.root_organization_code, config.unit.ext_org_code_prefix)
    result = keep_in_scope(reconcile(inputs.snapshot, scoped_links, config.unit.root_department, found), inputs, scope)
    # Only a whole-unit run knows who is unknown: a scoped drift read compares with a part of the links.
    if drift is not None and config.safety.unknown_people == "deactivate" and snapshot.complete and scope.everything:
        # Only people whose main position is in the unit; the applier skips anyone a join of
        # this same run adopts (their mobile matched an HR record after all).
        ours = set(org_codes)
        result.changes.extend(Change(ChangeKind.LEAVE, entry.employee_code, {"employee_code": entry.employee_code},
                                     reason="in the directory, unknown to HR")
                              for entry in drift.unknown if entry.organization_code in ours)
    if drift is not None:
        # What the drift check learnt is the truth for the apply step too.
        links = LinkState(links.departments, {**links.people, **drift.links.people})
    return Planned(snapshot, result, links, drift, None if scope.everything else inputs.subjects)


def guard_plan(config: Config, planned: Planned, store: StateStore) -> GuardedPlan:
    """Hold mass deactivations and (by configuration) structure changes; let the approved through."""
    safety = config.safety
    limits = Limits(safety.max_deactivations, safety.max_deactivation_share, safety.structure_changes == "hold",
                    safety.max_shrink_share, safety.max_shrink_count)
    before = store.value(IN_POST)
    in_post = InPost(int(before), in_post_count(planned.snapshot)) if before and planned.snapshot.complete else None
    return guard(planned.plan, planned.links, limits, store.approvals(), in_post)


def in_post_count(snapshot: Snapshot) -> int:
    """The snapshot's people in post (在职)."""
    return sum(1 for person in snapshot.people.values() if person.status is PersonStatus.IN_POST)


def apply(config: Config, planned: Planned, guarded: GuardedPlan, store: StateStore, target: Target,
          options: CycleOptions, result: CycleResult) -> None:
    """Apply what the guard allowed (against a recording target in a dry run), journaling each change."""
    settings = ApplySettings.from_config(config, options.stop)
    if options.dry_run:
        # Dry run at the transport boundary: the plan is applied against a target that records
        # its writes instead of sending them, with a journal that keeps nothing.
        dry = Applier(target, DryRunJournal(), planned.links, settings)
        result.report = dry.apply("dry-run", guarded.allowed, guarded.held)
        result.outcome = "dry_run"
        return
    result.run_id = store.start_run(options.trigger, options.mode, dry_run=False, scope=options.scope.describe())
    structlog.contextvars.bind_contextvars(run_id=result.run_id)
    # A hold already waiting for a decision is not journaled (or announced) again: the admin
    # decides once, on the run that first held it. A new hold while others wait takes them in: this
    # run holds the whole set and the earlier runs' holds are superseded, so one run is decided.
    pending = store.pending_holds()
    new_holds = [h for h in guarded.held if h.change.fingerprint() not in pending]
    # A whole-unit plan holds every waiting change it still wants, so it joins when it holds one of
    # them; a scoped one sees only its part, so it joins (and takes in the rest) whenever any waits.
    joining = any(h.reason != WAITING for h in new_holds) and (
        any(h.change.fingerprint() in pending for h in guarded.held)
        or (not options.scope.everything and bool(pending)))
    if joining:
        new_holds = list(guarded.held)
    result.report = Applier(target, store, planned.links, settings).apply(result.run_id, guarded.allowed, new_holds)
    if joining:
        # A scoped run holds only its part of the waiting set: it takes in the rest, so one run is decided.
        result.taken_in = store.supersede_holds({h.change.fingerprint() for h in guarded.held}, result.run_id,
                                                take_in=not options.scope.everything)
        pending = {}
    if guarded.needs_approval:  # announced whatever else happened: a failure elsewhere must not hide it
        waiting_on = {pending[fp] for h in guarded.held if (fp := h.change.fingerprint()) in pending}
        if any(h.reason != WAITING for h in new_holds):
            log.warning("plan.held", held=len(guarded.held), reasons=sorted({h.reason for h in guarded.held}))
        else:
            log.info("plan.still_held", held=len(guarded.held), decide_run=sorted(waiting_on))
        result.decide_runs = sorted({*waiting_on, *([result.run_id] if new_holds else [])})


def record(store: StateStore, result: CycleResult, guarded: GuardedPlan, subjects: frozenset[str] | None) -> None:
    """Settle decisions the plan moved past (within a scoped run's subjects), and record how the run ended."""
    assert result.run_id is not None
    store.settle_decisions({c.fingerprint() for c in result.plan.changes},
                           {o.change.fingerprint() for o in result.report.outcomes if o.state == "done"},
                           result.run_id, subjects)
    if result.report.stopped:
        result.outcome = "failed"
    elif result.report.failed:
        result.outcome = "partial"
    elif guarded.needs_approval:
        result.outcome = "held"
    rejected = sum(1 for r in result.snapshot.rejections if r.kind != SOURCE_REJECTION)
    counts = {**result.report.counts(), "held": len(guarded.held) + result.taken_in, "rejected": rejected,
              "incomplete_people": len({i.key for i in result.snapshot.issues}),
              "source_incomplete": int(not result.snapshot.complete), **guarded.hold_counts()}
    store.finish_run(result.run_id, result.outcome, counts)


def _summary(result: CycleResult, options: CycleOptions) -> None:
    """The one canonical line per cycle; a skipped cycle is a debug line (a quiet day stays quiet)."""
    if result.outcome == "skipped":
        log.debug("cycle.skipped", reason="source unchanged, nothing to retry", duration_s=result.duration_s)
        return
    done = sum(1 for o in result.report.outcomes if o.state == "done")
    log.info(
        "cycle.finished",
        outcome=result.outcome,
        mode=options.mode,
        scope=options.scope.describe(),
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
        duration_s=result.duration_s,
        **{f"plan_{kind.value}": len(changes) for kind, changes in result.plan.by_kind().items()},
    )

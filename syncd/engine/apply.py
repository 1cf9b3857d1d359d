"""Apply a plan to the directory, one change at a time, each journaled before and after.

The journal entry is marked `sent` before the call and `done` together with the link after it,
in short transactions that never span the HTTP call. A change the directory refuses fails alone;
an auth failure stops the run, because no later call can succeed.
"""

from __future__ import annotations

import contextvars
import threading
from collections import ChainMap, Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import chain
from typing import Protocol

import structlog

from syncd.config import Config
from syncd.domain.guard import Held
from syncd.domain.model import (
    DEPARTMENT_KINDS,
    STOPPED_BY_SIGNAL,
    Change,
    ChangeKind,
    LinkedDepartment,
    LinkedPerson,
    LinkState,
    Plan,
)
from syncd.domain.target import DirectoryPerson, Target, TargetError
from syncd.domain.workdays import due_date

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change."""

    change: Change
    state: str  # done | failed
    category: str | None = None
    message: str = ""


@dataclass(slots=True)
class ApplyReport:
    """Every change's outcome, and whether the run was stopped part-way."""

    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str | None = None

    def counts(self) -> dict[str, int]:
        """`join.done: 3`, `update.failed: 1`, … for the run record and the summary line."""
        return dict(Counter(f"{o.change.kind.value}.{o.state}" for o in self.outcomes))

    @property
    def failed(self) -> int:
        """How many changes did not land."""
        return sum(1 for o in self.outcomes if o.state != "done")


class Journal(Protocol):
    """Where the applier records each change's progress: the state store, or nothing in a dry run."""

    def journal_plan(self, run_id: str, changes: Sequence[Change], detected_at: datetime,
                     due: date) -> list[tuple[int, date]]:
        """Record the changes as planned; return their entry ids and due dates (an open change keeps its first)."""

    def mark_sent(self, entry_id: int) -> None:
        """The change is about to be sent."""

    def mark_done(self, entry_id: int, department: tuple[str, LinkedDepartment] | None = None,
                  person: tuple[str, LinkedPerson] | None = None) -> None:
        """The change landed: write its link."""

    def mark_failed(self, entry_id: int, category: str, message: str, state: str = "failed") -> None:
        """The change did not land, or was held."""

    def mark_not_attempted(self, entry_ids: Sequence[int], message: str) -> None:
        """The run stopped before these changes were sent."""


class DryRunJournal:
    """A journal that keeps nothing: a dry run applies against a recording target and leaves no state."""

    def journal_plan(self, run_id: str, changes: Sequence[Change], detected_at: datetime,
                     due: date) -> list[tuple[int, date]]:
        """Entry numbers only."""
        return [(number, due) for number in range(len(changes))]

    def mark_sent(self, entry_id: int) -> None:
        """Nothing to record."""

    def mark_done(self, entry_id: int, department: tuple[str, LinkedDepartment] | None = None,
                  person: tuple[str, LinkedPerson] | None = None) -> None:
        """Nothing to record."""

    def mark_failed(self, entry_id: int, category: str, message: str, state: str = "failed") -> None:
        """Nothing to record."""

    def mark_not_attempted(self, entry_ids: Sequence[int], message: str) -> None:
        """Nothing to record."""


class _Dependency(Exception):
    """A change that needs an object an earlier change failed to create."""


_NEW_DEPARTMENT = frozenset({ChangeKind.DEPT_ADOPT, ChangeKind.DEPT_CREATE})
_ADOPTING_KINDS = frozenset({ChangeKind.JOIN, ChangeKind.ADOPT, ChangeKind.LEAVE})  # kinds that test `_linked_codes`
QUARANTINE_MIN_WRITES = 10  # below this, a couple of failures say nothing about the run


@dataclass(frozen=True, slots=True)
class ApplySettings:
    """How the applier works: the unit's root, deadlines, the quarantine, concurrency, and a stop signal."""

    root_department: str
    root_organization_code: str
    deadline_workdays: int = 3
    quarantine_failure_share: float = 1.0
    concurrency: int = 1
    workday_overrides: Mapping[date, bool] = field(default_factory=dict)
    ext_org_code_prefix: str = ""
    stop: threading.Event | None = None  # set: finish the changes in flight, attempt no more
    timezone: str = "Asia/Shanghai"  # schedule.timezone: the zone of the day a change is detected on
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def from_config(cls, config: Config, stop: threading.Event | None = None) -> ApplySettings:
        """The settings of `[unit]`, `[safety]`, `[target]` and `[escalation]`."""
        return cls(config.unit.root_department, config.unit.root_organization_code,
                   config.escalation.deadline_workdays, config.safety.quarantine_failure_share,
                   config.target.concurrency, config.escalation.workday_overrides,
                   config.unit.ext_org_code_prefix, stop, config.schedule.timezone)


def inside_unit(target: Target, code: str, root_organization_code: str, max_depth: int = 64) -> bool:
    """Whether an organisation sits at or under the unit's root: extOrgCodes are unique per tenant,
    not per unit, so one found by extOrgCode may belong to a sister unit."""
    current: str | None = code
    for _ in range(max_depth):
        if current == root_organization_code:
            return True
        if current is None:
            return False
        current = target.organization_parent(current)
    return False


class Applier:
    """Applies one plan: the directory ids it learns along the way feed the later changes."""

    def __init__(self, target: Target, store: Journal, links: LinkState, settings: ApplySettings) -> None:
        self._target = target
        self._store = store
        self._dry_run = isinstance(store, DryRunJournal)
        # What this run links goes in front of the links it was planned from, which stay as they
        # were (the guard read them) and are not copied: at 1,000,000 people a copy is 80 MB.
        self._departments: ChainMap[str, LinkedDepartment] = ChainMap({}, links.departments)
        self._people: ChainMap[str, LinkedPerson] = ChainMap({}, links.people)
        self._org_codes = {hr_id: link.organization_code for hr_id, link in links.departments.items()
                           if link.status == "active"}
        self._org_codes[settings.root_department] = settings.root_organization_code
        self._root_code = settings.root_organization_code
        self._settings = settings
        self._linked_codes: set[str] = set()  # every linked employeeCode, when the plan needs it (see apply)
        self._ext_prefix = settings.ext_org_code_prefix
        self._due: dict[int, date] = {}
        self._handlers: dict[ChangeKind, Callable[[int, Change], str]] = {
            ChangeKind.DEPT_ADOPT: self._dept_adopt,
            ChangeKind.DEPT_CREATE: self._dept_create,
            ChangeKind.DEPT_UPDATE: self._dept_update,
            ChangeKind.DEPT_MOVE: self._dept_move,
            ChangeKind.TRANSFER: self._transfer,
            ChangeKind.UPDATE: self._update,
            ChangeKind.REJOIN: self._rejoin,
            ChangeKind.ADOPT: self._adopt_found,
            ChangeKind.JOIN: self._join,
            ChangeKind.TRANSFER_OUT: self._transfer_out,
            ChangeKind.LEAVE: self._leave,
            ChangeKind.DEPT_RETIRE: self._dept_retire,
        }

    def apply(self, run_id: str, plan: Plan, held: Sequence[Held] = ()) -> ApplyReport:
        """Journal the plan (and what the guard held), then apply it phase by phase.

        Within a phase the changes are independent (one kind, distinct subjects, no department
        waiting on another of the same phase), so they run on `concurrency` threads: against a
        gateway with 50–100 ms latency only calls in flight together reach the rate limit.
        """
        if any(change.kind in _ADOPTING_KINDS for change in plan.changes):
            # Only a join (adopting by mobile) or deactivating someone unknown to HR asks whether
            # an employeeCode is already linked; most plans, and every no-change plan, never do.
            linked = chain.from_iterable(layer.values() for layer in self._people.maps)  # since, and planned
            self._linked_codes = {link.employee_code for link in linked}
        detected = self._settings.clock().astimezone(UTC)  # stored in UTC, as every time
        due = due_date(detected, self._settings.deadline_workdays, self._settings.timezone,
                       self._settings.workday_overrides)
        held_ids = self._store.journal_plan(run_id, [h.change for h in held], detected, due)
        for (entry_id, _), hold in zip(held_ids, held, strict=True):
            self._store.mark_failed(entry_id, hold.reason, hold.detail, state="held")
        journaled = self._store.journal_plan(run_id, plan.changes, detected, due)
        entry_ids = [entry_id for entry_id, _ in journaled]
        self._due = dict(journaled)
        report = ApplyReport()
        outcomes: list[Outcome | None] = [None] * len(plan.changes)
        tally = [0, 0]  # attempted, failed
        with ThreadPoolExecutor(self._settings.concurrency, thread_name_prefix="apply") as pool:
            for phase in self._phases(plan.changes):
                if report.stopped:
                    break
                # Each change runs in the cycle's log context (run id, trigger), on whichever thread.
                futures = {pool.submit(contextvars.copy_context().run, self._attempt, plan.changes[i], entry_ids[i],
                                       report): i for i in phase}
                for future in as_completed(futures):
                    outcome = outcomes[futures[future]] = future.result()
                    self._watch_failures(outcome, tally, report)
        if report.stopped:
            # What was never attempted is journaled in one statement: a stop must not take a write per change.
            skipped = [i for i, outcome in enumerate(outcomes) if outcome is None or outcome.category == "stopped"]
            self._store.mark_not_attempted([entry_ids[i] for i in skipped], f"not attempted: {report.stopped}")
            for i in skipped:
                outcomes[i] = Outcome(plan.changes[i], "failed", "stopped", report.stopped)
        report.outcomes = [o for o in outcomes if o is not None]
        return report

    def _phases(self, changes: Sequence[Change]) -> Iterator[list[int]]:
        """Indexes of the plan in runs that may be applied concurrently, in plan order."""
        phase: list[int] = []
        subjects: set[str] = set()
        parents: set[str | None] = set()
        for i, change in enumerate(changes):
            waits = (
                change.subject in subjects
                or (phase and changes[phase[0]].kind is not change.kind)
                or (change.kind in _NEW_DEPARTMENT and change.department in subjects)
                or (change.kind is ChangeKind.DEPT_RETIRE and change.subject in parents)
                or change.kind is ChangeKind.DEPT_MOVE  # rare, and order-sensitive: one at a time
            )
            if phase and waits:
                yield phase
                phase, subjects, parents = [], set(), set()
            phase.append(i)
            subjects.add(change.subject)
            link = self._departments.get(change.subject)
            parents.add(link.parent if link else None)
        if phase:
            yield phase

    def _attempt(self, change: Change, entry_id: int, report: ApplyReport) -> Outcome:
        stop = self._settings.stop
        if stop is not None and stop.is_set() and not report.stopped:
            # The service is stopping: changes in flight finish, the rest are journaled as not attempted.
            report.stopped = STOPPED_BY_SIGNAL
        if report.stopped:
            return Outcome(change, "failed", "stopped", report.stopped)  # journaled with the rest, at the end
        return self._apply_one(entry_id, change, report)

    def _watch_failures(self, outcome: Outcome, tally: list[int], report: ApplyReport) -> None:
        """Quarantine: when too large a share of writes fail, stop writing (DESIGN.md §6)."""
        if outcome.category in ("dependency", "stopped"):
            return
        tally[0] += 1
        tally[1] += outcome.state != "done"
        attempted, failed = tally
        share = self._settings.quarantine_failure_share
        if attempted >= QUARANTINE_MIN_WRITES and failed / attempted > share and not report.stopped:
            # Something is systematically wrong (the gateway, the data, a mapping): stop before
            # thousands of bad writes, and let a person look.
            report.stopped = (f"quarantine: {failed} of {attempted} writes failed "
                              f"(over quarantine_failure_share={share:.0%})")
            log.error("run.quarantined", failed=failed, attempted=attempted)

    def _apply_one(self, entry_id: int, change: Change, report: ApplyReport) -> Outcome:
        handler = self._handlers.get(change.kind)
        if handler is None:
            message = f"{change.kind.value} is not applied by a sync"
            self._store.mark_failed(entry_id, "unsupported", message)
            return Outcome(change, "failed", "unsupported", message)
        try:
            note = handler(entry_id, change)
        except _Dependency as exc:
            self._store.mark_failed(entry_id, "dependency", str(exc))
            log.warning("change.waiting", **self._log_keys(entry_id, change), reason=str(exc))
            return Outcome(change, "failed", "dependency", str(exc))
        except TargetError as exc:
            self._store.mark_failed(entry_id, exc.category, str(exc))
            log.warning("change.failed", **self._log_keys(entry_id, change), category=exc.category, error=str(exc))
            if exc.stops_run:
                report.stopped = f"{exc.category} error: {exc}"
            return Outcome(change, "failed", exc.category, str(exc))
        if self._dry_run:  # its writes were recorded, not made: `change.done` would claim they happened
            log.debug("change.dry_run", **self._log_keys(entry_id, change), note=note)
        else:
            log.info("change.done", **self._log_keys(entry_id, change), note=note)
        return Outcome(change, "done", message=note)

    def _log_keys(self, entry_id: int, change: Change) -> dict[str, str]:
        """What an operator's log line says of a change: kind, the HR id by what it is, the due date."""
        subject = "department_id" if change.kind in DEPARTMENT_KINDS else "employee_id"
        due = self._due.get(entry_id)
        return {"kind": change.kind.value, subject: change.subject, "due": due.isoformat() if due else ""}

    def _org_code(self, hr_department: str | None) -> str:
        code = self._org_codes.get(hr_department or "")
        if code is None:
            raise _Dependency(f"department {hr_department} is not in the directory (its creation failed or waits)")
        return code

    def _person(self, employee_id: str) -> LinkedPerson:
        link = self._people.get(employee_id)
        if link is None:
            raise _Dependency(f"person {employee_id} is not linked (their join failed or waits)")
        return link

    # -- departments -------------------------------------------------------------------------

    def _dept_create(self, entry_id: int, change: Change) -> str:
        parent_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        try:
            ext_code = self._ext_prefix + change.subject
            code, note = self._target.create_department(change.fields, parent_code, ext_code), ""
        except TargetError as exc:
            # Created earlier by hand or by a run whose answer was lost: adopt it by extOrgCode.
            found = self._target.find_department(ext_code) if exc.category == "conflict" else None
            if found is None:
                raise
            if not inside_unit(self._target, found, self._root_code):
                raise _Conflict(f"an organisation with extOrgCode {ext_code} exists outside the unit: another "
                                f"unit uses the same HR department id (set unit.ext_org_code_prefix)") from exc
            self._target.update_department(found, change.fields)
            code, note = found, "adopted the existing organisation with this extOrgCode"
        self._save_department(entry_id, change.subject, LinkedDepartment(code, change.department, dict(change.fields)))
        return note

    def _dept_adopt(self, entry_id: int, change: Change) -> str:
        """Link the organisation of HR's name found under the parent's node, then make it HR's."""
        code = change.adopted_code
        if code is None:
            raise _Conflict(change.reason)
        self._org_code(change.department)  # the parent is in the directory (adopted or linked) first
        self._store.mark_sent(entry_id)
        fields = change.pushed
        # An empty HR value cannot clear what the hand-built organisation holds (zzd-api.md §5): only
        # HR's values are sent, and the link records all of them, so the next plan wants nothing more.
        self._target.update_department(code, {name: value for name, value in fields.items() if value})
        self._save_department(entry_id, change.subject, LinkedDepartment(code, change.department, dict(fields)))
        return "adopted the organisation of this name under the parent"

    def _dept_update(self, entry_id: int, change: Change) -> str:
        link = self._departments[change.subject]
        self._store.mark_sent(entry_id)
        self._target.update_department(link.organization_code, change.fields)
        self._save_department(entry_id, change.subject, replace(link, pushed={**link.pushed, **change.fields}))
        return ""

    def _dept_move(self, entry_id: int, change: Change) -> str:
        link = self._departments[change.subject]
        parent_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        self._target.move_department(link.organization_code, parent_code)
        self._save_department(entry_id, change.subject, replace(link, parent=change.department))
        return ""

    def _dept_retire(self, entry_id: int, change: Change) -> str:
        link = self._departments[change.subject]
        self._store.mark_sent(entry_id)
        try:
            self._target.delete_department(link.organization_code)
        except TargetError as exc:
            if exc.category != "not_found":  # already gone is what we wanted
                raise
        self._save_department(entry_id, change.subject, replace(link, status="retired"))
        self._org_codes.pop(change.subject, None)
        return ""

    def _save_department(self, entry_id: int, hr_id: str, link: LinkedDepartment) -> None:
        self._store.mark_done(entry_id, department=(hr_id, link))
        self._departments[hr_id] = link
        if link.status == "active":
            self._org_codes[hr_id] = link.organization_code

    # -- people ------------------------------------------------------------------------------

    def _join(self, entry_id: int, change: Change) -> str:
        assert change.department is not None
        org_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        try:
            created = self._target.create_person(change.fields, org_code)
        except TargetError as exc:
            if exc.category != "conflict":
                raise
            return self._adopt(entry_id, change, org_code)
        link = LinkedPerson(created.employee_code, created.account_id, change.department, org_code, dict(change.fields))
        self._save_person(entry_id, change.subject, link)
        return ""

    def _adopt_found(self, entry_id: int, change: Change) -> str:
        """A person the plan found in the directory by mobile: link, place and update them."""
        org_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        return self._adopt(entry_id, change, org_code, change.found)

    def _adopt(self, entry_id: int, change: Change, org_code: str, found: DirectoryPerson | None = None) -> str:
        """The mobile is already in the directory: link that person, put them here, push every field."""
        assert change.department is not None
        fields = change.pushed
        if found is None:
            found = self._target.find_person_by_mobile(fields.get("mobile", ""))
        if found is None:
            raise _Conflict("the directory refused the mobile as taken, but no person holds it")
        if found.employee_code in self._linked_codes:
            raise _Conflict("the mobile belongs to a person syncd already links to another 工号")
        if found.status != "A":
            self._target.rehire_person(found.employee_code, org_code, fields)
        else:
            positions = self._target.person_positions(found.employee_code)
            if org_code not in positions:
                ours = [p for p in positions if p in set(self._org_codes.values())]
                self._target.move_person(found.employee_code, (ours or positions)[0], org_code)
        self._target.update_person(found.employee_code, org_code, fields)
        link = LinkedPerson(found.employee_code, found.account_id, change.department, org_code, dict(fields))
        self._save_person(entry_id, change.subject, link)
        return "adopted the person already in the directory with this mobile"

    def _transfer(self, entry_id: int, change: Change) -> str:
        assert change.department is not None
        link = self._person(change.subject)
        to_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        try:
            self._target.move_person(link.employee_code, link.organization_code, to_code)
        except TargetError as exc:
            # A move whose answer was lost (or a run that died after sending it) has already happened.
            if exc.category not in ("not_found", "state") or to_code not in self._target.person_positions(
                    link.employee_code):
                raise
        self._save_person(entry_id, change.subject, replace(link, department=change.department,
                                                             organization_code=to_code))
        return ""

    def _update(self, entry_id: int, change: Change) -> str:
        link = self._person(change.subject)
        self._store.mark_sent(entry_id)
        self._target.update_person(link.employee_code, link.organization_code, change.fields)
        self._save_person(entry_id, change.subject, replace(link, pushed={**link.pushed, **change.fields}))
        return ""

    def _rejoin(self, entry_id: int, change: Change) -> str:
        assert change.department is not None
        link = self._person(change.subject)
        org_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        try:
            self._target.rehire_person(link.employee_code, org_code, change.fields)
        except TargetError as exc:
            if exc.category != "state":  # already active: only the fields may differ
                raise
            self._target.update_person(link.employee_code, org_code, change.fields)
        if link.frozen and link.account_id is not None:
            # Article 17: frozen stays frozen whatever HR says, rehire included.
            self._target.set_account_frozen(link.account_id, True)
        self._save_person(entry_id, change.subject, replace(
            link, status="active", department=change.department, organization_code=org_code,
            pushed=dict(change.fields)))
        return ""

    def _leave(self, entry_id: int, change: Change) -> str:
        if change.subject not in self._people and change.fields.get("employee_code"):
            # A directory person unknown to HR (full mode, `safety.unknown_people = "deactivate"`).
            if change.fields["employee_code"] in self._linked_codes:
                self._store.mark_failed(entry_id, "superseded", "adopted by a join of this run", state="done")
                return "not deactivated: a join of this run adopted them"
            self._store.mark_sent(entry_id)
            self._target.deactivate_person(change.fields["employee_code"])
            self._store.mark_done(entry_id)
            return "deactivated: in the unit's directory, unknown to HR"
        link = self._person(change.subject)
        self._store.mark_sent(entry_id)
        self._deactivate(link)
        self._save_person(entry_id, change.subject, replace(link, status="inactive"))
        return ""

    def _transfer_out(self, entry_id: int, change: Change) -> str:
        """调离: remove this unit's position; deactivate only when no position remains elsewhere."""
        link = self._person(change.subject)
        self._store.mark_sent(entry_id)
        ours = set(self._org_codes.values())
        positions = self._target.person_positions(link.employee_code)
        elsewhere = [p for p in positions if p not in ours]
        if elsewhere and link.organization_code not in positions:
            note = "position already removed (an earlier attempt landed)"
        elif elsewhere:
            self._target.remove_position(link.employee_code, link.organization_code)
            note = "position removed; the person keeps a position in another unit"
        else:
            self._deactivate(link)
            note = "no position left in another unit: deactivated"
        self._save_person(entry_id, change.subject, replace(link, status="inactive"))
        return note

    def _deactivate(self, link: LinkedPerson) -> None:
        try:
            self._target.deactivate_person(link.employee_code)
        except TargetError as exc:
            if exc.category != "state":  # already inactive is what we wanted
                raise

    def _save_person(self, entry_id: int, employee_id: str, link: LinkedPerson) -> None:
        self._store.mark_done(entry_id, person=(employee_id, link))
        self._people[employee_id] = link
        self._linked_codes.add(link.employee_code)  # a set: safe to add to while other threads test it


class _Conflict(TargetError):
    """A conflict syncd must not resolve by guessing: a person has to look."""

    category = "conflict"

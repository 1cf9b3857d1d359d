"""Apply a plan to the directory, one change at a time, each journaled before and after.

The journal entry is marked `sent` before the call and `done` together with the link after it,
in short transactions that never span the HTTP call. A change the directory refuses fails alone;
an auth failure stops the run, because no later call can succeed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog

from syncd.guard import Held
from syncd.model import Change, ChangeKind, LinkedDepartment, LinkedPerson, LinkState, Plan
from syncd.state.store import StateStore
from syncd.target import Target, TargetError
from syncd.workdays import add_workdays

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


class _Dependency(Exception):
    """A change that needs an object an earlier change failed to create."""


class Applier:
    """Applies one plan: the directory ids it learns along the way feed the later changes."""

    def __init__(self, target: Target, store: StateStore, links: LinkState, root_department: str,
                 root_organization_code: str, deadline_workdays: int = 3) -> None:
        self._target = target
        self._store = store
        self._departments = dict(links.departments)
        self._people = dict(links.people)
        self._org_codes = {hr_id: link.organization_code for hr_id, link in links.departments.items()}
        self._org_codes[root_department] = root_organization_code
        self._deadline_workdays = deadline_workdays
        self._handlers: dict[ChangeKind, Callable[[int, Change], None]] = {
            ChangeKind.DEPT_CREATE: self._dept_create,
            ChangeKind.DEPT_UPDATE: self._dept_update,
            ChangeKind.JOIN: self._join,
            ChangeKind.TRANSFER: self._transfer,
            ChangeKind.UPDATE: self._update,
            ChangeKind.LEAVE: self._leave,
        }

    def apply(self, run_id: str, plan: Plan, held: Sequence[Held] = ()) -> ApplyReport:
        """Journal the plan (and what the guard held), then apply the plan in order."""
        detected = datetime.now(UTC)
        due = add_workdays(detected.astimezone().date(), self._deadline_workdays)
        held_ids = self._store.journal_plan(run_id, [h.change for h in held], detected, due)
        for entry_id, hold in zip(held_ids, held, strict=True):
            self._store.mark_failed(entry_id, hold.reason, hold.detail, state="held")
        entry_ids = self._store.journal_plan(run_id, plan.changes, detected, due)
        report = ApplyReport()
        for entry_id, change in zip(entry_ids, plan.changes, strict=True):
            if report.stopped:
                self._store.mark_failed(entry_id, "stopped", f"not attempted: {report.stopped}")
                report.outcomes.append(Outcome(change, "failed", "stopped", report.stopped))
                continue
            report.outcomes.append(self._apply_one(entry_id, change, report))
        return report

    def _apply_one(self, entry_id: int, change: Change, report: ApplyReport) -> Outcome:
        handler = self._handlers.get(change.kind)
        if handler is None:
            message = f"{change.kind.value} is not supported yet"
            self._store.mark_failed(entry_id, "unsupported", message)
            return Outcome(change, "failed", "unsupported", message)
        try:
            handler(entry_id, change)
        except _Dependency as exc:
            self._store.mark_failed(entry_id, "dependency", str(exc))
            log.warning("change.waiting", kind=change.kind.value, subject=change.subject, reason=str(exc))
            return Outcome(change, "failed", "dependency", str(exc))
        except TargetError as exc:
            self._store.mark_failed(entry_id, exc.category, str(exc))
            log.warning("change.failed", kind=change.kind.value, subject=change.subject,
                        category=exc.category, error=str(exc))
            if exc.stops_run:
                report.stopped = f"{exc.category} error: {exc}"
            return Outcome(change, "failed", exc.category, str(exc))
        log.debug("change.done", kind=change.kind.value, subject=change.subject)
        return Outcome(change, "done")

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

    def _dept_create(self, entry_id: int, change: Change) -> None:
        parent_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        code = self._target.create_department(change.fields, parent_code, change.subject)
        link = LinkedDepartment(code, change.department, dict(change.fields))
        self._store.mark_done(entry_id, department=(change.subject, link))
        self._org_codes[change.subject] = code
        self._departments[change.subject] = link

    def _dept_update(self, entry_id: int, change: Change) -> None:
        link = self._departments[change.subject]
        self._store.mark_sent(entry_id)
        self._target.update_department(link.organization_code, change.fields)
        link = replace(link, pushed={**link.pushed, **change.fields})
        self._store.mark_done(entry_id, department=(change.subject, link))
        self._departments[change.subject] = link

    def _join(self, entry_id: int, change: Change) -> None:
        assert change.department is not None
        org_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        created = self._target.create_person(change.fields, org_code)
        link = LinkedPerson(created.employee_code, created.account_id, change.department, org_code, dict(change.fields))
        self._store.mark_done(entry_id, person=(change.subject, link))
        self._people[change.subject] = link

    def _transfer(self, entry_id: int, change: Change) -> None:
        assert change.department is not None
        link = self._person(change.subject)
        to_code = self._org_code(change.department)
        self._store.mark_sent(entry_id)
        self._target.move_person(link.employee_code, link.organization_code, to_code)
        self._save_person(entry_id, change.subject, replace(link, department=change.department,
                                                             organization_code=to_code))

    def _update(self, entry_id: int, change: Change) -> None:
        link = self._person(change.subject)
        self._store.mark_sent(entry_id)
        self._target.update_person(link.employee_code, link.organization_code, change.fields)
        self._save_person(entry_id, change.subject, replace(link, pushed={**link.pushed, **change.fields}))

    def _leave(self, entry_id: int, change: Change) -> None:
        link = self._person(change.subject)
        self._store.mark_sent(entry_id)
        self._target.deactivate_person(link.employee_code)
        self._save_person(entry_id, change.subject, replace(link, status="inactive"))

    def _save_person(self, entry_id: int, employee_id: str, link: LinkedPerson) -> None:
        self._store.mark_done(entry_id, person=(employee_id, link))
        self._people[employee_id] = link

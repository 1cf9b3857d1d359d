"""What a manual resync covers: one person, one department with everything under it, or everything.

A scoped cycle reads HR as usual but plans only the subjects in scope. Links outside the scope
are left out of reconcile, so nobody outside it can be concluded "absent from HR" — a resync of
one person can never deactivate another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from syncd.domain.model import LinkState, Plan, Snapshot

ScopeKind = Literal["employee", "department", "all"]


@dataclass(frozen=True, slots=True)
class Scope:
    """`employee A000123`, `department D0003` (and its sub-departments), or `all`."""

    kind: ScopeKind
    value: str | None = None  # employee id / department id; None for "all"

    def describe(self) -> str:
        """`employee A000123`, `department D0003`, `all`."""
        return self.kind if self.value is None else f"{self.kind} {self.value}"

    @property
    def everything(self) -> bool:
        """Whether the scope is the whole unit."""
        return self.kind == "all"


EVERYTHING = Scope("all")


@dataclass(frozen=True, slots=True)
class ResyncRequest:
    """A queued manual resync and how it ended."""

    id: str
    scope: Scope
    full: bool
    status: str  # queued | running | done | failed
    requested_by: str
    requested_at: datetime
    run_id: str | None = None
    outcome: str | None = None  # the run's outcome (success | partial | failed | held) or why it could not run
    exit_code: int | None = None
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        """The API's view: `{"id", "status", "run_id", "outcome", …}`."""
        return {"id": self.id, "status": self.status, "run_id": self.run_id, "outcome": self.outcome,
                "scope": self.scope.kind, "subject": self.scope.value, "full": self.full,
                "requested_at": self.requested_at.isoformat(), "exit_code": self.exit_code,
                "message": self.message}


@dataclass(frozen=True, slots=True)
class ScopedInputs:
    """Reconcile's inputs cut down to a scope, and the subjects the plan may keep."""

    snapshot: Snapshot
    links: LinkState
    subjects: frozenset[str]


def departments_under(department: str, snapshot: Snapshot, links: LinkState) -> set[str]:
    """The department and every department under it, as HR has it or as syncd last linked it."""
    children: dict[str, set[str]] = {}
    for dept in snapshot.departments.values():
        if dept.parent is not None:
            children.setdefault(dept.parent, set()).add(dept.id)
    for hr_id, link in links.departments.items():
        if link.parent is not None:
            children.setdefault(link.parent, set()).add(hr_id)
    found, todo = set(), [department]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, ()))
    return found


def narrow(scope: Scope, snapshot: Snapshot, links: LinkState) -> ScopedInputs:
    """The snapshot and links of the subjects in scope; every department stays known to the snapshot
    (the scope check walks the tree), but only the scope's departments are planned."""
    if scope.everything:
        return ScopedInputs(snapshot, links, frozenset())
    if scope.kind == "employee":
        assert scope.value is not None
        departments: set[str] = set()
        people = {scope.value}
    else:
        assert scope.value is not None
        departments = departments_under(scope.value, snapshot, links)
        people = {p.employee_id for p in snapshot.people.values() if p.department in departments}
        people |= {hr_id for hr_id, link in links.people.items() if link.department in departments}
    narrowed = Snapshot(
        departments=dict(snapshot.departments),
        people={k: v for k, v in snapshot.people.items() if k in people},
        rejections=snapshot.rejections, complete=snapshot.complete,
        issues=[i for i in snapshot.issues if i.key in people],
    )
    linked = LinkState({k: v for k, v in links.departments.items() if k in departments},
                       {k: v for k, v in links.people.items() if k in people})
    return ScopedInputs(narrowed, linked, frozenset(departments | people))


def keep_in_scope(plan: Plan, inputs: ScopedInputs, scope: Scope) -> Plan:
    """The plan's changes whose subject is in scope (all of them for `all`)."""
    if scope.everything:
        return plan
    return Plan([c for c in plan.changes if c.subject in inputs.subjects])

"""Reconcile: a pure function from (HR snapshot, link state) to an ordered plan. No I/O here.

What is compared is the normalised HR record against what syncd last pushed (kept on the
link), so an unchanged person produces no change and costs no API call.
"""

from __future__ import annotations

from syncd.model import (
    Change,
    ChangeKind,
    Department,
    LinkState,
    PersonStatus,
    Plan,
    Snapshot,
    changed_fields,
    department_pushed_fields,
    person_changes,
)

_ORDER = {kind: i for i, kind in enumerate(ChangeKind)}


def reconcile(snapshot: Snapshot, state: LinkState, root_department: str) -> Plan:
    """The changes that make the directory equal HR, in apply order.

    Departments top-down first, then people (transfers and updates before joins, so that a freed
    mobile or a renamed post never collides with a newcomer), then deactivations.
    """
    changes = [*_department_changes(snapshot, state, root_department), *_people_changes(snapshot, state)]
    # A stable sort keeps the top-down order of department creates and the HR order of people.
    changes.sort(key=lambda change: _ORDER[change.kind])
    return Plan(changes)


def _depth(dept: Department, departments: dict[str, Department]) -> int:
    depth = 0
    while dept.parent is not None and dept.parent in departments:
        dept = departments[dept.parent]
        depth += 1
    return depth


def _department_changes(snapshot: Snapshot, state: LinkState, root: str) -> list[Change]:
    changes = []
    ordered = sorted(snapshot.departments.values(), key=lambda d: _depth(d, snapshot.departments))
    for dept in ordered:
        if dept.id == root:
            continue  # the unit's own node exists already and is not syncd's to rename (Article 7)
        wanted = department_pushed_fields(dept)
        link = state.departments.get(dept.id)
        if link is None or link.status != "active":  # new, or retired earlier and back in HR
            changes.append(Change(ChangeKind.DEPT_CREATE, dept.id, wanted, department=dept.parent))
            continue
        if link.parent != dept.parent:
            changes.append(Change(ChangeKind.DEPT_MOVE, dept.id, department=dept.parent, from_department=link.parent))
        changed = changed_fields(wanted, link.pushed)
        if changed:
            changes.append(Change(ChangeKind.DEPT_UPDATE, dept.id, changed))
    # A department gone from a complete read is retired once empty: deepest first, after the
    # people in it have moved or left (apply order puts dept_retire last).
    if snapshot.complete and snapshot.departments:
        rejected = {r.key for r in snapshot.rejections if r.kind == "department"}
        gone = [hr_id for hr_id, link in state.departments.items()
                if link.status == "active" and hr_id not in snapshot.departments and hr_id not in rejected]
        for hr_id in sorted(gone, key=lambda d: -_link_depth(d, state)):
            changes.append(Change(ChangeKind.DEPT_RETIRE, hr_id, reason="absent from HR"))
    return changes


def _link_depth(hr_id: str, state: LinkState) -> int:
    depth, seen = 0, set()
    current = state.departments.get(hr_id)
    while current is not None and current.parent is not None and current.parent not in seen:
        seen.add(current.parent)
        current = state.departments.get(current.parent)
        depth += 1
    return depth


def _people_changes(snapshot: Snapshot, state: LinkState) -> list[Change]:
    changes: list[Change] = []
    for person in snapshot.people.values():
        link = state.people.get(person.employee_id)
        if person.status is not PersonStatus.IN_POST:
            # No deactivation at all from a read that broke off: the next complete read decides.
            if link is not None and link.status == "active" and snapshot.complete:
                kind = ChangeKind.TRANSFER_OUT if person.status is PersonStatus.TRANSFERRED_OUT else ChangeKind.LEAVE
                changes.append(Change(kind, person.employee_id, reason=person.status.value))
            continue
        if link is None:
            if person.creatable:  # without a valid mobile there is no login to create: reported as an issue
                changes.append(Change(ChangeKind.JOIN, person.employee_id, person.pushed_fields(),
                                      department=person.department))
            continue
        if link.status != "active":
            changes.append(Change(ChangeKind.REJOIN, person.employee_id, person.pushed_fields(),
                                  department=person.department))
            continue
        if link.department != person.department:
            changes.append(Change(ChangeKind.TRANSFER, person.employee_id, department=person.department,
                                  from_department=link.department))
        changed = person_changes(person, link.pushed)
        if changed:
            changes.append(Change(ChangeKind.UPDATE, person.employee_id, changed, department=person.department))
    # Someone absent from HR has left — but only a complete, non-empty read can say so.
    # A person whose row was rejected is still in HR: a typo must never deactivate anyone.
    if snapshot.complete and snapshot.people:
        rejected = {r.key for r in snapshot.rejections if r.kind == "person"}
        for employee_id, link in state.people.items():
            if link.status == "active" and employee_id not in snapshot.people and employee_id not in rejected:
                changes.append(Change(ChangeKind.LEAVE, employee_id, reason="absent from HR"))
    return changes

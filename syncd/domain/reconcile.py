"""Reconcile: a pure function from (HR snapshot, link state) to an ordered plan. No I/O here.

What is compared is the normalised HR record against what syncd last pushed (kept on the
link), so an unchanged person produces no change and costs no API call.
"""

from __future__ import annotations

from syncd.domain.correlate import Found
from syncd.domain.model import (
    ADOPTED_ORGANIZATION,
    ADOPTED_PERSON,
    Change,
    ChangeKind,
    LinkState,
    PersonStatus,
    Plan,
    Snapshot,
    changed_fields,
    department_depth,
    department_pushed_fields,
    person_changes,
)

_ORDER = {kind: i for i, kind in enumerate(ChangeKind)}


def reconcile(snapshot: Snapshot, state: LinkState, root_department: str, found: Found | None = None) -> Plan:
    """The changes that make the directory equal HR, in apply order.

    Departments top-down first, then people (transfers and updates before joins, so that a freed
    mobile or a renamed post never collides with a newcomer), then deactivations. What `found` says
    the directory already holds (built by hand) is adopted instead of created.
    """
    found = found or Found.nothing()
    changes = [*_department_changes(snapshot, state, root_department, found), *_people_changes(snapshot, state, found)]
    # A stable sort keeps the top-down order of department creates and the HR order of people.
    changes.sort(key=lambda change: _ORDER[change.kind])
    return Plan(changes)


def _department_changes(snapshot: Snapshot, state: LinkState, root: str, found: Found) -> list[Change]:
    changes = []
    ordered = sorted(snapshot.departments.values(), key=lambda d: department_depth(d, snapshot.departments))
    for dept in ordered:
        if dept.id == root:
            continue  # the unit's own node exists already and is not syncd's to rename (Article 7)
        wanted = department_pushed_fields(dept)
        link = state.departments.get(dept.id)
        if link is None or link.status != "active":  # new, or retired earlier and back in HR
            changes.append(_create_or_adopt(dept.id, dept.parent, wanted, found))
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


def _create_or_adopt(hr_id: str, parent: str | None, wanted: dict[str, str], found: Found) -> Change:
    """An organisation of HR's name under the parent's node is this department: never a second one."""
    match = found.departments.get(hr_id)
    if match is None:
        return Change(ChangeKind.DEPT_CREATE, hr_id, wanted, department=parent)
    if match.unique is None:
        # Which of the same-named organisations is HR's is a person's decision, made in the review.
        return Change(ChangeKind.DEPT_ADOPT, hr_id, wanted, department=parent,
                      reason=f"{len(match.candidates)} organisations under the parent match by "
                             f"{match.kind.value}: choose one with `syncd onboard`")
    return Change(ChangeKind.DEPT_ADOPT, hr_id, {**wanted, ADOPTED_ORGANIZATION: match.unique.code},
                  department=parent, reason=f"matched by {match.kind.value}")


def _link_depth(hr_id: str, state: LinkState) -> int:
    depth, seen = 0, set()
    current = state.departments.get(hr_id)
    while current is not None and current.parent is not None and current.parent not in seen:
        seen.add(current.parent)
        current = state.departments.get(current.parent)
        depth += 1
    return depth


def _people_changes(snapshot: Snapshot, state: LinkState, found: Found) -> list[Change]:
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
            holder = found.people.get(person.employee_id)
            if holder is not None:  # already in the directory with this mobile: linked, not created
                changes.append(Change(ChangeKind.ADOPT, person.employee_id,
                                      {**person.pushed_fields(), ADOPTED_PERSON: holder.employee_code},
                                      department=person.department, found=holder))
            elif person.creatable:  # without a valid mobile there is no login to create: reported as an issue
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

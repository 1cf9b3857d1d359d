"""Reconcile: a pure function from snapshot and links to an ordered plan."""

from __future__ import annotations

from dataclasses import replace

from syncd.domain.model import (
    ChangeKind,
    Department,
    LinkedDepartment,
    LinkedPerson,
    LinkState,
    Person,
    PersonStatus,
    Rejection,
    Snapshot,
    department_pushed_fields,
)
from syncd.domain.reconcile import reconcile

ROOT = Department("D1", "市审计局")
OFFICE = Department("D2", "办公室", parent="D1", order=1)
AUDIT = Department("D3", "财政审计处", "财政处", parent="D1", order=2)
TEAM = Department("D4", "一科", parent="D3", order=1)
ALICE = Person("A1", "张明", "1", "13800000001", "D2", post="科员")
BOB = Person("A2", "李华", "2", "13800000002", "D3", post="科员")


def snapshot(*people: Person, departments: tuple[Department, ...] = (ROOT, TEAM, OFFICE, AUDIT),
             complete: bool = True) -> Snapshot:
    return Snapshot({d.id: d for d in departments}, {p.employee_id: p for p in people}, complete=complete)


def synced(snap: Snapshot) -> LinkState:
    """The links as they stand after a successful sync of `snap`."""
    state = LinkState()
    for dept in snap.departments.values():
        if dept.id != "D1":
            state.departments[dept.id] = LinkedDepartment(f"GO_{dept.id}", dept.parent, department_pushed_fields(dept))
    for p in snap.people.values():
        state.people[p.employee_id] = LinkedPerson(f"GE_{p.employee_id}", 1, p.department, f"GO_{p.department}",
                                                   p.pushed_fields())
    return state


def kinds(plan) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(c.kind.value, c.subject) for c in plan.changes]


def test_initial_sync_creates_departments_top_down_then_joins() -> None:
    plan = reconcile(snapshot(ALICE, BOB), LinkState(), "D1")
    assert kinds(plan) == [("dept_create", "D2"), ("dept_create", "D3"), ("dept_create", "D4"),
                           ("join", "A1"), ("join", "A2")]
    assert plan.changes[2].department == "D3"


def test_unchanged_people_and_departments_produce_no_change() -> None:
    snap = snapshot(ALICE, BOB)
    assert len(reconcile(snap, synced(snap), "D1")) == 0


def test_a_changed_field_updates_only_that_field() -> None:
    state = synced(snapshot(ALICE, BOB))
    plan = reconcile(snapshot(replace(ALICE, post="副科长"), BOB), state, "D1")
    assert kinds(plan) == [("update", "A1")]
    assert plan.changes[0].fields == {"post": "副科长"}


def test_a_department_change_is_a_transfer_ordered_before_joins() -> None:
    state = synced(snapshot(ALICE))
    newcomer = Person("A3", "王芳", "2", "13800000003", "D2")
    plan = reconcile(snapshot(replace(ALICE, department="D3"), newcomer), state, "D1")
    assert kinds(plan) == [("transfer", "A1"), ("join", "A3")]
    assert (plan.changes[0].from_department, plan.changes[0].department) == ("D2", "D3")


def test_retired_and_absent_people_leave() -> None:
    state = synced(snapshot(ALICE, BOB))
    plan = reconcile(snapshot(replace(ALICE, status=PersonStatus.RETIRED), Person("A3", "王芳", mobile="13800000003",
                                                                                  department="D2")), state, "D1")
    assert sorted(kinds(plan)) == [("join", "A3"), ("leave", "A1"), ("leave", "A2")]


def test_an_incomplete_or_empty_snapshot_deactivates_nobody() -> None:
    state = synced(snapshot(ALICE, BOB))
    assert kinds(reconcile(snapshot(ALICE, complete=False), state, "D1")) == []
    assert kinds(reconcile(snapshot(), state, "D1")) == []


def test_a_person_whose_row_was_rejected_does_not_leave() -> None:
    state = synced(snapshot(ALICE, BOB))
    snap = snapshot(ALICE)
    snap.rejections.append(Rejection("person", "A2", "mobile", "not an 11-digit mainland mobile number"))
    assert kinds(reconcile(snap, state, "D1")) == []


def test_a_renamed_department_is_updated_and_the_root_is_never_touched() -> None:
    snap = snapshot(ALICE)
    state = synced(snap)
    plan = reconcile(snapshot(ALICE, departments=(replace(ROOT, name="改名"), replace(OFFICE, name="综合办公室"),
                                                  AUDIT, TEAM)), state, "D1")
    assert kinds(plan) == [("dept_update", "D2")]
    assert plan.changes[0].fields == {"name": "综合办公室"}


def test_an_inactive_person_back_in_post_rejoins() -> None:
    state = synced(snapshot(ALICE))
    state.people["A1"] = replace(state.people["A1"], status="inactive")
    assert kinds(reconcile(snapshot(ALICE), state, "D1")) == [("rejoin", "A1")]


def test_plan_groups_by_kind_in_apply_order() -> None:
    plan = reconcile(snapshot(ALICE, BOB), LinkState(), "D1")
    assert list(plan.by_kind()) == [ChangeKind.DEPT_CREATE, ChangeKind.JOIN]


def test_a_person_without_a_valid_mobile_is_not_joined() -> None:
    plan = reconcile(snapshot(replace(ALICE, mobile="", invalid=frozenset({"mobile"}))), synced(snapshot()), "D1")
    assert kinds(plan) == []


def test_an_invalid_field_never_blanks_what_was_pushed() -> None:
    state = synced(snapshot(ALICE))
    plan = reconcile(snapshot(replace(ALICE, gender="", post="副科长", invalid=frozenset({"gender"}))), state, "D1")
    assert [c.fields for c in plan.changes] == [{"post": "副科长"}]


def test_transferred_out_people_get_transfer_out_not_leave() -> None:
    state = synced(snapshot(ALICE))
    plan = reconcile(snapshot(replace(ALICE, status=PersonStatus.TRANSFERRED_OUT)), state, "D1")
    assert kinds(plan) == [("transfer_out", "A1")]


def test_a_reparented_department_moves_and_a_vanished_one_retires_deepest_first_after_leaves() -> None:
    state = synced(snapshot(ALICE, BOB))
    state.departments["D5"] = LinkedDepartment("GO_D5", "D4", {"name": "二组"})
    moved = replace(TEAM, parent="D2")
    plan = reconcile(snapshot(ALICE, departments=(ROOT, OFFICE, moved)), state, "D1")
    assert kinds(plan) == [("dept_move", "D4"), ("leave", "A2"), ("dept_retire", "D5"), ("dept_retire", "D3")]
    assert (plan.changes[0].from_department, plan.changes[0].department) == ("D3", "D2")


def test_no_department_retires_from_an_incomplete_read() -> None:
    state = synced(snapshot(ALICE))
    assert kinds(reconcile(snapshot(ALICE, departments=(ROOT, OFFICE), complete=False), state, "D1")) == []


def test_a_retired_department_back_in_hr_is_created_again() -> None:
    state = synced(snapshot(ALICE))
    state.departments["D3"] = replace(state.departments["D3"], status="retired")
    assert kinds(reconcile(snapshot(ALICE), state, "D1")) == [("dept_create", "D3")]

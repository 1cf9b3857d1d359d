"""Drift detection: links corrected to what the directory holds, so reconcile plans the repair."""

from __future__ import annotations

from syncd.domain.drift import detect_drift
from syncd.domain.model import Department, LinkedDepartment, LinkedPerson, LinkState, Person, Snapshot
from syncd.domain.reconcile import reconcile
from syncd.domain.target import DirectoryEntry

ALICE = Person("A1", "张明", "1", "13800000001", "D2", post="科员")
BOB = Person("A2", "李华", "2", "13800000002", "D2", post="科员")
SNAPSHOT = Snapshot({"D1": Department("D1", "局"), "D2": Department("D2", "办公室", parent="D1"),
                     "D3": Department("D3", "财政处", parent="D1")}, {"A1": ALICE, "A2": BOB})


def links() -> LinkState:
    return LinkState(
        {"D2": LinkedDepartment("GO_2", "D1", {"name": "办公室", "short_name": "", "order": ""}),
         "D3": LinkedDepartment("GO_3", "D1", {"name": "财政处", "short_name": "", "order": ""})},
        {p.employee_id: LinkedPerson(f"GE_{p.employee_id}", 1, "D2", "GO_2", p.pushed_fields()) for p in (ALICE, BOB)})


def entry(code: str, org: str = "GO_2", status: str = "A", **fields: str) -> DirectoryEntry:
    return DirectoryEntry(code, status, org, {"name": "张明", "gender": "1", "post": "科员", **fields})


def test_an_unchanged_directory_shows_no_drift_and_plans_nothing() -> None:
    drift = detect_drift(links(), [entry("GE_A1"), entry("GE_A2", name="李华", gender="2")])
    assert not drift.found
    assert len(reconcile(SNAPSHOT, drift.links, "D1")) == 0


def test_a_field_changed_by_hand_is_repaired_from_hr() -> None:
    drift = detect_drift(links(), [entry("GE_A1", post="处长"), entry("GE_A2", name="李华", gender="2")])
    assert drift.changed_fields == {"A1": ["post"]}
    [change] = reconcile(SNAPSHOT, drift.links, "D1").changes
    assert (change.kind.value, change.subject, change.fields) == ("update", "A1", {"post": "科员"})


def test_a_hand_move_and_a_hand_deactivation_are_put_back() -> None:
    drift = detect_drift(links(), [entry("GE_A1", org="GO_3"), entry("GE_A2", status="F", name="李华", gender="2")])
    assert (drift.moved, drift.deactivated) == (["A1"], ["A2"])
    plan = reconcile(SNAPSHOT, drift.links, "D1")
    assert [(c.kind.value, c.subject) for c in plan.changes] == [("transfer", "A1"), ("rejoin", "A2")]
    assert plan.changes[0].from_department == "D3"


def test_people_unknown_to_hr_and_linked_people_gone_are_reported() -> None:
    drift = detect_drift(links(), [entry("GE_A1"), entry("GE_stranger")])
    assert [e.employee_code for e in drift.unknown] == ["GE_stranger"]
    assert drift.missing == ["A2"]

"""Apply: phases, concurrency, adopt on conflict, auth stop and quarantine — against an in-memory fake target."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from syncd.domain.model import STOPPED_BY_SIGNAL, Change, ChangeKind, LinkState, Plan
from syncd.domain.target import CreatedPerson, DirectoryPerson, TargetError
from syncd.engine.apply import Applier, ApplySettings
from syncd.state.store import StateStore


class Refused(TargetError):
    def __init__(self, category: str) -> None:
        super().__init__(f"refused: {category}")
        self.category = category


class FakeTarget:
    """A directory in memory that enforces parents, unique mobiles, and counts calls in flight."""

    def __init__(self, fail: Mapping[str, str] | None = None, delay: float = 0.0) -> None:
        self.orgs: dict[str, str | None] = {"GO_root": None}
        self.people: dict[str, dict[str, str]] = {}
        self.fail = dict(fail or {})  # subject (ext code or mobile) -> category
        self.delay = delay
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def _enter(self, key: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        if key in self.fail:
            raise Refused(self.fail[key])

    def create_department(self, fields: Mapping[str, str], parent_code: str, ext_code: str) -> str:
        self._enter(ext_code)
        assert parent_code in self.orgs, f"{ext_code} created before its parent"
        if f"GO_{ext_code}" in self.orgs:
            raise Refused("conflict")
        self.orgs[f"GO_{ext_code}"] = parent_code
        return f"GO_{ext_code}"

    def find_department(self, ext_code: str) -> str | None:
        return f"GO_{ext_code}" if f"GO_{ext_code}" in self.orgs else None

    def organization_parent(self, code: str) -> str | None:
        return self.orgs.get(code)

    def update_department(self, code: str, fields: Mapping[str, str]) -> None:
        self.renamed = (code, dict(fields))

    def create_person(self, fields: Mapping[str, str], org_code: str) -> CreatedPerson:
        self._enter(fields["mobile"])
        if any(p["mobile"] == fields["mobile"] for p in self.people.values()):
            raise Refused("conflict")
        code = f"GE_{len(self.people)}"
        self.people[code] = {**fields, "org": org_code}
        return CreatedPerson(code, len(self.people))

    def find_person_by_mobile(self, mobile: str) -> DirectoryPerson | None:
        return next((DirectoryPerson(c, 7, "A") for c, p in self.people.items() if p["mobile"] == mobile), None)

    def person_positions(self, employee_code: str) -> list[str]:
        return [self.people[employee_code]["org"]]

    def move_person(self, employee_code: str, from_code: str, to_code: str) -> None:
        self.people[employee_code]["org"] = to_code

    def update_person(self, employee_code: str, org_code: str, fields: Mapping[str, str]) -> None:
        self.people[employee_code].update(fields)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def applier(target: FakeTarget, store: StateStore, concurrency: int = 1, quarantine: float = 1.0) -> Applier:
    settings = ApplySettings("D1", "GO_root", quarantine_failure_share=quarantine, concurrency=concurrency)
    return Applier(target, store, LinkState(), settings)  # type: ignore[arg-type]


def new_run(store: StateStore) -> str:
    return store.start_run("test", "incremental", dry_run=False)


def join(i: int, department: str = "D1") -> Change:
    return Change(ChangeKind.JOIN, f"A{i}", {"name": f"人{i}", "mobile": f"138{i:08d}"}, department=department)


def test_departments_are_created_parent_first_even_when_concurrent(store: StateStore) -> None:
    target = FakeTarget(delay=0.002)
    plan = Plan([Change(ChangeKind.DEPT_CREATE, "D2", {"name": "a"}, department="D1"),
                 Change(ChangeKind.DEPT_CREATE, "D3", {"name": "b"}, department="D1"),
                 Change(ChangeKind.DEPT_CREATE, "D4", {"name": "c"}, department="D2"),
                 Change(ChangeKind.DEPT_CREATE, "D5", {"name": "d"}, department="D4"),
                 join(1, "D5")])
    report = applier(target, store, concurrency=4).apply(new_run(store), plan)
    assert [o.state for o in report.outcomes] == ["done"] * 5
    assert target.people["GE_0"]["org"] == "GO_D5"


def test_independent_changes_run_concurrently(store: StateStore) -> None:
    target = FakeTarget(delay=0.02)
    report = applier(target, store, concurrency=4).apply(new_run(store), Plan([join(i) for i in range(12)]))
    assert report.failed == 0 and target.max_in_flight > 1


def test_a_taken_mobile_adopts_the_person_who_has_it(store: StateStore) -> None:
    target = FakeTarget()
    target.people["GE_x"] = {"mobile": "13800000001", "org": "GO_elsewhere", "name": "旧名"}
    report = applier(target, store).apply(new_run(store), Plan([join(1)]))
    assert report.outcomes[0].state == "done" and "adopted" in report.outcomes[0].message
    assert target.people["GE_x"]["org"] == "GO_root" and target.people["GE_x"]["name"] == "人1"
    assert store.links().people["A1"].employee_code == "GE_x"


def test_an_auth_error_stops_the_run_and_the_rest_is_not_attempted(store: StateStore) -> None:
    target = FakeTarget(fail={"13800000002": "auth"})
    run = new_run(store)
    report = applier(target, store).apply(run, Plan([join(i) for i in range(1, 6)]))
    assert [o.category for o in report.outcomes] == [None, "auth", "stopped", "stopped", "stopped"]
    assert report.stopped and len(target.people) == 1
    assert store.journal_states(run) == {"done": 1, "failed": 4}  # nothing left planned for recovery


def test_a_stop_signal_journals_every_change_not_attempted(store: StateStore) -> None:
    stop = threading.Event()
    stop.set()
    run = new_run(store)
    settings = ApplySettings("D1", "GO_root", concurrency=4, stop=stop)
    report = Applier(FakeTarget(), store, LinkState(), settings).apply(run, Plan([join(i) for i in range(50)]))
    assert report.stopped == STOPPED_BY_SIGNAL
    assert {o.category for o in report.outcomes} == {"stopped"} and len(report.outcomes) == 50
    assert store.journal_states(run) == {"failed": 50}


def test_too_many_failures_quarantine_the_run(store: StateStore) -> None:
    target = FakeTarget(fail={f"138{i:08d}": "invalid" for i in range(0, 40, 2)})
    report = applier(target, store, quarantine=0.4).apply(new_run(store), Plan([join(i) for i in range(40)]))
    assert report.stopped and report.stopped.startswith("quarantine")
    assert len(target.people) < 20


def test_an_existing_organisation_with_the_ext_code_is_adopted_only_inside_the_unit(store: StateStore) -> None:
    target = FakeTarget()
    target.orgs.update({"GO_D2": "GO_root", "GO_sister": None, "GO_D3": "GO_sister"})
    plan = Plan([Change(ChangeKind.DEPT_CREATE, "D2", {"name": "办公室"}, department="D1"),
                 Change(ChangeKind.DEPT_CREATE, "D3", {"name": "财政处"}, department="D1")])
    report = applier(target, store).apply(new_run(store), plan)
    assert [o.state for o in report.outcomes] == ["done", "failed"]
    assert "adopted" in report.outcomes[0].message
    assert "outside the unit" in report.outcomes[1].message
    assert target.renamed == ("GO_D2", {"name": "办公室"})

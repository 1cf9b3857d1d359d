"""Escalation after real cycles against the simulator over HTTP, on simulated time after them.

Causes per change: a new hire whose mobile belongs to someone in another unit is refused with 300037
(scope) while the other changes land, and is that person's record problem. One decision per guard:
a mass-deactivation hold that grows while undecided stays one run to decide and one level-2 notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from connectors.zzd.simulator import SimTenant, SimulatorServer
from connectors.zzd.simulator.directory import Account, Employee, Position
from syncd.config import Admin, Config, load
from syncd.domain.escalation import Escalation, gather_facts
from syncd.domain.scope import Scope
from syncd.engine.cycle import CycleOptions, run_cycle
from syncd.state.models import JournalEntry
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENTS, PEOPLE, config_toml, person
from tests.test_escalation import UNIT, Recorder

CST = ZoneInfo("Asia/Shanghai")
ROOT = "GO_" + "0" * 31 + "9"
OTHER_UNIT = "GO_" + "b" * 32
TENANT = SimTenant(tenant_id=196729, app_key="cause-key", app_secret="cause-secret", root_code=ROOT,
                   admin_token="cause-admin", other_units={OTHER_UNIT: "其他单位"})
TAKEN_MOBILE = "13900000099"


@pytest.fixture
def bureau(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> Iterator[tuple[Config, SimulatorServer]]:
    """The small bureau synced once into a simulator with a neighbouring unit; at most 1 deactivation unheld."""
    export()
    with SimulatorServer(TENANT) as server:
        path = tmp_path / "syncd.toml"
        path.write_text(config_toml(server.base_url, ROOT, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
                                    unit={"name": UNIT}, target={"rate_limit": 1000}, state={"url": "sqlite:///state.db"},
                                    safety={"structure_changes": "apply", "max_deactivations": 1},
                                    logging={"format": "json", "level": "warning"}), encoding="utf-8")
        config = load(path)
        escalation = config.escalation.model_copy(update={
            "unit_admins": [Admin(name="管理员甲", account_id=9001)],
            "higher_admins": [Admin(name="市局管理员", account_id=9101)]})
        yield config.model_copy(update={"escalation": escalation}), server


def sync(config: Config, options: CycleOptions | None = None) -> str | None:
    store = StateStore(config.state.url)
    try:
        result = run_cycle(config, build_source(config), build_target(config), store, options or CycleOptions())
        return result.outcome
    finally:
        store.close()


def test_a_mobile_taken_in_another_unit_is_that_persons_level_1_problem_and_reaches_level_2_only_when_overdue(
        bureau: tuple[Config, SimulatorServer], export: Callable[..., tuple[Path, Path]]) -> None:
    config, server = bureau
    assert sync(config) == "success"
    directory = server.simulator.directory
    directory.employees["GE_" + "c" * 32] = Employee("GE_" + "c" * 32, "外单位人员", TAKEN_MOBILE, 880001,
                                                     positions=[Position(OTHER_UNIT, True)])
    directory.accounts[880001] = Account(880001, "GE_" + "c" * 32)
    export(people=[*[dict(p, 职务="副主任") if p["工号"] == "A000002" else p for p in PEOPLE],
                   person("A000099", "新同事", TAKEN_MOBILE, "D0003")])
    assert sync(config) == "partial"

    store = StateStore(config.state.url)
    recorder = Recorder()
    try:
        with store.engine.connect() as connection:
            states = dict(connection.execute(select(JournalEntry.subject, JournalEntry.error_category).where(
                JournalEntry.state == "failed")).all())
            due = connection.execute(select(JournalEntry.due_at).where(JournalEntry.subject == "A000099")).scalar_one()
        assert states == {"A000099": "scope"}  # everyone else landed

        escalation = Escalation(store, config, [recorder], UNIT)
        t0 = datetime.now(UTC)
        day = timedelta(days=1)
        for now in (t0, t0 + timedelta(hours=5), t0 + day, t0 + day + timedelta(hours=1), t0 + 2 * day):
            if now.astimezone(CST).date() <= due:
                escalation.observe(now, gather_facts(store, now.astimezone(CST).date(), config.escalation,
                                                     root_organization_code=ROOT))
        sent = recorder.take()
        assert sent[0] == (1, "refused", "open")
        assert all(level == 1 and kind == "refused" for level, kind, _ in sent)  # no auth alarm, no level 2
        opened = recorder.last[0]
        assert opened.key == "refused:A000099" and opened.subjects == ("A000099",)
        assert "手机号已被其他单位人员使用" in opened.text and "A000099" in opened.text
        assert "A000002" not in opened.text and "app_key" not in opened.text

        overdue = datetime.combine(due + day, time(9), CST)
        escalation.observe(overdue, gather_facts(store, overdue.date(), config.escalation,
                                                 root_organization_code=ROOT))
        later = recorder.take()
        assert (2, "overdue", "open") in later
        assert {n.subjects for n in recorder.last if n.kind == "overdue"} == {("A000099",)}
        assert all(kind != "refused" for level, kind, _ in later if level == 2)
    finally:
        store.close()


def leavers(*ids: str) -> list[dict[str, str]]:
    """The bureau's people with `ids` marked 离职."""
    return [dict(p, 人员状态="离职") if p["工号"] in ids else p for p in PEOPLE]


def test_a_hold_that_grows_while_undecided_is_one_run_to_decide_and_one_level_2_notice(
        bureau: tuple[Config, SimulatorServer], export: Callable[..., tuple[Path, Path]]) -> None:
    config, server = bureau
    assert sync(config) == "success"
    store = StateStore(config.state.url)
    recorder = Recorder()
    escalation = Escalation(store, config, [recorder], UNIT)
    t0 = datetime.now(UTC)

    def observe(now: datetime) -> None:
        escalation.observe(now, gather_facts(store, now.astimezone(CST).date(), config.escalation,
                                             root_organization_code=ROOT))

    try:
        export(people=leavers("A000002", "A000003"))
        assert sync(config) == "held"
        [(first, _, held)] = store.held_runs()
        assert held == 2
        observe(t0)
        assert recorder.take() == [(1, "held", "open")]
        opened = recorder.last[0]
        assert opened.key == "held" and opened.subjects == ("A000002", "A000003")
        assert "2 项停用（离职、退休、调离）超过批量停用上限（一次停用超过 1 人或超过在用人数（" in opened.text
        assert f"syncd approve {first}" in opened.text

        export(people=leavers("A000002", "A000003", "A000004"))  # one more leaves while the hold waits
        assert sync(config) == "held"
        [(second, _, held)] = store.held_runs()  # one run to decide, holding the whole set
        assert second != first and held == 3
        observe(t0 + timedelta(hours=2))
        assert recorder.take() == [(1, "held", "reminder")]  # at once: another run to decide
        reminder = recorder.last[0].text
        observe(t0 + timedelta(hours=3))
        assert recorder.take() == []
        assert f"syncd approve {second}" in reminder and first not in reminder and "3 项停用" in reminder

        observe(t0 + timedelta(days=1))
        export(people=leavers("A000002", "A000003", "A000004", "A000005"))
        assert sync(config) == "held"
        [(third, _, held)] = store.held_runs()
        assert held == 4
        for hours in (26, 30, 47):
            observe(t0 + timedelta(hours=hours))
        level_2 = [n for n in recorder.sent if n.level == 2]
        assert [(n.kind, n.state) for n in level_2 if n.state == "open"] == [("held", "open")]  # heard once
        assert store.decide(first, approve=True) == 0  # superseded: nothing left to decide there
        assert store.decide(third, approve=True) == 4
        assert sync(config) == "success"
        observe(t0 + timedelta(hours=48))
        assert (1, "held", "resolved") in recorder.take()
        people = store.links().people
        directory = server.simulator.directory.employees
        assert {i for i in people if directory[people[i].employee_code].status == "F"} == {
            "A000002", "A000003", "A000004", "A000005"}
    finally:
        store.close()


@pytest.mark.parametrize(("first_leavers", "then"), [
    (("A000002", "A000003"), ("A000004",)),  # the resync holds A000003 again, and A000004
    (("A000002", "A000005"), ("A000003", "A000004")),  # the resync's hold shares nothing with the waiting one
])
def test_a_scoped_resync_that_holds_while_a_hold_waits_takes_in_the_rest_one_run_to_decide(
        bureau: tuple[Config, SimulatorServer], export: Callable[..., tuple[Path, Path]],
        first_leavers: tuple[str, ...], then: tuple[str, ...]) -> None:
    config, server = bureau
    assert sync(config) == "success"
    store = StateStore(config.state.url)
    try:
        export(people=leavers(*first_leavers))  # held: at most 1 deactivation unheld
        assert sync(config) == "held"
        [(first, _, held)] = store.held_runs()
        assert held == 2
        # More leave in 财政审计处 (D0003), and HR resyncs that department only: its plan holds its own
        # leavers; the waiting hold's others are outside its scope.
        export(people=leavers(*first_leavers, *then))
        resync = CycleOptions(trigger="resync", scope=Scope("department", "D0003"))
        assert sync(config, resync) == "held"
        everyone = {*first_leavers, *then}
        [(second, _, held)] = store.held_runs()  # one run to decide, holding the whole set
        assert second != first and held == len(everyone)
        assert store.run(second).counts["held"] == len(everyone)
        assert store.decide(first, approve=True) == 0
        assert store.decide(second, approve=True) == len(everyone)
        assert sync(config) == "success"
        people = store.links().people
        directory = server.simulator.directory.employees
        assert {i for i in people if directory[people[i].employee_code].status == "F"} == everyone
        assert store.held_runs() == []
    finally:
        store.close()


def test_a_scoped_resync_takes_in_a_waiting_structure_hold_with_the_join_that_waits_on_it(
        bureau: tuple[Config, SimulatorServer], export: Callable[..., tuple[Path, Path]]) -> None:
    config, server = bureau
    assert sync(config) == "success"  # the tree built (structure changes applied), then held from here on
    config = config.model_copy(update={"safety": config.safety.model_copy(update={"structure_changes": "hold"})})
    new_department = {"部门编号": "D0006", "部门名称": "法规科", "简称": "", "上级部门编号": "D0002", "排序": "3"}
    newcomer = person("A000007", "新同事", "13800000007", "D0006")
    export(people=[*PEOPLE, newcomer], departments=[*DEPARTMENTS, new_department])
    assert sync(config) == "held"  # the new department is held; the newcomer waits on it
    [(first, _, held)] = store_held(config)
    assert held == 1
    export(people=[*leavers("A000003", "A000004"), newcomer], departments=[*DEPARTMENTS, new_department])
    assert sync(config, CycleOptions(trigger="resync", scope=Scope("department", "D0003"))) == "held"
    store = StateStore(config.state.url)
    try:
        [(second, _, held)] = store.held_runs()
        assert second != first and held == 3  # the department and the two leavers; the join follows them
        with store.engine.connect() as connection:
            waiting = connection.execute(select(JournalEntry.run_id).where(
                JournalEntry.subject == "A000007", JournalEntry.state == "held")).scalars().all()
        assert waiting == [second]
        assert store.decide(second, approve=True) == 3
    finally:
        store.close()
    assert sync(config) == "success"
    directory = server.simulator.directory
    assert any(o.name == "法规科" for o in directory.organizations.values())
    assert any(e.mobile == "13800000007" and e.status == "A" for e in directory.employees.values())


def store_held(config: Config) -> list[tuple[str, datetime, int]]:
    """The runs waiting for a decision, from a store opened and closed for the question."""
    store = StateStore(config.state.url)
    try:
        return store.held_runs()
    finally:
        store.close()

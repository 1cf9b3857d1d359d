"""Causes per change, not per run: one person the gateway refuses is that person's record problem.

A real cycle against the simulator over HTTP: a new hire whose mobile belongs to someone in another
unit is refused with 300037 (scope) while the other changes land; the escalation engine then runs on
simulated time after it.
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
from syncd.cycle import run_cycle
from syncd.escalation import Escalation, gather_facts
from syncd.state.models import JournalEntry
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import PEOPLE, config_toml, person
from tests.test_escalation import UNIT, Recorder

CST = ZoneInfo("Asia/Shanghai")
ROOT = "GO_" + "0" * 31 + "9"
OTHER_UNIT = "GO_" + "b" * 32
TENANT = SimTenant(tenant_id=196729, app_key="cause-key", app_secret="cause-secret", root_code=ROOT,
                   admin_token="cause-admin", other_units={OTHER_UNIT: "其他单位"})
TAKEN_MOBILE = "13900000099"


@pytest.fixture
def bureau(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> Iterator[tuple[Config, SimulatorServer]]:
    export()
    with SimulatorServer(TENANT) as server:
        path = tmp_path / "syncd.toml"
        path.write_text(config_toml(server.base_url, ROOT, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
                                    unit={"name": UNIT}, target={"rate_limit": 1000}, state={"url": "sqlite:///state.db"},
                                    safety={"structure_changes": "apply"},
                                    logging={"format": "json", "level": "warning"}), encoding="utf-8")
        config = load(path)
        escalation = config.escalation.model_copy(update={
            "unit_admins": [Admin(name="管理员甲", account_id=9001)],
            "higher_admins": [Admin(name="市局管理员", account_id=9101)]})
        yield config.model_copy(update={"escalation": escalation}), server


def sync(config: Config) -> str | None:
    store = StateStore(config.state.url)
    try:
        result = run_cycle(config, build_source(config), build_target(config), store)
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

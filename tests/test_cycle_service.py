"""The cycle as the daemon runs it: skipped when HR is unchanged, scoped resyncs, due dates that hold."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from syncd.cli import main
from syncd.config import Config, load
from syncd.cycle import YOUNG_GENERATION, CycleOptions, CycleResult, run_cycle
from syncd.model import Change, ChangeKind
from syncd.source import RawRecord, Source
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENTS, PEOPLE, config_toml, person

TENANT = SimTenant(tenant_id=196729, app_key="svc-key", app_secret="svc-secret",
                   root_code="GO_" + "0" * 31 + "1", admin_token="svc-admin")


@dataclass
class Unit:
    """A simulator, a configuration pointing at it, and HR's export."""

    server: SimulatorServer
    config_path: Path
    export: Callable[..., tuple[Path, Path]]

    @property
    def config(self) -> Config:
        return load(self.config_path)

    def cycle(self, **options: object) -> CycleResult:
        config = self.config
        store = StateStore(config.state.url)
        try:
            return run_cycle(config, build_source(config), build_target(config), store, CycleOptions(**options))
        finally:
            store.close()

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--config", str(self.config_path)])  # --config after the command

    def store(self) -> StateStore:
        return StateStore(self.config.state.url)

    def writes(self) -> int:
        return int(SimAdmin(self.server.base_url, "svc-admin").counters()["writes"])

    def posts(self) -> dict[str, str]:
        """Employee code → post, as the directory holds it."""
        directory = SimAdmin(self.server.base_url, "svc-admin").directory()
        return {e["employeeCode"]: main["govEmpPosJob"] for e in directory["employees"] if e["status"] == "A"
                for main in e["positions"] if main["mainJob"]}


@pytest.fixture
def unit(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> Iterator[Unit]:
    with SimulatorServer(TENANT) as server:
        path = tmp_path / "syncd.toml"
        path.write_text(config_toml(server.base_url, TENANT.root_code, "svc-key", "svc-secret", TENANT.tenant_id,
                                    state={"url": "sqlite:///state.db"},
                                    target={"rate_limit": 500, "retry_attempts": 1},
                                    safety={"structure_changes": "apply"}), encoding="utf-8")
        export()
        yield Unit(server, path, export)


def edited(**posts: str) -> list[dict[str, str]]:
    """The bureau with some people's 职务 changed."""
    return [{**row, "职务": posts.get(row["工号"], row["职务"])} for row in PEOPLE]


def code_of(unit: Unit, employee_id: str) -> str:
    store = unit.store()
    try:
        return store.links().people[employee_id].employee_code
    finally:
        store.close()


def test_an_incremental_cycle_over_unchanged_files_is_skipped_without_reading_or_a_run(unit: Unit) -> None:
    assert unit.cycle().outcome == "success"
    store = unit.store()
    runs = len(store.runs(100))
    store.close()
    writes = unit.writes()
    result = unit.cycle(trigger="schedule", skip_unchanged=True)
    assert result.outcome == "skipped"
    assert result.exit_code == 0
    assert not result.snapshot.people  # nothing was read
    store = unit.store()
    assert len(store.runs(100)) == runs
    store.close()
    assert unit.writes() == writes


def test_an_edit_in_hr_makes_the_next_incremental_cycle_run(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=edited(A000002="副主任"))
    result = unit.cycle(trigger="schedule", skip_unchanged=True)
    assert result.outcome == "success"
    assert [c.kind for c in result.plan.changes] == [ChangeKind.UPDATE]
    assert unit.posts()[code_of(unit, "A000002")] == "副主任"


def test_a_failed_change_is_retried_although_hr_did_not_change(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=edited(A000002="副主任"))
    admin = SimAdmin(unit.server.base_url, "svc-admin")
    admin.set_faults(error_share=1.0)  # the gateway answers 500 to everything
    failed = unit.cycle(trigger="schedule", skip_unchanged=True)
    assert failed.outcome in ("partial", "failed")
    admin.set_faults(error_share=0.0)
    retried = unit.cycle(trigger="schedule", skip_unchanged=True)
    assert retried.outcome == "success"
    assert unit.posts()[code_of(unit, "A000002")] == "副主任"


def test_an_approval_makes_the_next_incremental_cycle_run(tmp_path: Path, unit: Unit) -> None:
    text = unit.config_path.read_text(encoding="utf-8").replace('structure_changes = "apply"',
                                                                 'structure_changes = "hold"')
    unit.config_path.write_text(text, encoding="utf-8")
    held = unit.cycle()
    assert held.outcome == "held"
    assert unit.cycle(trigger="schedule", skip_unchanged=True).outcome == "skipped"  # nothing new, nothing decided
    assert unit.cli("approve", held.run_id or "").exit_code == 0
    after = unit.cycle(trigger="schedule", skip_unchanged=True)
    assert after.outcome == "success"
    assert len(unit.posts()) == sum(1 for p in PEOPLE if p["人员状态"] == "在职")


def test_a_resync_of_one_person_plans_only_that_person(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=edited(A000002="副主任", A000003="处长"))
    result = unit.cli("resync", "--employee", "A000002")  # no daemon runs: inline
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    posts = unit.posts()
    assert posts[code_of(unit, "A000002")] == "副主任"
    assert posts[code_of(unit, "A000003")] == "科员"  # not in scope: waits for the next cycle
    store = unit.store()
    [run] = [r for r in store.runs(10) if r.trigger == "resync"]
    assert run.scope == "employee A000002"
    assert run.counts.get("update.done") == 1
    store.close()


def test_a_resync_of_one_person_never_deactivates_anyone_else(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=[p for p in PEOPLE if p["工号"] != "A000004"])  # A000004 gone from HR
    assert unit.cli("resync", "--employee", "A000002").exit_code == 0
    store = unit.store()
    assert store.links().people["A000004"].status == "active"
    store.close()


def test_a_resync_of_a_department_covers_its_people_and_sub_departments(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=edited(A000005="主任", A000002="副主任"),
                departments=[{**d, "简称": "局属"} if d["部门编号"] == "D0004" else d for d in DEPARTMENTS])
    result = unit.cli("resync", "--department", "D0004")
    assert result.exit_code == 0, result.output
    posts = unit.posts()
    assert posts[code_of(unit, "A000005")] == "主任"  # in D0005, under D0004
    assert posts[code_of(unit, "A000002")] == "科员"  # D0002 is not under D0004
    store = unit.store()
    [run] = [r for r in store.runs(10) if r.trigger == "resync"]
    assert run.counts == {**run.counts, "update.done": 1, "dept_update.done": 1}
    store.close()


def test_a_resync_of_someone_hr_does_not_know_fails_and_says_so(unit: Unit) -> None:
    unit.cycle()
    result = unit.cli("resync", "--employee", "A999999")
    assert result.exit_code == 1
    assert "A999999 is not in HR's records" in result.output


def test_a_resync_of_a_rejected_record_says_which_field(unit: Unit) -> None:
    unit.cycle()
    unit.export(people=[*PEOPLE, person("A000050", "", "13800000050", "D0002")])  # no name: rejected
    result = unit.cli("resync", "--employee", "A000050")
    assert result.exit_code == 1
    assert "rejected (name: missing)" in result.output


def test_resync_needs_exactly_one_scope(unit: Unit) -> None:
    assert unit.cli("resync").exit_code == 2
    assert unit.cli("resync", "--all", "--employee", "A000001").exit_code == 2


def test_status_shows_the_runs_and_no_daemon(unit: Unit) -> None:
    unit.cycle()
    result = unit.cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["daemon"]["running"] is False
    assert report["runs"][0]["outcome"] == "success"
    assert "Daemon: not running" in unit.cli("status").output


def test_a_change_open_across_runs_keeps_its_first_due_date_and_becomes_overdue(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    change = Change(ChangeKind.UPDATE, "A000001", {"post": "科长"})
    first_run = store.start_run("schedule", "incremental", dry_run=False)
    [(entry, due)] = store.journal_plan(first_run, [change], datetime(2026, 11, 2, tzinfo=UTC), date(2026, 11, 5))
    store.mark_failed(entry, "unavailable", "gateway down")
    store.finish_run(first_run, "partial", {})
    second_run = store.start_run("schedule", "incremental", dry_run=False)
    [(again, carried)] = store.journal_plan(second_run, [change], datetime(2026, 11, 9, tzinfo=UTC),
                                            date(2026, 11, 12))
    assert carried == due == date(2026, 11, 5)
    store.mark_failed(again, "unavailable", "gateway down")
    store.finish_run(second_run, "partial", {})
    assert [e.id for e in store.overdue(date(2026, 11, 6))] == [again]
    assert store.overdue(date(2026, 11, 5)) == []
    third_run = store.start_run("schedule", "incremental", dry_run=False)
    [(done, _)] = store.journal_plan(third_run, [change], datetime(2026, 11, 10, tzinfo=UTC), date(2026, 11, 13))
    store.mark_done(done)
    store.finish_run(third_run, "success", {})
    assert store.overdue(date(2026, 11, 20)) == []
    fourth_run = store.start_run("schedule", "incremental", dry_run=False)
    [(_, fresh)] = store.journal_plan(fourth_run, [change], datetime(2026, 11, 20, tzinfo=UTC),
                                          date(2026, 11, 25))
    assert fresh == date(2026, 11, 25)  # a new change after one that landed starts its own clock
    store.close()


def test_ack_stops_reminders_of_an_open_problem_and_status_shows_it(unit: Unit) -> None:
    from syncd.escalation import Escalation, gather_facts

    unit.cycle()
    admin = SimAdmin(unit.server.base_url, "svc-admin")
    admin.set_faults(error_share=1.0)
    unit.export(people=edited(A000002="副主任"))
    assert unit.cycle().outcome in ("partial", "failed")
    admin.set_faults(error_share=0.0)
    store = unit.store()
    now = datetime.now(UTC)
    Escalation(store, unit.config, [], "郑州市审计局").observe(now, gather_facts(store, now.date(),
                                                                               unit.config.escalation))
    store.close()
    report = json.loads(unit.cli("status", "--format", "json").output)
    assert [p["key"] for p in report["escalations"]] == ["run_failed"]
    assert unit.cli("ack", "run_failed", "--by", "值班员").exit_code == 0
    assert "acknowledged by 值班员" in unit.cli("status").output
    assert unit.cli("ack", "no-such-problem").exit_code == 2


def hold_structure(unit: Unit) -> None:
    text = unit.config_path.read_text(encoding="utf-8").replace('structure_changes = "apply"',
                                                                 'structure_changes = "hold"')
    unit.config_path.write_text(text, encoding="utf-8")


def test_a_scoped_resync_leaves_the_holds_outside_its_scope_waiting(unit: Unit) -> None:
    hold_structure(unit)
    held = unit.cycle()
    assert held.outcome == "held"
    assert unit.cli("resync", "--employee", "A000002").exit_code in (0, 1, 3)
    store = unit.store()
    assert [run_id for run_id, _, _ in store.held_runs()] == [held.run_id]  # still waiting for a decision
    store.close()
    assert unit.cycle(trigger="schedule", skip_unchanged=True).outcome == "skipped"
    assert unit.cli("approve", held.run_id or "").exit_code == 0  # the decision is still there to make


def test_changes_that_waited_on_an_approved_hold_are_not_overdue_once_applied(unit: Unit) -> None:
    hold_structure(unit)
    held = unit.cycle()
    assert unit.cli("approve", held.run_id or "").exit_code == 0
    assert unit.cycle().outcome == "success"
    store = unit.store()
    assert store.journal_states(held.run_id or "").keys() <= {"done", "superseded"}
    assert store.overdue(date(2027, 6, 1)) == []
    store.close()


def test_a_failure_hr_took_back_gives_no_due_date_to_a_later_change(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    first = store.start_run("schedule", "incremental", dry_run=False)
    [(entry, _)] = store.journal_plan(first, [Change(ChangeKind.UPDATE, "A000002", {"post": "副主任"})],
                                      datetime(2026, 1, 5, tzinfo=UTC), date(2026, 1, 8))
    store.mark_failed(entry, "unavailable", "gateway down")
    store.finish_run(first, "partial", {})
    reverted = store.start_run("schedule", "incremental", dry_run=False)  # HR took the edit back: nothing planned
    store.finish_run(reverted, "success", {})
    later = store.start_run("schedule", "incremental", dry_run=False)
    [(_, due)] = store.journal_plan(later, [Change(ChangeKind.UPDATE, "A000002", {"post": "处长"})],
                                    datetime(2026, 11, 30, tzinfo=UTC), date(2026, 12, 3))
    assert due == date(2026, 12, 3)
    store.close()


class ThresholdWatchingSource:
    """A source that notes the collector's thresholds while the cycle reads people."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.seen: list[tuple[int, int, int]] = []

    def departments(self) -> Iterator[RawRecord]:
        return self.inner.departments()

    def people(self) -> Iterator[RawRecord]:
        self.seen.append(gc.get_threshold())
        return self.inner.people()


def test_a_cycle_lets_the_collectors_young_generation_grow_and_restores_it_after(unit: Unit) -> None:
    config = unit.config
    store = unit.store()
    source = ThresholdWatchingSource(build_source(config))
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        result = run_cycle(config, source, build_target(config), store, CycleOptions())
        after = gc.get_threshold()
    finally:
        gc.set_threshold(*before)
        store.close()
    assert result.outcome == "success"
    assert source.seen == [(YOUNG_GENERATION, 10, 10)]
    assert after == (700, 10, 10)

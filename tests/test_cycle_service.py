"""The cycle as the daemon runs it: skipped when HR is unchanged, scoped resyncs, due dates that hold."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from syncd.domain.model import Change, ChangeKind
from syncd.domain.source import RawRecord, Source
from syncd.engine.cycle import YOUNG_GENERATION, CycleOptions, run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENTS, PEOPLE, person
from tests.sim_env import Env


@pytest.fixture
def env_options() -> dict[str, object]:
    """One try per call: the gateway faults of these tests fail a cycle at once."""
    return {"retry_attempts": 1}


def edited(**posts: str) -> list[dict[str, str]]:
    """The bureau with some people's 职务 changed."""
    return [{**row, "职务": posts.get(row["工号"], row["职务"])} for row in PEOPLE]


def code_of(env: Env, employee_id: str) -> str:
    store = env.store()
    try:
        return store.links().people[employee_id].employee_code
    finally:
        store.close()


def test_an_incremental_cycle_over_unchanged_files_is_skipped_without_reading_or_a_run(env: Env) -> None:
    assert env.cycle().outcome == "success"
    store = env.store()
    runs = len(store.runs(100))
    store.close()
    writes = env.writes()
    result = env.cycle(trigger="schedule", skip_unchanged=True)
    assert result.outcome == "skipped"
    assert result.exit_code == 0
    assert not result.snapshot.people  # nothing was read
    store = env.store()
    assert len(store.runs(100)) == runs
    store.close()
    assert env.writes() == writes


def test_an_edit_in_hr_makes_the_next_incremental_cycle_run(env: Env) -> None:
    env.cycle()
    env.write_export(people=edited(A000002="副主任"))
    result = env.cycle(trigger="schedule", skip_unchanged=True)
    assert result.outcome == "success"
    assert [c.kind for c in result.plan.changes] == [ChangeKind.UPDATE]
    assert env.posts()[code_of(env, "A000002")] == "副主任"


def test_a_failed_change_is_retried_although_hr_did_not_change(env: Env) -> None:
    env.cycle()
    env.write_export(people=edited(A000002="副主任"))
    admin = env.sim_admin()
    admin.set_faults(error_share=1.0)  # the gateway answers 500 to everything
    failed = env.cycle(trigger="schedule", skip_unchanged=True)
    assert failed.outcome in ("partial", "failed")
    admin.set_faults(error_share=0.0)
    retried = env.cycle(trigger="schedule", skip_unchanged=True)
    assert retried.outcome == "success"
    assert env.posts()[code_of(env, "A000002")] == "副主任"


def test_an_approval_makes_the_next_incremental_cycle_run(tmp_path: Path, env: Env) -> None:
    text = env.config.read_text(encoding="utf-8").replace('structure_changes = "apply"',
                                                                 'structure_changes = "hold"')
    env.config.write_text(text, encoding="utf-8")
    held = env.cycle()
    assert held.outcome == "held"
    assert env.cycle(trigger="schedule", skip_unchanged=True).outcome == "skipped"  # nothing new, nothing decided
    assert env.cli("approve", held.run_id or "").exit_code == 0
    after = env.cycle(trigger="schedule", skip_unchanged=True)
    assert after.outcome == "success"
    assert len(env.posts()) == sum(1 for p in PEOPLE if p["人员状态"] == "在职")


def test_a_resync_of_one_person_plans_only_that_person(env: Env) -> None:
    env.cycle()
    env.write_export(people=edited(A000002="副主任", A000003="处长"))
    result = env.cli("resync", "--employee", "A000002")  # no daemon runs: inline
    assert result.exit_code == 0, result.output
    assert "done" in result.output
    posts = env.posts()
    assert posts[code_of(env, "A000002")] == "副主任"
    assert posts[code_of(env, "A000003")] == "科员"  # not in scope: waits for the next cycle
    store = env.store()
    [run] = [r for r in store.runs(10) if r.trigger == "resync"]
    assert run.scope == "employee A000002"
    assert run.counts.get("update.done") == 1
    store.close()


def test_a_resync_of_one_person_never_deactivates_anyone_else(env: Env) -> None:
    env.cycle()
    env.write_export(people=[p for p in PEOPLE if p["工号"] != "A000004"])  # A000004 gone from HR
    assert env.cli("resync", "--employee", "A000002").exit_code == 0
    store = env.store()
    assert store.links().people["A000004"].status == "active"
    store.close()


def test_a_resync_of_a_department_covers_its_people_and_sub_departments(env: Env) -> None:
    env.cycle()
    env.write_export(people=edited(A000005="主任", A000002="副主任"),
                departments=[{**d, "简称": "局属"} if d["部门编号"] == "D0004" else d for d in DEPARTMENTS])
    result = env.cli("resync", "--department", "D0004")
    assert result.exit_code == 0, result.output
    posts = env.posts()
    assert posts[code_of(env, "A000005")] == "主任"  # in D0005, under D0004
    assert posts[code_of(env, "A000002")] == "科员"  # D0002 is not under D0004
    store = env.store()
    [run] = [r for r in store.runs(10) if r.trigger == "resync"]
    assert run.counts == {**run.counts, "update.done": 1, "dept_update.done": 1}
    store.close()


def test_a_resync_of_someone_hr_does_not_know_fails_and_says_so(env: Env) -> None:
    env.cycle()
    result = env.cli("resync", "--employee", "A999999")
    assert result.exit_code == 1
    assert "A999999 is not in HR's records" in result.output


def test_a_resync_of_a_rejected_record_says_which_field(env: Env) -> None:
    env.cycle()
    env.write_export(people=[*PEOPLE, person("A000050", "", "13800000050", "D0002")])  # no name: rejected
    result = env.cli("resync", "--employee", "A000050")
    assert result.exit_code == 1
    assert "rejected (name: missing)" in result.output


def test_resync_needs_exactly_one_scope(env: Env) -> None:
    assert env.cli("resync").exit_code == 2
    assert env.cli("resync", "--all", "--employee", "A000001").exit_code == 2


def test_status_shows_the_runs_and_no_daemon(env: Env) -> None:
    env.cycle()
    result = env.cli("status", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["daemon"]["running"] is False
    assert report["runs"][0]["outcome"] == "success"
    assert "Daemon: not running" in env.cli("status").output


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


def test_ack_stops_reminders_of_an_open_problem_and_status_shows_it(env: Env) -> None:
    from syncd.domain.escalation import Escalation, gather_facts

    env.cycle()
    admin = env.sim_admin()
    admin.set_faults(error_share=1.0)
    env.write_export(people=edited(A000002="副主任"))
    assert env.cycle().outcome in ("partial", "failed")
    admin.set_faults(error_share=0.0)
    store = env.store()
    now = datetime.now(UTC)
    Escalation(store, env.loaded_config(), [], "郑州市审计局").observe(now, gather_facts(store, now.date(),
                                                                               env.loaded_config().escalation))
    store.close()
    report = json.loads(env.cli("status", "--format", "json").output)
    assert [p["key"] for p in report["escalations"]] == ["run_failed"]
    assert env.cli("ack", "run_failed", "--by", "值班员").exit_code == 0
    assert "acknowledged by 值班员" in env.cli("status").output
    assert env.cli("ack", "no-such-problem").exit_code == 2


def hold_structure(env: Env) -> None:
    text = env.config.read_text(encoding="utf-8").replace('structure_changes = "apply"',
                                                                 'structure_changes = "hold"')
    env.config.write_text(text, encoding="utf-8")


def test_a_scoped_resync_leaves_the_holds_outside_its_scope_waiting(env: Env) -> None:
    hold_structure(env)
    held = env.cycle()
    assert held.outcome == "held"
    assert env.cli("resync", "--employee", "A000002").exit_code in (0, 1, 3)
    store = env.store()
    assert [run_id for run_id, _, _ in store.held_runs()] == [held.run_id]  # still waiting for a decision
    store.close()
    assert env.cycle(trigger="schedule", skip_unchanged=True).outcome == "skipped"
    assert env.cli("approve", held.run_id or "").exit_code == 0  # the decision is still there to make


def test_changes_that_waited_on_an_approved_hold_are_not_overdue_once_applied(env: Env) -> None:
    hold_structure(env)
    held = env.cycle()
    assert env.cli("approve", held.run_id or "").exit_code == 0
    assert env.cycle().outcome == "success"
    store = env.store()
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


def test_a_cycle_lets_the_collectors_young_generation_grow_and_restores_it_after(env: Env) -> None:
    config = env.loaded_config()
    store = env.store()
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

"""Escalation up the admin chain, on simulated time: the clock is an argument, the state is a real store.

Runs and journal entries are made with the store's own methods, as a cycle makes them; notices go
to a recording notifier (and, in one test, to a real webhook receiver checking signatures).
"""

from __future__ import annotations

import json
import re
import time as time_module
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.notify.webhook import WebhookNotifier
from connectors.notify.work_notification import WorkNotifier
from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator import SimAdmin
from syncd.config import Config, EscalationConfig
from syncd.domain.escalation import (
    Escalation,
    Facts,
    HeldRun,
    HoldFigures,
    HoldLimits,
    OverdueChange,
    findings,
    gather_facts,
    open_counts,
    problems_json,
)
from syncd.domain.model import Change, ChangeKind, LinkedDepartment, LinkedPerson, LinkState, Plan
from syncd.domain.target import TargetError
from syncd.domain.workdays import add_workdays
from syncd.engine.apply import Applier, ApplySettings
from syncd.reporting.notice import Delivery, Notice, NoticeError, Recipient
from syncd.state.admin import backup, restore
from syncd.state.problems import FailedEntry
from syncd.state.store import StateStore, aware
from tests.notify.conftest import WebhookServer, webhook_server  # noqa: F401  (the fixture)
from tests.test_sql_source import PG_URL
from tests.zzd.conftest import admin, client, connect, server, tenant  # noqa: F401  (the simulator fixtures)

CST = ZoneInfo("Asia/Shanghai")
UNIT = "郑州市审计局"
LEVEL_1 = (Recipient("管理员甲", account_id=9001),)
LEVEL_2 = (Recipient("市局管理员", account_id=9101),)
FAR = date(2026, 12, 31)  # a due date no test reaches, for runs that are not about deadlines


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A moment in Zhengzhou."""
    return datetime(year, month, day, hour, minute, tzinfo=CST)


class Recorder:
    """A notifier that keeps every notice it is given; while `down` it refuses them."""

    def __init__(self, channel: str = "work_notification") -> None:
        self.channel = channel
        self.down = False
        self.tried: list[str] = []
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.tried.append(notice.id)
        if self.down:
            raise NoticeError(self.channel, "gateway down")
        self.sent.append(notice)

    def take(self) -> list[tuple[int, str, str]]:
        """(level, kind, state) of what was sent since the last take."""
        sent, self.sent = self.sent, []
        self.last = sent
        return [(n.level, n.kind, n.state) for n in sent]


def make_config(tmp_path: Path, **escalation: Any) -> Config:
    return Config.model_validate({
        "unit": {"name": UNIT, "root_department": "D0001", "root_organization_code": "GO_0123abcd"},
        "source": {"kind": "csv", "people": str(tmp_path / "people.csv"),
                   "departments": str(tmp_path / "departments.csv")},
        "target": {"base_url": "http://127.0.0.1:1", "app_key": "k", "app_secret": "s", "tenant_id": 196729},
        "escalation": {"unit_admins": [{"name": "管理员甲", "account_id": 9001}],
                       "higher_admins": [{"name": "市局管理员", "account_id": 9101}], **escalation},
    })


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield state
    finally:
        state.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, reminder_every="4h", failed_runs_before_escalation=3, escalate_after="1d",
                       hold_escalate_after="1d")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def record_run(store: StateStore, outcome: str, failed: Sequence[str] = (), done: Sequence[str] = (),
               category: str = "invalid", detected: datetime | None = None, due: date = FAR,
               counts: dict[str, int] | None = None, message: str = "invalid SIM-PARAM-INVALID") -> str:
    """A finished whole-unit run whose joins of `failed` did not land (refused as invalid) and of `done` did."""
    run = store.start_run("schedule", "incremental", dry_run=False)
    changes = [Change(ChangeKind.JOIN, subject, {}, department="D0002") for subject in (*failed, *done)]
    entries = store.journal_plan(run, changes, (detected or at(2026, 9, 1)).astimezone(UTC), due)
    for (entry, _), change in zip(entries, changes, strict=True):
        if change.subject in failed:
            store.mark_failed(entry, category, message)
        else:
            store.mark_done(entry)
    store.finish_run(run, outcome, counts or {})
    return run


def record_held_run(store: StateStore, subject: str = "A000009") -> str:
    """A run whose deactivation the guard held for a decision."""
    run = store.start_run("schedule", "incremental", dry_run=False)
    [(entry, _)] = store.journal_plan(run, [Change(ChangeKind.LEAVE, subject)], at(2026, 10, 12), FAR)
    store.mark_failed(entry, "mass_deactivation", "over safety.max_deactivations", state="held")
    store.finish_run(run, "held", {"held": 1})
    return run


def observe(escalation: Escalation, store: StateStore, config: Config, now: datetime) -> list[Delivery]:
    """What the daemon does after each cycle."""
    return escalation.observe(now, gather_facts(store, now.astimezone(CST).date(), config.escalation))


def engine(store: StateStore, config: Config, recorder: Recorder) -> Escalation:
    """A new engine on the store, as after a daemon restart."""
    return Escalation(store, config, [recorder], UNIT)


# -- deadlines -----------------------------------------------------------------------------------


def test_a_change_detected_before_national_day_is_due_on_the_third_working_day_after_it() -> None:
    # 2026: Oct 1–7 National Day holiday; Thu 8, Fri 9 and the make-up Saturday 10 are working days.
    assert add_workdays(date(2026, 9, 30), 3) == date(2026, 10, 10)


def test_a_change_not_in_the_directory_at_its_due_time_gives_one_level_2_overdue_notice(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    detected = at(2026, 9, 30, 10)
    due = add_workdays(detected.date(), config.escalation.deadline_workdays, config.escalation.workday_overrides)
    record_run(store, "partial", failed=["A000007"], done=["A000008"], detected=detected, due=due)
    escalation = engine(store, config, recorder)

    for now in (at(2026, 10, 10, 9), at(2026, 10, 10, 23, 59)):  # due today: not overdue yet
        observe(escalation, store, config, now)
    assert all(n.kind != "overdue" for n in recorder.sent)
    observe(escalation, store, config, at(2026, 10, 11, 0, 5))
    observe(escalation, store, config, at(2026, 10, 11, 2))
    observe(engine(store, config, recorder), store, config, at(2026, 10, 11, 3))  # a restart

    overdue = [n for n in recorder.sent if n.kind == "overdue"]
    assert [(n.level, n.state) for n in overdue] == [(1, "open"), (2, "open")]
    notice = overdue[1]
    assert notice.key == "overdue:2026-10-10"
    assert notice.subjects == ("A000007",)
    assert notice.recipients == LEVEL_2
    assert "A000007" in notice.text and "A000008" not in notice.text
    assert "（人事变更发现于 2026-09-30 10:00，截止 2026-10-10）" in notice.text
    assert "开始：2026-09-30 10:00" in notice.text  # when HR changed, not when it became overdue
    assert "可能有误" not in notice.text  # 2026 is a year the calendar knows


def test_on_a_utc_host_a_monday_morning_change_in_beijing_is_due_on_thursday_not_wednesday(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time_module.tzset()
    try:
        monday_7 = datetime(2026, 12, 7, 7, 0, tzinfo=CST)  # Sunday 23:00 on the host's clock
        assert monday_7.astimezone().date() == date(2026, 12, 6)  # the host's zone really is UTC
        settings = ApplySettings("D0001", "GO_root", timezone="Asia/Shanghai", clock=lambda: monday_7)
        run = store.start_run("schedule", "incremental", dry_run=False)
        Applier(cast(Any, RefusingTarget()), store, LinkState(), settings).apply(
            run, Plan([Change(ChangeKind.JOIN, "A000007", {"mobile": "13800000007"}, department="D0001")]))
        store.finish_run(run, "partial", {})
        [entry] = store.overdue(date(2027, 1, 1))
        assert entry.due_at == date(2026, 12, 10)  # Mon 7 → Tue, Wed, Thu: three working days
        assert not store.overdue(date(2026, 12, 10))  # not overdue on its due day
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()


class RefusingTarget:
    """A directory that is down: every write fails, so the change stays open past its due date."""

    def create_person(self, fields: dict[str, str], org_code: str) -> None:
        raise TransientTargetError("down")


class TransientTargetError(TargetError):
    category = "unavailable"


def test_one_override_date_does_not_make_a_year_known_only_a_complete_list_does(
        store: StateStore, tmp_path: Path, recorder: Recorder) -> None:
    one = make_config(tmp_path, workday_overrides={"2027-01-01": False})
    assert gather_facts(store, date(2027, 2, 8), one.escalation).uncovered_years == (2027,)
    complete = make_config(tmp_path, workday_overrides={"2027-01-01": False}, workday_overrides_complete=[2027])
    assert gather_facts(store, date(2027, 2, 8), complete.escalation).uncovered_years == ()

    # A change detected in 2027 with one override: its overdue notice says the date may be wrong.
    detected = at(2027, 2, 8, 10)
    due = add_workdays(detected.date(), 3, one.escalation.workday_overrides)
    record_run(store, "partial", failed=["A000007"], detected=detected, due=due)
    engine(store, one, recorder).observe(at(2027, 2, 15), gather_facts(store, date(2027, 2, 15), one.escalation))
    [overdue] = [n for n in recorder.sent if n.kind == "overdue" and n.level == 2]
    assert f"截止 {due.isoformat()}" in overdue.text and "人事变更发现于 2027-02-08 10:00" in overdue.text
    assert "工作日历未知的年份" in overdue.text
    assert [n.key for n in recorder.sent if n.kind == "calendar"] == ["calendar:2027"]


def test_a_change_done_before_its_due_time_is_never_overdue(store: StateStore, config: Config,
                                                            recorder: Recorder) -> None:
    record_run(store, "success", done=["A000007"], detected=at(2026, 9, 30), due=date(2026, 10, 10))
    observe(engine(store, config, recorder), store, config, at(2026, 10, 20))
    assert recorder.take() == []


# -- a failing gateway ---------------------------------------------------------------------------


def test_a_failing_gateway_is_told_once_reminded_escalated_and_resolved_without_repeats_across_restarts(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    record_run(store, "partial", failed=["A000001", "A000002"], done=["A000003"])
    observe(engine(store, config, recorder), store, config, t0)
    assert recorder.take() == [(1, "run_failed", "open")]
    opened = recorder.last[0]
    assert opened.title == f"【郑政钉同步·{UNIT}】同步失败"
    assert opened.recipients == LEVEL_1
    assert opened.text.startswith(f"{UNIT}：同步部分失败")
    assert "开始：2026-10-12 09:00" in opened.text
    assert "2 项变更未写入通讯录：人员 A000001、A000002" in opened.text

    observe(engine(store, config, recorder), store, config, t0 + timedelta(minutes=10))  # restarted
    record_run(store, "partial", failed=["A000001", "A000002"])
    escalation = engine(store, config, recorder)
    observe(escalation, store, config, t0 + timedelta(hours=1))
    observe(escalation, store, config, t0 + timedelta(hours=3, minutes=59))
    assert recorder.take() == []

    observe(escalation, store, config, t0 + timedelta(hours=4))
    assert recorder.take() == [(1, "run_failed", "reminder")]
    reminder = recorder.last[0]
    assert reminder.text != opened.text and "已持续4小时" in reminder.text
    assert "syncd ack run_failed" in reminder.text

    record_run(store, "partial", failed=["A000001", "A000002"])  # the third failed run in a row
    observe(escalation, store, config, t0 + timedelta(hours=5))
    assert recorder.take() == [(2, "run_failed", "open")]
    escalated = recorder.last[0]
    assert escalated.recipients == LEVEL_2
    assert "同步已连续失败 3 次" in escalated.text and escalated.title == f"【郑政钉同步·{UNIT}】上报：同步失败"

    observe(engine(store, config, recorder), store, config, t0 + timedelta(hours=5, minutes=1))  # restarted
    assert recorder.take() == []
    observe(escalation, store, config, t0 + timedelta(hours=8))
    assert recorder.take() == [(1, "run_failed", "reminder")]  # level 2 is reminded at most daily
    observe(escalation, store, config, t0 + timedelta(hours=9))
    assert recorder.take() == []  # 18:00: reminders wait for working hours

    record_run(store, "success", done=["A000001", "A000002"])
    observe(escalation, store, config, t0 + timedelta(hours=10))
    assert recorder.take() == [(1, "run_failed", "resolved"), (2, "run_failed", "resolved")]
    assert "持续10小时" in recorder.last[0].text
    observe(engine(store, config, recorder), store, config, t0 + timedelta(hours=11))
    observe(engine(store, config, recorder), store, config, t0 + timedelta(days=3))
    assert recorder.take() == []
    assert open_counts(store) == {}


def test_a_four_day_outage_is_one_problem_reminded_in_working_hours_and_to_level_2_at_most_daily(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    # Thursday 09:00 to Monday 09:00, a cycle every half hour; runs alternate partial and quarantined.
    start = at(2026, 10, 15, 9)
    escalation = engine(store, config, recorder)
    per_day: dict[tuple[int, str, date], int] = {}
    sent_at: list[tuple[datetime, str]] = []
    for step in range(4 * 48 + 1):
        now = start + timedelta(minutes=30 * step)
        if step == 4 * 48:
            record_run(store, "success", done=["A000001"])
        elif step % 2:
            record_run(store, "failed", failed=["A000001"], category="unavailable")  # stopped by the quarantine
        else:
            record_run(store, "partial", failed=["A000001"], category="unavailable")
        observe(escalation, store, config, now)
        for level, kind, state in recorder.take():
            assert kind in ("run_failed", "quarantined")
            kind_of = "resolved" if state == "resolved" else "told"
            key = (level, kind_of, now.date())
            per_day[key] = per_day.get(key, 0) + 1
            sent_at.append((now, state))
    thursday, friday, monday = date(2026, 10, 15), date(2026, 10, 16), date(2026, 10, 19)
    assert per_day == {
        (1, "told", thursday): 3, (2, "told", thursday): 1,  # opened 09:00, reminded 13:00, 17:00; up at 10:00
        (1, "told", friday): 3, (2, "told", friday): 1,  # 09:00, 13:00, 17:00; level 2 once, at 10:00
        (1, "resolved", monday): 1, (2, "resolved", monday): 1,  # nothing over the weekend
    }
    assert all(time(9) <= moment.time() < time(18) for moment, state in sent_at if state == "reminder")
    problems = problems_json(store)
    assert problems["open"] == [] and [p["key"] for p in problems["resolved"]] == ["run_failed"]


def test_a_missing_calendar_year_is_recalled_weekly_at_most(store: StateStore, config: Config,
                                                           recorder: Recorder) -> None:
    escalation = engine(store, config, recorder)
    for day in range(15):
        now = at(2031, 3, 3, 10) + timedelta(days=day)
        escalation.observe(now, gather_facts(store, now.date(), config.escalation))
    reminders = [n for n in recorder.sent if n.state == "reminder"]
    assert [n.kind for n in recorder.sent if n.state == "open"] == ["calendar", "calendar"]  # level 1, then 2
    assert len([n for n in reminders if n.level == 1]) == 2  # weeks 2 and 3, not every day


def test_any_level_1_problem_open_past_escalate_after_reaches_level_2(store: StateStore, config: Config,
                                                                       recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    record_run(store, "partial", failed=["A000001"])
    escalation = engine(store, config, recorder)
    observe(escalation, store, config, t0)
    observe(escalation, store, config, t0 + timedelta(hours=23, minutes=59))
    assert (2, "run_failed", "open") not in recorder.take()
    observe(escalation, store, config, t0 + timedelta(days=1))
    assert recorder.take() == [(2, "run_failed", "open"), (1, "run_failed", "reminder")]
    assert "已持续1天" in recorder.last[0].text


def test_a_problem_that_comes_back_is_a_new_problem_with_new_notice_ids(store: StateStore, config: Config,
                                                                         recorder: Recorder) -> None:
    escalation = engine(store, config, recorder)
    record_run(store, "partial", failed=["A000001"])
    observe(escalation, store, config, at(2026, 10, 12, 9))
    record_run(store, "success", done=["A000001"])
    observe(escalation, store, config, at(2026, 10, 12, 10))
    record_run(store, "partial", failed=["A000002"])
    observe(escalation, store, config, at(2026, 10, 12, 11))
    assert recorder.take() == [(1, "run_failed", "open"), (1, "run_failed", "resolved"), (1, "run_failed", "open")]
    assert len({n.id for n in recorder.last}) == 3  # receivers drop repeats by id: the second opening is not one


def test_an_auth_failure_reaches_level_2_at_once(store: StateStore, config: Config, recorder: Recorder) -> None:
    record_run(store, "failed", failed=["A000001"], category="auth")
    observe(engine(store, config, recorder), store, config, at(2026, 10, 12, 9))
    assert recorder.take() == [(1, "auth_failed", "open"), (2, "auth_failed", "open")]
    assert "target.app_key" in recorder.last[1].text
    assert "持续" not in recorder.last[1].text  # told at once as what happened: no "lasted 0 minutes"
    assert open_counts(store) == {(2, "auth_failed"): 1}


def test_one_refused_signature_among_accepted_calls_is_a_run_failure_not_the_auth_alarm(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    record_run(store, "failed", failed=["A000001"], done=["A000002"], category="auth",
               message="auth NonceReused on /mozi/employee/updateGovEmployee", counts={"join.done": 1})
    facts = gather_facts(store, date(2026, 10, 12), config.escalation)
    assert not facts.auth_failed and not facts.quarantined and facts.failing
    engine(store, config, recorder).observe(at(2026, 10, 12, 9), facts)
    assert recorder.take() == [(1, "run_failed", "open")]


def test_a_scope_refusal_of_the_units_own_node_is_the_apps_auth_alarm_and_of_another_units_one_records(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    own = "scope 300037 on /mozi/employee/updateGovEmployee: 没有[GO_0123abcd]组织的操作权限"
    record_run(store, "partial", failed=["A000001", "A000002"], category="scope", message=own)
    facts = gather_facts(store, date(2026, 10, 12), config.escalation, root_organization_code="GO_0123abcd")
    assert facts.auth_failed and facts.refused == ()
    engine(store, config, recorder).observe(at(2026, 10, 12, 9), facts)
    assert recorder.take() == [(1, "auth_failed", "open"), (2, "auth_failed", "open")]

    other = "scope 300037 on /mozi/employee/moveEmployeePosition: 没有[GO_ffff]组织的操作权限"
    record_run(store, "partial", failed=["A000003"], done=["A000001", "A000002"], category="scope", message=other)
    facts = gather_facts(store, date(2026, 10, 12), config.escalation, root_organization_code="GO_0123abcd")
    assert not facts.auth_failed and not facts.failing and [e.subject for e in facts.refused] == ["A000003"]
    engine(store, config, recorder).observe(at(2026, 10, 12, 10), facts)
    assert recorder.take() == [(1, "refused", "open"), (1, "auth_failed", "resolved"), (2, "auth_failed", "resolved")]


def test_a_quarantined_run_is_one_quarantine_notice_not_a_failure_notice_too(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    # A run the applier stopped by quarantine is recorded "failed" with its unattempted changes.
    run = store.start_run("schedule", "incremental", dry_run=False)
    subjects = [f"A{n:06d}" for n in range(1, 13)]
    entries = store.journal_plan(run, [Change(ChangeKind.JOIN, s, {}, department="D0002") for s in subjects],
                                 at(2026, 10, 12), FAR)
    for index, (entry, _) in enumerate(entries):
        if index < 10:
            store.mark_failed(entry, "unavailable", "HTTP 500")
        else:
            store.mark_failed(entry, "stopped", "not attempted: quarantine: 10 of 10 writes failed")
    store.finish_run(run, "failed", {"join.failed": 12})

    observe(engine(store, config, recorder), store, config, at(2026, 10, 12, 9))
    assert recorder.take() == [(1, "quarantined", "open")]
    assert "人员 A000001、A000002" in recorder.last[0].text and "12 项变更未写入通讯录" in recorder.last[0].text


# -- holds and acknowledgement -------------------------------------------------------------------


def test_a_hold_names_the_command_and_ack_stops_reminders_but_not_the_deadline_escalation(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    run = record_held_run(store)
    escalation = engine(store, config, recorder)
    observe(escalation, store, config, t0)
    assert recorder.take() == [(1, "held", "open")]
    assert f"请核对后运行 syncd approve {run} 或 syncd reject {run}；" in recorder.last[0].text
    assert recorder.last[0].key == "held"

    assert escalation.acknowledge("held", "管理员甲", t0 + timedelta(hours=1))
    assert not escalation.acknowledge("held:nosuchrun", "管理员甲", t0 + timedelta(hours=1))
    for hours in (4, 8, 16, 23):
        observe(engine(store, config, recorder), store, config, t0 + timedelta(hours=hours))
    assert recorder.take() == []  # acknowledged: no reminders

    observe(escalation, store, config, t0 + timedelta(days=1))
    assert recorder.take() == [(2, "held", "open")]  # the deadline still escalates
    observe(escalation, store, config, t0 + timedelta(days=1, hours=8))
    assert recorder.take() == []

    assert store.decide(run, approve=False) == 1
    observe(escalation, store, config, t0 + timedelta(days=1, hours=9))
    assert recorder.take() == [(1, "held", "resolved"), (2, "held", "resolved")]
    [problem] = problems_json(store)["resolved"]
    assert problem["acknowledged_by"] == "管理员甲" and problem["level"] == 2
    assert problem["escalated_at"] == "2026-10-13T01:00:00+00:00"  # t0 + 1 day, in UTC as stored


def test_notices_link_the_console_beside_each_command_and_name_whom_level_2_should_call(
        store: StateStore, tmp_path: Path, recorder: Recorder) -> None:
    config = make_config(tmp_path, unit_admins=[{"name": "管理员甲", "account_id": 9001, "contact": "0371-6000001"}])
    config = config.model_copy(update={"api": config.api.model_copy(
        update={"public_url": "https://syncd.example.gov.cn/"})})
    t0 = at(2026, 10, 12, 9)
    run = record_held_run(store)
    escalation = engine(store, config, recorder)
    for hours in (0, 4, 24, 48):
        observe(escalation, store, config, t0 + timedelta(hours=hours))
    notices = recorder.sent
    assert all(n.title.startswith(f"【郑政钉同步·{UNIT}】") for n in notices)
    opened = next(n for n in notices if (n.level, n.state) == (1, "open"))
    assert (f"syncd approve {run} 或 syncd reject {run}（控制台：https://syncd.example.gov.cn/held/{run}/approve）"
            in opened.text)
    reminder = next(n for n in notices if (n.level, n.state) == (1, "reminder"))
    assert "可运行 syncd ack held 停止提醒（控制台：https://syncd.example.gov.cn/）。" in reminder.text
    level_2 = [n for n in notices if n.level == 2]
    assert [n.state for n in level_2] == ["open", "reminder"]
    assert all(n.text.endswith("本单位联系人：管理员甲（0371-6000001）") for n in level_2)
    assert "syncd ack" not in level_2[1].text and "请督促本单位处理" in level_2[1].text


# -- records and the calendar --------------------------------------------------------------------


def test_rejected_and_incomplete_records_are_one_digest_a_day_not_one_a_cycle(store: StateStore, tmp_path: Path,
                                                                             recorder: Recorder) -> None:
    config = make_config(tmp_path, reminder_every="1h", escalate_after="7d")
    t0 = at(2026, 10, 12, 9)
    escalation = engine(store, config, recorder)
    for minutes in range(0, 30 * 60, 30):  # a cycle every half hour for thirty hours
        record_run(store, "success", counts={"rejected": 2, "incomplete_people": 3})
        observe(escalation, store, config, t0 + timedelta(minutes=minutes))
    assert recorder.take() == [(1, "records", "open"), (1, "records", "reminder")]
    assert "2 条记录被拒绝、3 人信息不完整" in recorder.last[0].text
    assert "syncd report completeness" in recorder.last[0].text

    record_run(store, "success", counts={"rejected": 0, "incomplete_people": 0})
    observe(escalation, store, config, t0 + timedelta(hours=31))
    assert recorder.take() == [(1, "records", "resolved")]


def test_a_year_the_calendar_does_not_know_is_a_level_1_calendar_notice(store: StateStore, config: Config,
                                                                        recorder: Recorder, tmp_path: Path) -> None:
    assert gather_facts(store, date(2026, 6, 1), config.escalation).uncovered_years == ()
    facts = gather_facts(store, date(2031, 3, 3), config.escalation)
    assert facts.uncovered_years == (2031,)
    engine(store, config, recorder).observe(at(2031, 3, 3), facts)
    assert recorder.take() == [(1, "calendar", "open")]
    notice = recorder.last[0]
    assert notice.key == "calendar:2031" and "2031 年" in notice.text and "workday_overrides" in notice.text

    covered = make_config(tmp_path, workday_overrides={"2031-10-08": False}, workday_overrides_complete=[2031])
    assert gather_facts(store, date(2031, 3, 3), covered.escalation).uncovered_years == ()


def test_at_the_end_of_a_year_the_next_years_calendar_matters(store: StateStore, config: Config) -> None:
    # A change detected on Wednesday 2026-12-30 is due in 2027, which the calendar does not know yet.
    assert gather_facts(store, date(2026, 12, 30), config.escalation).uncovered_years == (2027,)


# -- delivery ------------------------------------------------------------------------------------


def test_a_notice_no_channel_delivered_is_tried_again_later_under_the_same_id(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    record_run(store, "partial", failed=["A000001"])
    recorder.down = True
    escalation = engine(store, config, recorder)
    assert observe(escalation, store, config, t0) == [Delivery("work_notification", False, "gateway down")]
    assert observe(escalation, store, config, t0 + timedelta(minutes=5)) == []  # not every cycle
    recorder.down = False
    assert observe(escalation, store, config, t0 + timedelta(minutes=10)) == [Delivery("work_notification", True)]
    assert len(set(recorder.tried)) == 1 and len(recorder.tried) == 2
    [problem] = problems_json(store)["open"]
    assert [(n["channel"], n["ok"], n["state"]) for n in problem["notices"]] == [
        ("work_notification", False, "open"), ("work_notification", True, "open")]


def test_after_a_state_restore_a_new_problem_is_still_delivered_by_work_notification(
        tmp_path: Path, config: Config, client: ContactsClient, admin: SimAdmin) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'restored.db'}"
    StateStore(url).close()
    backup(url, tmp_path / "backup.db")  # before any problem: the restored state will hand out its row ids again
    notifier = WorkNotifier(client)
    store = StateStore(url)
    escalation = Escalation(store, config, [notifier], UNIT)
    record_run(store, "partial", failed=["A000001"])
    observe(escalation, store, config, at(2026, 10, 12, 9))
    record_run(store, "success", done=["A000001"])
    observe(escalation, store, config, at(2026, 10, 12, 10))
    store.close()
    assert len(admin.notifications()) == 2  # opened and resolved

    restore(url, tmp_path / "backup.db")
    store = StateStore(url)
    try:
        escalation = Escalation(store, config, [notifier], UNIT)
        record_run(store, "partial", failed=["A000002"])  # the same kind of problem, in the same (first) row
        deliveries = observe(escalation, store, config, at(2026, 10, 13, 9))
    finally:
        store.close()
    assert deliveries == [Delivery("work_notification", True)]
    delivered = admin.notifications()
    assert len(delivered) == 3 and len({n["bizMsgId"] for n in delivered}) == 3
    assert "A000002" in json.loads(str(delivered[-1]["msg"]))["text"]["content"]


def test_notices_fall_back_to_a_real_webhook_signed_with_the_contract_body(
        store: StateStore, tmp_path: Path, webhook_server: WebhookServer) -> None:  # noqa: F811
    config = make_config(tmp_path, channels=["work_notification", "webhook"],
                         webhook={"url": webhook_server.url, "secret_file": str(webhook_server.secret_file)})
    down = Recorder()
    down.down = True
    webhook = WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5)
    escalation = Escalation(store, config, [down, webhook], UNIT)
    t0 = at(2026, 10, 12, 9)
    try:
        record_run(store, "partial", failed=["A000001"])
        assert observe(escalation, store, config, t0) == [Delivery("work_notification", False, "gateway down"),
                                                          Delivery("webhook", True)]
        record_run(store, "success", done=["A000001"])
        observe(escalation, store, config, t0 + timedelta(hours=1))
    finally:
        webhook.close()
    assert webhook_server.bad_signatures == 0
    opened, resolved = webhook_server.received
    assert list(opened) == ["id", "unit", "level", "kind", "key", "state", "title", "text", "since", "subjects"]
    assert (opened["unit"], opened["level"], opened["kind"], opened["key"], opened["state"]) == (
        UNIT, 1, "run_failed", "run_failed", "open")
    assert opened["since"] == "2026-10-12T09:00:00+08:00" and opened["subjects"] == ["A000001"]
    assert (resolved["state"], resolved["key"]) == ("resolved", "run_failed") and resolved["id"] != opened["id"]


# -- the Article 11 digest -----------------------------------------------------------------------


def test_the_weekly_digest_lists_transfers_and_departures_by_department_once(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    # The journal stamps entries with the real clock: the digest is due the next Monday 09:00 from now.
    now = datetime.now(CST)
    monday = now.date() + timedelta(days=(1 - now.isoweekday()) % 7)
    moment = datetime.combine(monday, time(9), CST)
    if moment <= now:
        moment += timedelta(days=7)
    run = store.start_run("schedule", "incremental", dry_run=False)
    changes = [Change(ChangeKind.TRANSFER, "A000003", department="D0002", from_department="D0003"),
               Change(ChangeKind.LEAVE, "A000004"), Change(ChangeKind.TRANSFER_OUT, "A000005"),
               Change(ChangeKind.UPDATE, "A000001", {"post": "主任"}, department="D0002")]
    entries = store.journal_plan(run, changes, now, FAR)
    store.mark_done(entries[0][0], department=("D0003", LinkedDepartment("GO_3", "D0001", {"name": "财政审计处"})))
    store.mark_done(entries[1][0], person=("A000004", LinkedPerson("GE_4", 4, "D0003", "GO_3", {}, "inactive")))
    store.mark_done(entries[2][0], person=("A000005", LinkedPerson("GE_5", 5, "D0005", "GO_5", {}, "inactive")))
    store.mark_done(entries[3][0])
    store.finish_run(run, "success", {})
    escalation = engine(store, config, recorder)

    assert escalation.weekly_digest(moment - timedelta(minutes=1)) == []  # last week's: nobody moved then
    assert escalation.weekly_digest(moment + timedelta(hours=1)) == [Delivery("work_notification", True)]
    assert escalation.weekly_digest(moment + timedelta(hours=2)) == []
    assert engine(store, config, recorder).weekly_digest(moment + timedelta(days=2)) == []  # restarted
    assert recorder.take() == [(1, "digest", "open")]
    digest = recorder.last[0]
    assert digest.title == f"【郑政钉同步·{UNIT}】近一周人员调动和离职" and digest.recipients == LEVEL_1
    assert f"{(moment - timedelta(days=7)):%Y-%m-%d %H:%M} 至 {moment:%Y-%m-%d %H:%M}" in digest.text
    assert "部门 D0003（财政审计处）：调出 A000003（至 D0002）；离职 A000004" in digest.text
    assert "部门 D0005：调离本单位 A000005" in digest.text
    assert "A000001" not in digest.text and "共 3 人" in digest.text
    assert digest.text.splitlines()[1:] == ["部门 D0003（财政审计处）：调出 A000003（至 D0002）；离职 A000004",
                                          "部门 D0005：调离本单位 A000005"]
    assert escalation.open_problems() == []  # a digest is not a problem left open


# -- configuration and views ---------------------------------------------------------------------


def test_escalation_durations_are_validated_and_read_as_timedeltas() -> None:
    escalation = EscalationConfig()
    assert escalation.duration("escalate_after") == timedelta(days=1)
    assert escalation.duration("reminder_every") == timedelta(hours=4)
    assert (escalation.digest_weekday, escalation.digest_at) == (1, "09:00")
    for bad in ({"reminder_every": "0h"}, {"escalate_after": "2w"}, {"digest_weekday": 0}, {"digest_at": "9:00"}):
        with pytest.raises(ValidationError):
            EscalationConfig.model_validate(bad)


def test_problems_json_shows_ids_counts_and_every_attempt(store: StateStore, config: Config,
                                                          recorder: Recorder) -> None:
    record_run(store, "partial", failed=["A000001"])
    escalation = engine(store, config, recorder)
    escalation.observe(at(2026, 10, 12, 9), gather_facts(store, date(2026, 10, 12), config.escalation))
    [problem] = escalation.problems_json()["open"]
    assert problem["kind"] == "run_failed" and problem["key"] == "run_failed" and problem["level"] == 1
    assert problem["subjects"] == ["A000001"] and problem["opened_at"] == "2026-10-12T01:00:00+00:00"
    assert [n["state"] for n in problem["notices"]] == ["open"]
    assert [p.key for p in escalation.open_problems()] == ["run_failed"]
    assert escalation.open_counts() == {(1, "run_failed"): 1}


def test_a_cycle_the_gateway_refused_before_it_recorded_a_run_is_the_auth_alarm(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    record_run(store, "success", done=["A000001"])
    facts = gather_facts(store, date(2026, 10, 12), config.escalation, cycle_error="AuthError")
    engine(store, config, recorder).observe(at(2026, 10, 12, 9), facts)
    assert recorder.take() == [(1, "auth_failed", "open"), (2, "auth_failed", "open")]


def test_a_cycle_that_recorded_no_run_is_a_failure_too(store: StateStore, config: Config,
                                                       recorder: Recorder) -> None:
    facts = gather_facts(store, date(2026, 10, 12), config.escalation, cycle_error="SourceError")
    assert isinstance(facts, Facts) and facts.failing
    engine(store, config, recorder).observe(at(2026, 10, 12, 9), facts)
    assert recorder.take() == [(1, "run_failed", "open")]
    assert "本次同步未能运行（错误类型：SourceError）" in recorder.last[0].text


# -- the exact wording ---------------------------------------------------------------------------

SINCE = "2026-10-12 09:00"
RUN_FAILED_ACTION = "处理：请运行 syncd status 查看失败原因并排除（网关、网络或数据）；下一次同步会自动重试。"


def opened_notices(facts: Facts) -> dict[str, tuple[str, str]]:
    """Each problem the facts show, by key: the open notice's (title, text), opened at SINCE."""
    return {key: (finding.title, finding.text(SINCE))
            for key, finding in findings(facts, UNIT, 3, (), limits=HoldLimits(2, 0.05)).items()}


def test_each_kind_of_problem_opens_with_its_exact_title_and_text() -> None:
    people = [f"A{n:06d}" for n in range(1, 22)]
    overdue = (*(OverdueChange("join", p, date(2026, 10, 9), "failed", "R1") for p in people),
               OverdueChange("dept_create", "D0010", date(2026, 10, 9), "held", "R1"))
    facts = Facts(today=date(2026, 10, 12), run_id="R2", outcome="partial", failed_in_a_row=2,
                  failed=(FailedEntry("join", "A000001", "invalid", "SIM-PARAM-INVALID"),
                          FailedEntry("dept_update", "D0009", "unavailable", "HTTP 500"),
                          FailedEntry("update", "A000001", "unavailable", "HTTP 500")),
                  rejected=2, incomplete=3, held=(HeldRun("R1", at(2026, 10, 12), 4, (
                      *(FailedEntry("leave", f"A00001{n}", "mass_deactivation", "") for n in (1, 2, 3)),
                      FailedEntry("dept_create", "D0020", "structure", ""))),), overdue=overdue,
                  uncovered_years=(2031,))
    assert opened_notices(facts) == {
        "run_failed": (f"【郑政钉同步·{UNIT}】同步失败",
                       f"{UNIT}：同步部分失败（运行 R2，已连续失败 2 次）。\n开始：{SINCE}\n"
                       f"影响：3 项变更未写入通讯录：人员 A000001；部门 D0009\n{RUN_FAILED_ACTION}"),
        "held": (f"【郑政钉同步·{UNIT}】同步待审批",
                 f"{UNIT}：运行 R1 的变更被安全策略暂缓，等待审批：3 项停用（离职、退休、调离）超过批量停用上限"
                 "（一次停用超过 2 人或超过在用人数的 5% 即暂缓）；1 项部门结构变更按 "
                 f"safety.structure_changes = \"hold\" 须经审批。\n开始：{SINCE}\n"
                 "影响：4 项变更暂未写入通讯录：人员 A000011、A000012、A000013；部门 D0020。\n"
                 "处理：请核对后运行 syncd approve R1 或 syncd reject R1；暂缓期间新增的变更会并入同一次审批，"
                 "只需审批最新一次运行。"),
        "records": (f"【郑政钉同步·{UNIT}】人事数据待修正",
                    f"{UNIT}：人事数据中有 2 条记录被拒绝、3 人信息不完整。\n开始：{SINCE}\n"
                    "影响：被拒绝的记录未进入通讯录，信息不完整的人员缺少字段。\n"
                    "处理：请运行 syncd report completeness 查看明细，交人事部门修正源数据。"),
        "overdue:2026-10-09": (
            f"【郑政钉同步·{UNIT}】变更逾期未入通讯录",
            f"{UNIT}：22 项变更超过 3 个工作日时限（截止 2026-10-09）仍未进入通讯录。\n开始：{SINCE}\n"
            f"影响：人员 {'、'.join(people[:20])} 等 21 人；部门 D0010\n"
            "处理：请运行 syncd status 查看原因：暂缓的变更请审批（syncd approve/reject），同步失败请排除。"),
        "calendar:2031": (
            f"【郑政钉同步·{UNIT}】工作日历缺少年份",
            f"{UNIT}：工作日历（chinese-calendar）没有 2031 年的法定节假日和调休，截止日期暂按周一至周五计算。\n"
            f"开始：{SINCE}\n影响：2031 年的 3 个工作日时限可能算错。\n"
            "处理：请升级 chinese-calendar，或在 escalation.workday_overrides 中填写 2031 年的节假日和调休。"),
    }

    outage = (FailedEntry("join", "A000001", "unavailable", "HTTP 503"),
              FailedEntry("update", "A000002", "stopped", "not attempted: quarantine"))
    assert opened_notices(Facts(today=date(2026, 10, 12), run_id="R6", outcome="partial", failed=outage)) == {
        "run_failed": (f"【郑政钉同步·{UNIT}】通讯录服务不可用",
                       f"{UNIT}：通讯录服务不可用，变更暂时无法写入（运行 R6）。\n开始：{SINCE}\n"
                       "影响：2 项变更未写入通讯录：人员 A000001、A000002\n"
                       "处理：请检查本机到郑政钉网关的网络，或向平台确认服务状态；恢复后下一次同步会自动补上。")}

    failed = (FailedEntry("join", "A000001", "auth", "HTTP 401"),)
    assert opened_notices(Facts(today=date(2026, 10, 12), run_id="R3", outcome="failed", failed=failed,
                                auth_failed=True)) == {
        "auth_failed": (f"【郑政钉同步·{UNIT}】接口认证失败",
                        f"{UNIT}：网关拒绝了本应用的认证、签名或权限（运行 R3），同步无法写入。\n开始：{SINCE}\n"
                        "影响：1 项变更未写入通讯录：人员 A000001\n"
                        "处理：请检查 target.app_key、应用密钥与服务器时钟，或向平台确认应用的授权范围；"
                        "修复后运行 syncd sync。")}
    assert opened_notices(Facts(today=date(2026, 10, 12), run_id="R4", outcome="failed", failed=failed,
                                quarantined=True)) == {
        "run_failed": (f"【郑政钉同步·{UNIT}】同步熔断中止",
                        f"{UNIT}：写入失败比例过高，同步已自动中止（运行 R4）。\n开始：{SINCE}\n"
                        "影响：1 项变更未写入通讯录：人员 A000001\n"
                        "处理：请运行 syncd status 查看失败原因，检查网关与字段映射；排除后下一次同步会自动继续。")}
    assert opened_notices(Facts(today=date(2026, 10, 12), cycle_error="SourceError")) == {
        "run_failed": (f"【郑政钉同步·{UNIT}】同步失败",
                       f"{UNIT}：同步程序出错，本次同步未能运行（错误类型：SourceError）。\n开始：{SINCE}\n"
                       "处理：请在 syncd 日志中查看 scheduler.job_failed 记录及其前面的错误，"
                       "排除问题（人事数据源、网络或网关）；无法判断原因时请把这段日志交给运维人员。下一次同步会自动重试。")}
    assert opened_notices(Facts(today=date(2026, 10, 12), run_id="R5", outcome="crashed", failed_in_a_row=1)) == {
        "run_failed": (f"【郑政钉同步·{UNIT}】同步失败",
                       f"{UNIT}：同步异常中断（运行 R5）。\n开始：{SINCE}\n{RUN_FAILED_ACTION}")}


# What HR-facing text may hold in Latin letters: the commands to run, and ids (run R1, 工号 A000001).
COMMANDS = re.compile(r"syncd (?:approve|reject|ack|status|sync|report) ?[\w-]*"
                      r"|journalctl -u syncd -g source\.incomplete")


def latin_words(text: str) -> list[str]:
    """The Latin words of a notice besides its commands: what a city admin at 3 a.m. would have to look up."""
    return re.findall(r"[A-Za-z]{2,}", COMMANDS.sub(" ", text))


SOURCE_INCOMPLETE_AFFECTS = "影响：本次同步未处理离职和部门撤销；未读到或读取出错的部分没有写入通讯录。"


@pytest.mark.parametrize(("kind", "what", "action"), [
    ("csv", "人事导出文件不完整或在读取时被改动（运行 R7）：文件被截断、某行字段数与表头不符、引号未闭合，"
            "或读取前后文件大小、修改时间、内容不一致。",
     "请确认人事导出文件已完整复制到本机（复制完成后再放入读取位置），必要时请人事部门重新完整导出；"
     "运行 journalctl -u syncd -g source.incomplete 可查看出错的文件和行号。下一次同步会自动重新读取。"),
    ("xlsx", "人事导出的表格文件不完整或在读取时被改动（运行 R7）：文件损坏或未复制完、表头缺少列，"
             "或读取前后文件大小、修改时间、内容不一致。",
     "请确认人事导出文件已完整复制到本机（复制完成后再放入读取位置），必要时请人事部门重新完整导出；"
     "运行 journalctl -u syncd -g source.incomplete 可查看出错的文件和行号。下一次同步会自动重新读取。"),
    ("ldap", "从人事目录服务器读取人员和部门时中途中断（运行 R7）：连接或登录失败、超出服务器的条数或时间限制、"
             "分页结果不完整，或部分目录存放在其他服务器上。",
     "请检查人事目录服务器是否正常运行、本机能否连接，以及同步账号的密码、查询条数和时间限制；"
     "运行 journalctl -u syncd -g source.incomplete 可查看服务器返回的原因。下一次同步会自动重新读取。"),
    ("sql", "从人事数据库读取人员和部门时中途中断（运行 R7）：连接断开、查询语句出错、事务失败，"
            "或大量记录读取出错。",
     "请检查人事数据库是否正常运行、本机能否连接，以及同步所用账号的权限和查询语句；"
     "运行 journalctl -u syncd -g source.incomplete 可查看出错原因。下一次同步会自动重新读取。"),
], ids=["csv", "xlsx", "ldap", "sql"])
def test_an_incomplete_read_says_what_broke_off_and_what_to_check_for_the_source_kind(
        kind: str, what: str, action: str) -> None:
    facts = Facts(today=date(2026, 10, 12), run_id="R7", outcome="success", source_incomplete=True)
    [(title, text)] = [(f.title, f.text(SINCE)) for f in findings(facts, UNIT, 3, (), source_kind=kind).values()]
    assert title == f"【郑政钉同步·{UNIT}】人事数据读取不完整"
    assert text == f"{UNIT}：{what}\n开始：{SINCE}\n{SOURCE_INCOMPLETE_AFFECTS}\n处理：{action}"
    assert latin_words(text) == []
    if kind in ("ldap", "sql"):
        assert "导出文件" not in text


def test_the_engine_words_an_incomplete_read_by_the_configured_source_kind(store: StateStore, config: Config,
                                                                          recorder: Recorder) -> None:
    sql = config.model_copy(update={"source": config.source.model_copy(update={"kind": "sql"})})
    record_run(store, "success", counts={"source_incomplete": 1})
    observe(engine(store, sql, recorder), store, sql, at(2026, 10, 12, 9))
    assert recorder.take() == [(1, "source_incomplete", "open")]
    assert "从人事数据库读取人员和部门时中途中断" in recorder.last[0].text
    assert "导出文件" not in recorder.last[0].text


HELD_ACTION = ("请核对后运行 syncd approve R1 或 syncd reject R1；暂缓期间新增的变更会并入同一次审批，"
               "只需审批最新一次运行。")
LEAVES = tuple(FailedEntry("leave", f"A0000{n}", "mass_deactivation", "") for n in range(11, 19))


DEFAULT_LIMITS = HoldLimits(50, 0.05, 0.10, 5)


def held_notice(figures: HoldFigures | None, limits: HoldLimits = DEFAULT_LIMITS) -> str:
    """The open text of a hold of eight departures whose run recorded `figures`."""
    facts = Facts(today=date(2026, 10, 12), run_id="R1", outcome="held",
                  held=(HeldRun("R1", at(2026, 10, 12), 8, LEAVES, figures),))
    return findings(facts, UNIT, 3, (), limits=limits)["held"].text(SINCE)


def test_a_hold_by_the_shrink_floor_names_that_rule_with_its_figures_and_to_fix_the_export() -> None:
    text = held_notice(HoldFigures(over_limits=False, active=40, in_post=(40, 32)))
    assert text == (
        f"{UNIT}：运行 R1 的变更被安全策略暂缓，等待审批：8 项停用（离职、退休、调离）因在职人数骤减而暂缓："
        "人事数据中的在职人数由上次完整读取时的 40 人降为 32 人，少了 8 人（20%），"
        "超过骤减下限（减少超过 10% 且多于 5 人即暂缓）。\n"
        f"开始：{SINCE}\n影响：8 项变更暂未写入通讯录：人员 {'、'.join(e.subject for e in LEAVES)}。\n"
        "处理：人数骤减多半是人事数据有误（只导出了部分部门、导错了文件）：请人事部门重新完整导出，"
        f"下一次同步会自动撤销这次暂缓。{HELD_ACTION}")
    assert "批量停用上限" not in text
    assert latin_words(text) == []


def test_a_hold_by_the_deactivation_limits_names_them_with_the_people_in_the_directory_not_the_shrink() -> None:
    text = held_notice(HoldFigures(over_limits=True, active=1000, in_post=None), HoldLimits(5, 0.05, 0.10, 5))
    assert text.splitlines()[0] == (
        f"{UNIT}：运行 R1 的变更被安全策略暂缓，等待审批：8 项停用（离职、退休、调离）超过批量停用上限"
        "（一次停用超过 5 人或超过在用人数（1000 人）的 5% 即暂缓）。")
    assert text.splitlines()[-1] == f"处理：{HELD_ACTION}"
    assert "骤减" not in text
    assert latin_words(text) == []


def test_a_hold_past_both_rules_names_both() -> None:
    text = held_notice(HoldFigures(over_limits=True, active=40, in_post=(40, 20)), HoldLimits(5, 0.125, 0.10, 5))
    assert ("8 项停用（离职、退休、调离）超过批量停用上限（一次停用超过 5 人或超过在用人数（40 人）的 12.5% 即暂缓）；"
            "8 项停用（离职、退休、调离）因在职人数骤减而暂缓：人事数据中的在职人数由上次完整读取时的 40 人降为 20 人，"
            "少了 20 人（50%）") in text
    assert "请人事部门重新完整导出" in text


def test_reminder_escalation_and_resolution_notices_read_exactly(store: StateStore, config: Config,
                                                                 recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    record_run(store, "partial", failed=["A000001"])
    escalation = engine(store, config, recorder)
    observe(escalation, store, config, t0)
    run = record_run(store, "partial", failed=["A000001"])
    observe(escalation, store, config, t0 + timedelta(hours=4, minutes=20))
    observe(escalation, store, config, t0 + timedelta(days=1, hours=2, minutes=30))
    record_run(store, "success", done=["A000001"])
    observe(escalation, store, config, t0 + timedelta(days=1, hours=3))

    body = (f"{UNIT}：同步部分失败（运行 {run}，已连续失败 2 次）。\n开始：2026-10-12 09:00\n"
            f"影响：1 项变更未写入通讯录：人员 A000001\n{RUN_FAILED_ACTION}")
    resolved = (f"已解决：{UNIT}的“同步失败”问题（run_failed）。\n"
                "开始：2026-10-12 09:00，解决：2026-10-13 12:00，持续1天3小时。")
    assert [(n.level, n.state, n.title, n.text) for n in recorder.sent[1:]] == [
        (1, "reminder", f"【郑政钉同步·{UNIT}】提醒：同步失败",
         f"提醒（第 1 次）：以下问题已持续4小时20分钟，仍未解决。\n{body}\n"
         "如已知悉并在处理，可运行 syncd ack run_failed 停止提醒。"),
        (2, "open", f"【郑政钉同步·{UNIT}】上报：同步失败",
         f"上报：{UNIT}的以下问题已持续1天2小时，同步已连续失败 2 次，本单位管理员尚未解决，请督促处理。\n{body}\n"
         "本单位联系人：管理员甲"),
        (1, "reminder", f"【郑政钉同步·{UNIT}】提醒：同步失败",  # level 1 keeps its own pace, level 2 its daily one
         f"提醒（第 2 次）：以下问题已持续1天2小时，仍未解决。\n{body}\n"
         "如已知悉并在处理，可运行 syncd ack run_failed 停止提醒。"),
        (1, "resolved", f"【郑政钉同步·{UNIT}】已恢复：同步失败", resolved),
        (2, "resolved", f"【郑政钉同步·{UNIT}】已恢复：同步失败", resolved),
    ]


@pytest.mark.parametrize(("after", "resolved", "duration"), [
    (timedelta(minutes=45), "09:45", "45分钟"),
    (timedelta(seconds=40), "09:00", "不到1分钟"),  # never "0分钟"
], ids=["minutes", "under-a-minute"])
def test_a_problem_resolved_within_the_hour_reads_its_duration_in_minutes(
        store: StateStore, config: Config, recorder: Recorder, after: timedelta, resolved: str, duration: str) -> None:
    t0 = at(2026, 10, 12, 9)
    escalation = engine(store, config, recorder)
    escalation.observe(t0, gather_facts(store, t0.date(), config.escalation, cycle_error="SourceError"))
    record_run(store, "success")
    observe(escalation, store, config, t0 + after)
    assert recorder.take() == [(1, "run_failed", "open"), (1, "run_failed", "resolved")]
    assert recorder.last[1].text == (f"已解决：{UNIT}的“同步失败”问题（run_failed）。\n"
                                     f"开始：2026-10-12 09:00，解决：2026-10-12 {resolved}，持续{duration}。")


def first_started(store: StateStore, run_id: str) -> datetime:
    """When a recorded run started (the store's clock, not the test's)."""
    run = store.run(run_id)
    assert run is not None
    return aware(run.started_at)


def test_a_streak_first_seen_at_level_2_reads_its_duration_from_the_first_failed_run_not_0_minutes(
        store: StateStore, config: Config, recorder: Recorder) -> None:
    """A daemon (re)started in the middle of a failure streak opens the problem and raises it at once."""
    first = record_run(store, "partial", failed=["A000001"])
    record_run(store, "partial", failed=["A000001"])
    run = record_run(store, "partial", failed=["A000001"])
    now = first_started(store, first) + timedelta(hours=2, minutes=5)
    observe(engine(store, config, recorder), store, config, now)
    assert recorder.take() == [(1, "run_failed", "open"), (2, "run_failed", "open")]
    assert recorder.last[1].text.splitlines()[0] == (
        f"上报：{UNIT}的以下问题已持续2小时5分钟，同步已连续失败 3 次，本单位管理员尚未解决，请督促处理。")
    assert f"（运行 {run}，已连续失败 3 次）" in recorder.last[1].text
    started = first_started(store, first).astimezone(CST).strftime("%Y-%m-%d %H:%M")
    assert f"开始：{started}" in recorder.last[1].text  # the streak's first run, not the moment the problem opened


def test_a_problem_raised_to_level_2_the_moment_it_opens_reads_just_found_not_0_minutes(
        store: StateStore, tmp_path: Path, recorder: Recorder) -> None:
    config = make_config(tmp_path, failed_runs_before_escalation=1)
    run = record_run(store, "partial", failed=["A000001"])
    observe(engine(store, config, recorder), store, config, first_started(store, run) + timedelta(seconds=20))
    assert recorder.take() == [(1, "run_failed", "open"), (2, "run_failed", "open")]
    assert recorder.last[1].text.splitlines()[0] == (
        f"上报：{UNIT}的以下问题刚刚发现，已同时通知本单位管理员，请督促处理。")
    assert "0分钟" not in recorder.last[1].text


def test_the_weekly_digest_reads_exactly_tells_retirement_death_and_departure_apart_and_goes_to_work_group_admins(
        store: StateStore, tmp_path: Path, recorder: Recorder) -> None:
    config = make_config(tmp_path, work_group_admins=[{"name": "工作群管理员", "account_id": 9201}])
    now = datetime.now(CST)
    monday = now.date() + timedelta(days=(1 - now.isoweekday()) % 7)
    moment = datetime.combine(monday, time(9), CST)
    if moment <= now:
        moment += timedelta(days=7)
    run = store.start_run("schedule", "incremental", dry_run=False)
    changes = [Change(ChangeKind.LEAVE, "A000009", reason="死亡"),
               Change(ChangeKind.TRANSFER, "A000003", department="D0002", from_department="D0003"),
               Change(ChangeKind.LEAVE, "A000006", reason="退休"), Change(ChangeKind.LEAVE, "A000007", reason="离职"),
               Change(ChangeKind.TRANSFER_OUT, "A000008", reason="调离")]
    entries = store.journal_plan(run, changes, now.astimezone(UTC), FAR)
    store.mark_done(entries[0][0])  # never linked: the department they left is unknown
    store.mark_done(entries[1][0], department=("D0002", LinkedDepartment("GO_2", "D0001", {"name": "办公室"})))
    for (entry, _), subject in zip(entries[2:], ("A000006", "A000007", "A000008"), strict=True):
        store.mark_done(entry, person=(subject, LinkedPerson(f"GE_{subject}", 6, "D0003", "GO_3", {}, "inactive")))
    store.finish_run(run, "success", {})
    assert engine(store, config, recorder).weekly_digest(moment) == [Delivery("work_notification", True)]
    [digest] = recorder.sent
    assert digest.recipients == (Recipient("工作群管理员", account_id=9201),)
    assert (digest.title, digest.text) == (f"【郑政钉同步·{UNIT}】近一周人员调动和离职", (
        f"{UNIT}：{moment - timedelta(days=7):%Y-%m-%d %H:%M} 至 {moment:%Y-%m-%d %H:%M} 共 5 人"
        "调动、调离、退休、离职或去世，请各工作群管理员据此调整、清理工作群（郑审〔2021〕44号第十一条）。\n"
        "部门 D0003：调出 A000003（至 办公室 D0002）；退休 A000006；离职 A000007；调离本单位 A000008\n"
        "部门不详：死亡 A000009"))


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def pg_store() -> Iterator[StateStore]:
    """A state store in a schema of its own on the test PostgreSQL server, dropped afterwards."""
    schema = f"escalation_{uuid.uuid4().hex[:8]}"
    owner = create_engine(PG_URL)
    with owner.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    state = StateStore(url.render_as_string(hide_password=False))
    try:
        yield state
    finally:
        state.close()
        with owner.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


def test_on_postgresql_a_problem_is_told_once_across_restarts_and_its_key_comes_back_after_it_clears(
        pg_store: StateStore, config: Config, recorder: Recorder) -> None:
    t0 = at(2026, 10, 12, 9)
    record_run(pg_store, "partial", failed=["A000001"])
    for minutes in (0, 1, 2):  # three daemons in turn on one database
        observe(engine(pg_store, config, recorder), pg_store, config, t0 + timedelta(minutes=minutes))
    record_run(pg_store, "success", done=["A000001"])
    observe(engine(pg_store, config, recorder), pg_store, config, t0 + timedelta(hours=1))
    record_run(pg_store, "partial", failed=["A000002"])
    observe(engine(pg_store, config, recorder), pg_store, config, t0 + timedelta(hours=2))
    assert recorder.take() == [(1, "run_failed", "open"), (1, "run_failed", "resolved"), (1, "run_failed", "open")]
    assert open_counts(pg_store) == {(1, "run_failed"): 1}

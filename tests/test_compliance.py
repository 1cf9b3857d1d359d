"""The Article 9 figures from a journal with known detection and completion dates around National Day 2026.

2026: 25 Sep (Mid-Autumn) and 1–7 Oct are holidays, Saturday 10 Oct is a make-up working day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import syncd.state.store as store_module
from syncd.domain.compliance import Rules, change_figures, compliance
from syncd.domain.model import Change, ChangeKind, Department, FieldIssue, Person, PersonStatus, Snapshot
from syncd.domain.workdays import add_workdays, due_date, workdays_taken
from syncd.reporting.report import completeness
from syncd.state.models import ProblemRow
from syncd.state.problems import Problems
from syncd.state.store import StateStore

ZONE = ZoneInfo("Asia/Shanghai")
RULES = Rules(deadline_workdays=3, timezone="Asia/Shanghai")
TODAY = date(2026, 10, 20)
PERIOD = (date(2026, 9, 21), date(2026, 10, 31))


def at(month: int, day: int, hour: int = 10) -> datetime:
    """A time in Zhengzhou."""
    return datetime(2026, month, day, hour, tzinfo=ZONE)


@dataclass
class Clock:
    now: datetime


@dataclass
class Journal:
    """A state whose journal is written through the store's own calls, at the clock's time."""

    store: StateStore
    clock: Clock

    def run(self, when: datetime, changes: list[Change], trigger: str = "schedule") -> tuple[str, list[int]]:
        """A finished whole-unit run at `when` that journaled `changes` as detected then."""
        self.clock.now = when
        run_id = self.store.start_run(trigger, "incremental", dry_run=False)
        planned = self.store.journal_plan(run_id, changes, when, due_date(when, 3, "Asia/Shanghai"))
        self.store.finish_run(run_id, "partial", {})
        return run_id, [entry for entry, _ in planned]

    def done(self, entry: int, when: datetime) -> None:
        self.clock.now = when
        self.store.mark_done(entry)

    def failed(self, entry: int, state: str = "failed") -> None:
        self.store.mark_failed(entry, "max_deactivations" if state == "held" else "unavailable", "-", state=state)


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Journal:
    clock = Clock(at(9, 1))
    monkeypatch.setattr(store_module, "_now", lambda: clock.now.astimezone(UTC))
    return Journal(StateStore(f"sqlite:///{tmp_path / 'state.db'}"), clock)


def change(kind: ChangeKind, subject: str) -> Change:
    return Change(kind, subject)


def build_national_day(journal: Journal) -> None:
    """The journal the figures below are worked out from by hand."""
    _, [j] = journal.run(at(9, 18), [change(ChangeKind.JOIN, "J")])  # before the period
    journal.done(j, at(9, 21))
    _, [c] = journal.run(at(9, 24), [change(ChangeKind.LEAVE, "C")])
    journal.done(c, at(10, 2))  # a holiday after the due date (30 Sep): 28, 29, 30 Sep + the holiday = 4
    _, [d1] = journal.run(at(9, 28), [change(ChangeKind.TRANSFER, "D")])
    journal.failed(d1)
    # D retried: it keeps its detection on 28 Sep; one change, done in 2 working days.
    _, [a, d2, dept, freeze] = journal.run(at(9, 29), [
        change(ChangeKind.JOIN, "A"), change(ChangeKind.TRANSFER, "D"), change(ChangeKind.DEPT_CREATE, "X"),
        change(ChangeKind.FREEZE, "Y")])
    journal.done(d2, at(9, 30, 15))
    journal.done(a, at(10, 10))  # the make-up Saturday: 30 Sep, 8, 9, 10 Oct = 4, a day late
    journal.done(dept, at(10, 16))  # a department's change: never counted
    journal.done(freeze, at(10, 16))  # an operator's freeze: never counted
    _, [b] = journal.run(at(9, 30, 16), [change(ChangeKind.UPDATE, "B")])
    journal.done(b, at(10, 9))  # 8, 9 Oct = 2
    journal.clock.now = at(10, 1)
    onboard = journal.store.start_run("onboard", "full", dry_run=False)
    journal.store.store_confirmed(onboard, [change(ChangeKind.JOIN, "K")], {}, {}, at(10, 1))  # not a change of HR
    # Detected 17:00 UTC on Friday 9 Oct, which is Saturday 10 Oct in Zhengzhou: 12, 13, 14 Oct = 3, on time
    # (counted from the UTC date it would be 4).
    _, [e] = journal.run(datetime(2026, 10, 9, 17, tzinfo=UTC), [change(ChangeKind.JOIN, "E")])
    journal.done(e, at(10, 14))
    _, [g1] = journal.run(at(10, 12), [change(ChangeKind.JOIN, "G")])
    journal.failed(g1)
    rejected_run, [g2, i, r] = journal.run(at(10, 13), [
        change(ChangeKind.JOIN, "G"), change(ChangeKind.UPDATE, "I"), change(ChangeKind.LEAVE, "R")])
    journal.failed(g2)
    journal.failed(i)
    journal.failed(r, state="held")
    assert journal.store.decide(rejected_run, approve=False) == 1  # R rejected: withdrawn
    # The latest run: G still fails (due 15 Oct: overdue), H and the held Q are not due yet; I is no
    # longer planned (HR took it back): withdrawn.
    _, [g3, h, q] = journal.run(at(10, 19), [
        change(ChangeKind.JOIN, "G"), change(ChangeKind.UPDATE, "H"), change(ChangeKind.LEAVE, "Q")])
    journal.failed(g3)
    journal.failed(h)
    journal.failed(q, state="held")


def test_changes_on_time_count_working_days_across_national_day_in_the_units_zone(journal: Journal) -> None:
    build_national_day(journal)
    entries = journal.store.journaled_changes(
        ("join", "leave", "transfer", "update"), at(9, 21), at(11, 1))
    figures = change_figures(entries, TODAY, RULES)
    # A 4, B 2, C 4, D 2, E 3 reached the directory; G overdue; H and Q pending; I and R withdrawn.
    assert figures.changes == 8
    assert sorted(figures.delays) == [2, 2, 3, 4, 4]
    assert figures.on_time == 3
    assert (figures.overdue, figures.pending) == (1, 2)
    assert figures.on_time_share == 0.5  # 3 of the 6 whose outcome is known
    assert figures.median_workdays == 3
    assert figures.max_workdays == 4


def test_the_figures_of_a_period_leave_out_departments_freezes_onboarding_and_other_periods(journal: Journal) -> None:
    build_national_day(journal)
    problems = Problems(journal.store)
    for level, kind in ((1, "records"), (2, "overdue"), (2, "auth_failed")):
        problems.add(ProblemRow(level=level, kind=kind, key=kind, subjects=[], title="-", text="-",
                                opened_at=at(10, 19)))
    snapshot = Snapshot(
        departments={"D1": Department("D1", "办公室")},
        people={key: Person(employee_id=key, name=key, department="D1", status=status)
                for key, status in (("P1", PersonStatus.IN_POST), ("P2", PersonStatus.IN_POST),
                                    ("P3", PersonStatus.IN_POST), ("P4", PersonStatus.RESIGNED))},
        issues=[FieldIssue("P2", "mobile", "missing", "-", "D1"), FieldIssue("P4", "mobile", "missing", "-", "D1")])
    report = completeness(snapshot)
    assert (report.in_post, report.complete) == (3, 2)  # the one report, P4 not in post
    result = compliance(journal.store, "示例局", *PERIOD, TODAY, RULES, report).as_json()
    assert result["changes"] == 8 and result["on_time"] == 3 and result["overdue"] == 1
    assert result["open_problems"] == {"1": 1, "2": 2}
    assert result["held"] == 1  # Q; R was rejected
    assert result["completeness_share"] == 0.6667 and result["in_post"] == 3
    # Only 28 Sep – 29 Sep: D (2 working days) and A (4).
    narrow = compliance(journal.store, "示例局", date(2026, 9, 28), date(2026, 9, 29), TODAY, RULES, None).as_json()
    assert (narrow["changes"], narrow["on_time"], narrow["max_workdays"]) == (2, 1, 4)
    assert narrow["completeness_share"] is None
    # A deadline of 4 working days puts A and C on time as well.
    longer = compliance(journal.store, "示例局", *PERIOD, TODAY, Rules(4, "Asia/Shanghai"), None).as_json()
    assert longer["on_time"] == 5


def test_a_period_is_its_days_in_the_units_zone_not_in_utc(journal: Journal) -> None:
    # 23:30 UTC on 20 Sep is 07:30 on 21 Sep in Zhengzhou; 16:30 UTC on 21 Sep is already 22 Sep there.
    for when, subject in ((datetime(2026, 9, 20, 23, 30, tzinfo=UTC), "IN"),
                          (datetime(2026, 9, 20, 15, 30, tzinfo=UTC), "BEFORE"),
                          (datetime(2026, 9, 21, 16, 30, tzinfo=UTC), "AFTER")):
        _, [entry] = journal.run(when, [change(ChangeKind.JOIN, subject)])
        journal.done(entry, when)
    result = compliance(journal.store, "示例局", date(2026, 9, 21), date(2026, 9, 21), TODAY, RULES, None).as_json()
    assert (result["changes"], result["on_time"]) == (1, 1)


def test_a_period_without_changes_has_no_share_and_no_delays(journal: Journal) -> None:
    result = compliance(journal.store, "示例局", *PERIOD, TODAY, RULES, None).as_json()
    assert (result["changes"], result["on_time_share"], result["median_workdays"], result["max_workdays"]) == (
        0, None, None, None)


def test_working_days_taken_agree_with_the_due_date_rule_through_the_holidays() -> None:
    start = date(2026, 9, 20)
    for offset in range(30):
        detected = start + timedelta(days=offset)
        due = add_workdays(detected, 3)
        for later in range(20):
            done = detected + timedelta(days=later)
            assert (workdays_taken(detected, done) <= 3) == (done <= due), (detected, done)

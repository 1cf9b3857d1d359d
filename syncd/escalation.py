"""Escalation up the admin chain (DESIGN.md §7; 郑审〔2021〕44号 Articles 9 and 11).

`gather_facts` reads what the state says now (the latest whole-unit run, failures in a row, holds,
overdue changes, rejected and incomplete records, the working-day calendar); `Escalation.observe`
turns the facts into problems and tells the administrators: level 1 (`escalation.unit_admins`)
of every problem, level 2 (`escalation.higher_admins`) of an authentication failure and an overdue
change at once, and of any other problem that failed `failed_runs_before_escalation` runs in a
row or stayed open past `escalate_after` (`hold_escalate_after` for a hold).

Deduplication lives in the database, not in the object: a problem is a row, and each notice
(open, each reminder, resolved; per level) has a deterministic id whose delivery is recorded per
channel. A new `Escalation` on the same store (a daemon restart) therefore sends nothing twice,
and a notice that went out just before a crash goes out again under the same id, which every
channel passes on so the receiver can drop it. A notice no channel delivered is tried again after
`RETRY_AFTER`.

The clock is an argument: nothing here reads the time, so tests run days in microseconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog

from syncd.apply import DEPARTMENT_KINDS, STOPPED_BY_SIGNAL
from syncd.config import Config, EscalationConfig
from syncd.messages import (
    DIGEST_MOVES,
    GROUP_SEPARATOR,
    LIST_SEPARATOR,
    PROBLEM_TITLES,
    RUN_OUTCOMES,
    notice_text,
    notice_title,
)
from syncd.notice import Delivery, Kind, Level, Notice, Notifier, Recipient, State, notice_id, recipients_of, send_first
from syncd.state.models import NoticeRow, ProblemRow
from syncd.state.problems import Attempts, FailedEntry, Move, Problems, utc
from syncd.state.store import StateStore, aware
from syncd.workdays import add_workdays, calendar_covers

log = structlog.get_logger(__name__)

HEALTHY_OUTCOMES = ("success", "held")
FAILED_OUTCOMES = ("failed", "partial", "crashed")
# An authentication, signature or scope failure: nothing works until someone fixes the key or the grant.
AUTH_CATEGORIES = ("auth", "scope")
# Problems about the runs themselves: they clear only when a run succeeds (or holds) again.
RUN_KINDS = ("run_failed", "auth_failed", "quarantined")
# Level 2 hears of these at once; level 1 hears of them too (its admins are the ones who can fix them).
LEVEL_2_AT_ONCE = ("auth_failed", "overdue")
# Data and calendar problems are recalled once a day, never more often: one digest a day, not one a cycle.
DAILY_KINDS = ("records", "calendar")
DAILY = timedelta(days=1)
RETRY_AFTER = timedelta(minutes=10)  # a notice no channel delivered is tried again after this
RESOLVED_NOTICE_WITHIN = timedelta(days=7)  # an undelivered resolved notice is given up after this
DIGEST_WINDOW = timedelta(days=7)
# A notice's sequence number: the problem's row id (a key comes back after it resolves, its notices
# must not share ids with the earlier problem's) and the reminder number (0 for open and resolved).
SEQUENCE_STRIDE = 100_000
LISTED = 20  # ids listed in a notice; the rest are counted
MAX_SUBJECTS = 1000  # ids kept on a problem


# -- facts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldRun:
    """A run whose held changes wait for `syncd approve` or `syncd reject`."""

    run_id: str
    started_at: datetime
    changes: int


@dataclass(frozen=True, slots=True)
class OverdueChange:
    """A change not in the directory past its due date."""

    kind: str
    subject: str
    due: date
    state: str
    run_id: str


@dataclass(frozen=True, slots=True)
class Facts:
    """What the state says now, as the escalation rules read it (ids and counts only, never a name)."""

    today: date
    run_id: str | None = None  # the latest finished whole-unit run
    outcome: str | None = None  # success | partial | failed | held | crashed
    failed_in_a_row: int = 0
    failed: tuple[FailedEntry, ...] = ()  # the latest run's changes that did not land
    auth_failed: bool = False
    quarantined: bool = False
    rejected: int = 0
    incomplete: int = 0
    source_incomplete: bool = False  # the latest run read a damaged or changing export
    held: tuple[HeldRun, ...] = ()
    overdue: tuple[OverdueChange, ...] = ()
    uncovered_years: tuple[int, ...] = ()  # years the working-day calendar does not know
    # A cycle that ended before it could record a run (the source unreadable): what the daemon caught.
    cycle_error: str | None = None

    @property
    def failing(self) -> bool:
        """Whether the latest cycle failed."""
        return self.cycle_error is not None or self.outcome in FAILED_OUTCOMES

    @property
    def healthy(self) -> bool:
        """Whether the latest cycle worked: the problems of failing runs clear."""
        return self.cycle_error is None and self.outcome in HEALTHY_OUTCOMES


def gather_facts(store: StateStore, today: date, escalation: EscalationConfig | None = None,
                 cycle_error: str | None = None) -> Facts:
    """Read the facts the rules need from the state; `today` in the unit's time zone."""
    escalation = escalation or EscalationConfig()
    problems = Problems(store)
    held = tuple(HeldRun(run_id, aware(started), count) for run_id, started, count in store.held_runs())
    overdue = tuple(OverdueChange(e.kind, e.subject, e.due_at, e.state, e.run_id) for e in store.overdue(today))
    facts = Facts(today=today, held=held, overdue=overdue, cycle_error=cycle_error,
                  uncovered_years=_uncovered_years(today, escalation))
    last = store.last_unit_run()
    if last is None:
        return facts
    failed = tuple(problems.failed_entries(last.id))
    auth = any(entry.category in AUTH_CATEGORIES for entry in failed)
    by_signal = any(entry.message == f"not attempted: {STOPPED_BY_SIGNAL}" for entry in failed)
    counts = last.counts or {}
    return replace(
        facts, run_id=last.id, outcome=last.outcome, failed_in_a_row=problems.failed_in_a_row(),
        failed=failed, auth_failed=auth,
        # A recorded run ends "failed" only when it was stopped: by an auth error, by SIGTERM, or by
        # the quarantine (the apply report's `stopped`, which the run record does not keep).
        quarantined=last.outcome == "failed" and not auth and not by_signal,
        rejected=int(counts.get("rejected", 0)), incomplete=int(counts.get("incomplete_people", 0)),
        source_incomplete=bool(counts.get("source_incomplete", 0)),
    )


def _uncovered_years(today: date, escalation: EscalationConfig) -> tuple[int, ...]:
    """Years a change detected today may count working days in that the calendar does not know.

    A year the operator wrote `workday_overrides` for counts as covered: that is what they are for.
    """
    horizon = add_workdays(today, escalation.deadline_workdays, escalation.workday_overrides)
    overridden = {day.year for day in escalation.workday_overrides}
    return tuple(sorted(year for year in {today.year, horizon.year}
                        if not calendar_covers(year) and year not in overridden))


# -- findings: what should be open now -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem the facts show: its identity, and its notice body (what, affects, what to do)."""

    kind: Kind
    key: str
    level: Level
    what: str
    action: str
    affects: str = ""
    subjects: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """The open notice's title."""
        return notice_title("open", self.kind)

    def text(self, since: str) -> str:
        """The level-1 open notice: what happened, since when, what it affects, what to do."""
        lines = [self.what, notice_text("open.since", since=since)]
        if self.affects:
            lines.append(notice_text("open.affects", affects=self.affects))
        lines.append(notice_text("open.action", action=self.action))
        return "\n".join(lines)


# A run problem that stays open as last described while runs keep failing (now for another reason).
_STILL_OPEN = Finding("run_failed", "-", 1, "", "")


def findings(facts: Facts, unit: str, deadline_workdays: int, open_keys: Iterable[str]) -> dict[str, Finding]:
    """The problems the facts show, by key; a run problem still open stays while runs keep failing."""
    found: dict[str, Finding] = {}
    still = set(open_keys) if not facts.healthy else set()

    def add(finding: Finding) -> None:
        found[finding.key] = finding

    failed = facts.failed
    run = facts.run_id or "-"
    if facts.auth_failed and facts.outcome in FAILED_OUTCOMES:
        add(Finding("auth_failed", "auth_failed", 2, notice_text("auth_failed.what", unit=unit, run=run),
                    notice_text("auth_failed.action"), _affects(failed), _subjects(failed)))
    if facts.quarantined:
        add(Finding("quarantined", "quarantined", 1, notice_text("quarantined.what", unit=unit, run=run),
                    notice_text("quarantined.action"), _affects(failed), _subjects(failed)))
    if facts.cycle_error is not None:
        add(Finding("run_failed", "run_failed", 1, notice_text("not_run.what", unit=unit, error=facts.cycle_error),
                    notice_text("not_run.action")))
    elif facts.failing and not facts.auth_failed and not facts.quarantined:
        in_a_row = (notice_text("run_failed.in_a_row", count=facts.failed_in_a_row)
                    if facts.failed_in_a_row > 1 else "")
        outcome = RUN_OUTCOMES.get(facts.outcome or "", RUN_OUTCOMES["failed"])
        add(Finding("run_failed", "run_failed", 1,
                    notice_text("run_failed.what", unit=unit, outcome=outcome, run=run, in_a_row=in_a_row),
                    notice_text("run_failed.action"), _affects(failed), _subjects(failed)))
    for held in facts.held:
        add(Finding("held", f"held:{held.run_id}", 1, notice_text("held.what", unit=unit, run=held.run_id),
                    notice_text("held.action", run=held.run_id), notice_text("held.affects", changes=held.changes)))
    if facts.source_incomplete:
        add(Finding("source_incomplete", "source_incomplete", 1,
                    notice_text("source_incomplete.what", unit=unit, run=run),
                    notice_text("source_incomplete.action"), notice_text("source_incomplete.affects")))
    if facts.rejected or facts.incomplete:
        add(Finding("records", "records", 1,
                    notice_text("records.what", unit=unit, rejected=facts.rejected, incomplete=facts.incomplete),
                    notice_text("records.action"), notice_text("records.affects")))
    by_due: dict[date, list[OverdueChange]] = defaultdict(list)
    for change in facts.overdue:
        by_due[change.due].append(change)
    for due, changes in sorted(by_due.items()):
        add(Finding("overdue", f"overdue:{due.isoformat()}", 2,
                    notice_text("overdue.what", unit=unit, count=len(changes), workdays=deadline_workdays,
                                due=due.isoformat()),
                    notice_text("overdue.action"), _ids_text([(c.kind, c.subject) for c in changes]),
                    tuple(sorted({c.subject for c in changes}))))
    for year in facts.uncovered_years:
        add(Finding("calendar", f"calendar:{year}", 1, notice_text("calendar.what", unit=unit, year=year),
                    notice_text("calendar.action", year=year),
                    notice_text("calendar.affects", year=year, workdays=deadline_workdays)))
    for key in still - set(found):
        if key.split(":", 1)[0] in RUN_KINDS:
            found[key] = _STILL_OPEN  # runs still fail: the problem stays open as last described
    return found


def _subjects(failed: Iterable[FailedEntry]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(entry.subject for entry in failed))[:MAX_SUBJECTS]


def _affects(failed: Sequence[FailedEntry]) -> str:
    if not failed:
        return ""
    return notice_text("failed.affects", count=len(failed),
                       ids=_ids_text([(entry.kind, entry.subject) for entry in failed]))


def _ids_text(changes: Iterable[tuple[str, str]]) -> str:
    """`人员 A1、A2 等 57 人；部门 D3`: ids only, never a name."""
    people: dict[str, None] = {}
    departments: dict[str, None] = {}
    for kind, subject in changes:
        (departments if kind in DEPARTMENT_KINDS else people)[subject] = None
    parts = []
    for listed, counted, ids in (("ids.people", "ids.people_more", list(people)),
                                 ("ids.departments", "ids.departments_more", list(departments))):
        if ids:
            more = notice_text(counted, count=len(ids)) if len(ids) > LISTED else ""
            parts.append(notice_text(listed, ids=LIST_SEPARATOR.join(ids[:LISTED]), more=more))
    return GROUP_SEPARATOR.join(parts)


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProblemView:
    """A problem as `syncd status` and `GET /api/v1/escalations` show it."""

    id: int
    level: int
    kind: str
    key: str
    subjects: tuple[str, ...]
    title: str
    text: str
    opened_at: datetime
    last_notice_at: datetime | None
    reminders: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    notices: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def of(cls, row: ProblemRow, notices: Iterable[NoticeRow] = ()) -> ProblemView:
        """The view of a stored problem and its notice attempts."""
        return cls(row.id, row.level, row.kind, row.key, tuple(row.subjects or ()), row.title, row.text,
                   aware(row.opened_at), _maybe(row.last_notice_at), row.reminders, _maybe(row.acknowledged_at),
                   row.acknowledged_by, _maybe(row.escalated_at), _maybe(row.resolved_at),
                   tuple({"level": n.level, "state": n.state, "notice_id": n.notice_id, "channel": n.channel,
                          "ok": n.ok, "error": n.error, "sent_at": _iso(aware(n.sent_at))} for n in notices))

    def as_json(self) -> dict[str, Any]:
        """JSON-ready: ids, counts and times (ISO 8601), never a name or a mobile."""
        return {"id": self.id, "level": self.level, "kind": self.kind, "key": self.key,
                "subjects": list(self.subjects), "title": self.title, "text": self.text,
                "opened_at": _iso(self.opened_at), "last_notice_at": _iso(self.last_notice_at),
                "reminders": self.reminders, "acknowledged_at": _iso(self.acknowledged_at),
                "acknowledged_by": self.acknowledged_by, "escalated_at": _iso(self.escalated_at),
                "resolved_at": _iso(self.resolved_at), "notices": list(self.notices)}


def open_problems(store: StateStore) -> list[ProblemView]:
    """The open problems, oldest first (for `syncd status`)."""
    return [ProblemView.of(row) for row in Problems(store).open_rows()]


def problems_json(store: StateStore, resolved: int = 20) -> dict[str, Any]:
    """`GET /api/v1/escalations`: open problems and the latest resolved ones, each with every notice attempt."""
    open_rows, closed, notices = Problems(store).latest(resolved)
    return {"open": [ProblemView.of(row, notices.get(row.id, ())).as_json() for row in open_rows],
            "resolved": [ProblemView.of(row, notices.get(row.id, ())).as_json() for row in closed]}


def open_counts(store: StateStore) -> dict[tuple[int, str], int]:
    """Open problems by (level, kind), for `syncd_open_problems{level,kind}`."""
    return Problems(store).open_counts()


def acknowledge(store: StateStore, key: str, by: str, now: datetime) -> bool:
    """`syncd ack KEY`: stop the reminders of the open problem `key` (not its escalation); False if none is open."""
    acknowledged = Problems(store).acknowledge(key, by, now)
    if acknowledged:
        log.info("escalation.acknowledged", key=key, by=by)
    return acknowledged


class Escalation:
    """Opens, reminds, escalates and resolves problems from the facts, and tells the admin chain."""

    def __init__(self, store: StateStore, config: Config, notifiers: Sequence[Notifier], unit_name: str) -> None:
        self._store = store
        self._problems = Problems(store)
        self._escalation = config.escalation
        self._zone = ZoneInfo(config.schedule.timezone)
        self._notifiers = list(notifiers)
        self._unit = unit_name
        self._recipients: dict[int, tuple[Recipient, ...]] = {
            1: recipients_of(config.escalation.unit_admins), 2: recipients_of(config.escalation.higher_admins)}

    # -- the views, for the daemon's API and metrics --

    def open_problems(self) -> list[ProblemView]:
        """The open problems, oldest first."""
        return open_problems(self._store)

    def problems_json(self, resolved: int = 20) -> dict[str, Any]:
        """Open and recently resolved problems with their notices, JSON-ready."""
        return problems_json(self._store, resolved)

    def open_counts(self) -> dict[tuple[int, str], int]:
        """Open problems by (level, kind)."""
        return open_counts(self._store)

    def acknowledge(self, key: str, by: str, now: datetime) -> bool:
        """Stop the reminders of an open problem; its level-2 escalation on deadline still happens."""
        return acknowledge(self._store, key, by, now)

    # -- the rules --

    def observe(self, now: datetime, facts: Facts) -> list[Delivery]:
        """Bring the problems in line with the facts and send what is due; every channel attempt, in order."""
        now = utc(now)
        self._reconcile(now, facts)
        deliveries: list[Delivery] = []
        for row in self._problems.open_rows():
            deliveries += self._notify_open(row, now, facts)
        for row in self._problems.resolved_since(now - RESOLVED_NOTICE_WITHIN, exclude_kind="digest"):
            deliveries += self._notify_resolved(row, now)
        return deliveries

    def weekly_digest(self, now: datetime) -> list[Delivery]:
        """Article 11: this week's transfers and departures, by department, to level 1, once a week.

        Safe to call every cycle: it sends once the week's `digest_weekday` `digest_at` has passed,
        and never twice for one week (nor when nobody moved).
        """
        now = utc(now)
        moment = self._digest_moment(now)
        key = f"digest:{moment.astimezone(self._zone).date().isoformat()}"
        row = self._problems.by_key(key)
        if row is None:
            moves = self._problems.moves(moment - DIGEST_WINDOW, moment)
            if not moves or not self._reaches(1):
                return []
            title, text = self._digest_text(moves, moment)
            row = self._problems.add(ProblemRow(
                level=1, kind="digest", key=key, subjects=sorted({m.employee_id for m in moves})[:MAX_SUBJECTS],
                title=title, text=text, opened_at=now, reminders=0, resolved_at=now))
        deliveries, _ = self._send_once(row, 1, "open", 0, row.title, row.text, now)
        if any(d.ok for d in deliveries):
            self._problems.noticed(row.id, now)
        return deliveries

    def _digest_moment(self, now: datetime) -> datetime:
        """The latest digest time (`digest_weekday` at `digest_at`, local) at or before `now`."""
        local = now.astimezone(self._zone)
        hour, minute = (int(part) for part in self._escalation.digest_at.split(":"))
        day = local.date() - timedelta(days=(local.isoweekday() - self._escalation.digest_weekday) % 7)
        moment = datetime.combine(day, time(hour, minute), self._zone)
        if moment > local:
            moment -= timedelta(days=7)
        return moment.astimezone(UTC)

    def _digest_text(self, moves: Sequence[Move], moment: datetime) -> tuple[str, str]:
        names = self._problems.department_names(
            [d for m in moves for d in (m.department, m.to_department) if d is not None])

        def department(hr_id: str | None) -> str:
            if hr_id is None:
                return notice_text("digest.department_unknown")
            if hr_id in names:
                return notice_text("digest.department_named", id=hr_id, name=names[hr_id])
            return notice_text("digest.department_id", id=hr_id)

        lines: dict[str | None, list[str]] = defaultdict(list)
        for move in moves:
            to = notice_text("digest.move_to", department=move.to_department) if move.to_department else ""
            lines[move.department].append(notice_text("digest.move", move=DIGEST_MOVES[move.kind],
                                                      employee_id=move.employee_id, to=to))
        text = [notice_text("digest.head", unit=self._unit, start=self._local(moment - DIGEST_WINDOW),
                            end=self._local(moment), people=len({move.employee_id for move in moves}))]
        for hr_id in sorted(lines, key=lambda d: (d is None, d or "")):
            text.append(notice_text("digest.department", department=department(hr_id),
                                    moves=GROUP_SEPARATOR.join(lines[hr_id])))
        return notice_title("open", "digest"), "\n".join(text)

    def _reconcile(self, now: datetime, facts: Facts) -> None:
        """Open new problems, refresh open ones, resolve cleared ones, raise to level 2: one transaction."""
        escalation = self._escalation
        with self._problems.transaction() as session:
            rows = {row.key: row for row in self._problems.open_rows(session) if row.kind != "digest"}
            found = findings(facts, self._unit, escalation.deadline_workdays, rows)
            for key, finding in found.items():
                row = rows.get(key)
                if finding is _STILL_OPEN:
                    continue
                if row is None:
                    row = ProblemRow(level=finding.level, kind=finding.kind, key=key, subjects=list(finding.subjects),
                                     title=finding.title, text=finding.text(self._local(now)), opened_at=now,
                                     reminders=0)
                    session.add(row)
                    rows[key] = row
                    log.info("escalation.opened", kind=finding.kind, key=key, level=finding.level,
                             subjects=len(finding.subjects))
                else:  # the same problem, described as it is now (counts, ids); no notice for that
                    row.subjects = list(finding.subjects)
                    row.text = finding.text(self._local(aware(row.opened_at)))
            for key, row in rows.items():
                if key not in found:
                    row.resolved_at = now
                    log.info("escalation.resolved", kind=row.kind, key=key, level=row.level,
                             open_s=int((now - aware(row.opened_at)).total_seconds()))
                elif row.level == 1:
                    reason = self._escalation_reason(row, now, facts)
                    if reason:
                        row.level = 2
                        log.warning("escalation.escalated", kind=row.kind, key=key, reason=reason)

    def _escalation_reason(self, row: ProblemRow, now: datetime, facts: Facts) -> str | None:
        escalation = self._escalation
        if row.kind in RUN_KINDS and facts.failed_in_a_row >= escalation.failed_runs_before_escalation:
            return "failed_in_a_row"
        after = escalation.duration("hold_escalate_after" if row.kind == "held" else "escalate_after")
        if now - aware(row.opened_at) >= after:
            return "open_too_long"
        return None

    def _levels(self, row: ProblemRow) -> list[int]:
        return [level for level in (1, 2) if level <= row.level and self._reaches(level)]

    def _reaches(self, level: int) -> bool:
        # Work notifications and email need recipients; a webhook carries a notice to whoever receives it.
        return bool(self._notifiers) and (bool(self._recipients[level])
                                          or any(n.channel == "webhook" for n in self._notifiers))

    def _notify_open(self, row: ProblemRow, now: datetime, facts: Facts) -> list[Delivery]:
        """The open notice to each level the problem has reached, then a reminder when one is due."""
        deliveries: list[Delivery] = []
        attempts = self._problems.attempts(row.id)
        told: list[int] = []
        # From the attempts, not only the row: a crash after a send and before its bookkeeping
        # must not leave a problem without reminders.
        last = max((a.last_tried for a in attempts.values() if a.delivered), default=None)
        for level in self._levels(row):
            title, text = self._open_text(row, level, now, facts)
            sent, delivered = self._send_once(row, level, "open", 0, title, text, now, attempts)
            deliveries += sent
            if not delivered:
                continue
            told.append(level)
            escalated = level == 2 and row.escalated_at is None
            if sent or escalated:
                last = now if sent else last
                self._problems.noticed(row.id, last or now, escalated=escalated)
        interval = max(self._escalation.duration("reminder_every"), DAILY if row.kind in DAILY_KINDS else timedelta())
        if row.acknowledged_at is not None or not told or last is None or now - last < interval:
            return deliveries
        number = row.reminders + 1
        reminded = False
        for level in told:
            title, text = self._reminder_text(row, number, now)
            sent, delivered = self._send_once(row, level, "reminder", number, title, text, now, attempts)
            deliveries += sent
            reminded = reminded or delivered
        if reminded:
            self._problems.noticed(row.id, now, reminders=number)
        return deliveries

    def _notify_resolved(self, row: ProblemRow, now: datetime) -> list[Delivery]:
        """The resolved notice to each level that was told the problem opened."""
        attempts = self._problems.attempts(row.id)
        deliveries: list[Delivery] = []
        for level in (1, 2):
            if not attempts.get(self._id(row, level, "open", 0), _NEVER).delivered:
                continue  # nobody there heard of it: no all-clear either
            title, text = self._resolved_text(row)
            deliveries += self._send_once(row, level, "resolved", 0, title, text, now, attempts)[0]
        return deliveries

    def _send_once(self, row: ProblemRow, level: int, state: State, number: int, title: str, text: str,
                   now: datetime, attempts: dict[str, Attempts] | None = None) -> tuple[list[Delivery], bool]:
        """Send a notice unless it was delivered already or failed within RETRY_AFTER; (attempts now, delivered)."""
        attempts = self._problems.attempts(row.id) if attempts is None else attempts
        notice = Notice.create(
            unit=self._unit, level=cast(Level, level), kind=cast(Kind, row.kind), key=row.key, state=state,
            sequence=row.id * SEQUENCE_STRIDE + number, title=title, text=text,
            since=aware(row.opened_at).astimezone(self._zone), subjects=row.subjects or (),
            recipients=self._recipients[level])
        tried = attempts.get(notice.id)
        if tried is not None and (tried.delivered or now - tried.last_tried < RETRY_AFTER):
            return [], tried.delivered
        deliveries = send_first(self._notifiers, notice)  # no transaction is open here
        if deliveries:
            self._problems.record_attempts(row.id, level, state, notice.id,
                                           [(d.channel, d.ok, d.error) for d in deliveries], now)
        return deliveries, any(d.ok for d in deliveries)

    def _id(self, row: ProblemRow, level: int, state: str, number: int) -> str:
        return notice_id(self._unit, level, row.key, state, row.id * SEQUENCE_STRIDE + number)

    # -- texts --

    def _open_text(self, row: ProblemRow, level: int, now: datetime, facts: Facts) -> tuple[str, str]:
        if level == 1 or row.kind in LEVEL_2_AT_ONCE:
            return row.title, row.text
        in_a_row = (notice_text("escalated.in_a_row", count=facts.failed_in_a_row)
                    if row.kind in RUN_KINDS and facts.failed_in_a_row > 1 else "")
        return (notice_title("escalated", row.kind),
                notice_text("escalated", unit=self._unit, open_for=_duration(now - aware(row.opened_at)),
                            in_a_row=in_a_row, text=row.text))

    def _reminder_text(self, row: ProblemRow, number: int, now: datetime) -> tuple[str, str]:
        # Never the open text again: the platform delivers the same content to a person once a day.
        return (notice_title("reminder", row.kind),
                notice_text("reminder", number=number, open_for=_duration(now - aware(row.opened_at)),
                            text=row.text, key=row.key))

    def _resolved_text(self, row: ProblemRow) -> tuple[str, str]:
        opened, resolved = aware(row.opened_at), aware(row.resolved_at or row.opened_at)
        return (notice_title("resolved", row.kind),
                notice_text("resolved", unit=self._unit, what=PROBLEM_TITLES[row.kind], key=row.key,
                            opened=self._local(opened), resolved=self._local(resolved),
                            duration=_duration(resolved - opened)))

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class _Never:
    delivered: bool = False


_NEVER = _Never()


def _maybe(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _duration(delta: timedelta) -> str:
    """`1天4小时`, `3小时20分钟`, `45分钟`."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return notice_text("duration.days", days=days) + (notice_text("duration.hours", hours=hours) if hours else "")
    if hours:
        return notice_text("duration.hours", hours=hours) + (
            notice_text("duration.minutes", minutes=minutes) if minutes else "")
    return notice_text("duration.minutes", minutes=minutes)

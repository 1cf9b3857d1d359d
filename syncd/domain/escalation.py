"""Escalation up the admin chain (DESIGN.md §7; 郑审〔2021〕44号 Articles 9 and 11).

`gather_facts` reads what the state says now (the latest whole-unit run, failures in a row, holds,
overdue changes, rejected and incomplete records, the working-day calendar); `Escalation.observe`
turns the facts into problems and tells the administrators: level 1 (`escalation.unit_admins`)
of every problem, level 2 (`escalation.higher_admins`) of an authentication failure and an overdue
change at once, and of any other problem that failed `failed_runs_before_escalation` runs in a
row or stayed open past `escalate_after` (`hold_escalate_after` for a hold).

Deduplication lives in the database, not in the object: a problem is a row, and each notice
(open, each reminder, resolved; per level) has a deterministic id, derived from the problem's random
token (never its row id, which a restored state hands out again), whose delivery is recorded per
channel. A new `Escalation` on the same store (a daemon restart) therefore sends nothing twice,
and a notice that went out just before a crash goes out again under the same id, which every
channel passes on so the receiver can drop it. A notice no channel delivered is tried again after
`RETRY_AFTER`.

The clock is an argument: nothing here reads the time, so tests run days in microseconds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog

from syncd.config import Config, EscalationConfig
from syncd.domain.guard import (
    COUNT_ACTIVE,
    COUNT_IN_POST_BEFORE,
    COUNT_IN_POST_NOW,
    COUNT_OVER_LIMITS,
    HOLD_MASS_DEACTIVATION,
)
from syncd.domain.model import DEPARTMENT_KINDS, STOPPED_BY_SIGNAL
from syncd.domain.workdays import add_workdays, is_workday, uncovered_years
from syncd.reporting.messages import (
    CHANGE_KINDS,
    DIGEST_MOVES,
    GROUP_SEPARATOR,
    LIST_SEPARATOR,
    NOTICE_TITLE_PREFIX,
    PROBLEM_TITLES,
    RUN_OUTCOMES,
    duration_text,
    notice_text,
    notice_title,
)
from syncd.reporting.notice import (
    Delivery,
    Kind,
    Level,
    Notice,
    Notifier,
    Recipient,
    State,
    notice_id,
    recipients_of,
    send_first,
)
from syncd.state.models import NoticeRow, ProblemRow
from syncd.state.problems import Attempts, FailedEntry, Move, Problems, utc
from syncd.state.store import StateStore, aware

log = structlog.get_logger(__name__)

HEALTHY_OUTCOMES = ("success", "held")
FAILED_OUTCOMES = ("failed", "partial", "crashed")
# The gateway refusing the app itself (key, signature, clock): nothing works until someone fixes them.
AUTH_CATEGORIES = ("auth",)
# The same refusal ending a cycle before it recorded a run (a read refused), by the exception's class.
AUTH_ERRORS = ("AuthError",)
# A refusal that may be about one record rather than the app: `300037` on a person whose mobile
# belongs to someone in another unit names that unit's organisation; only a refusal naming the
# unit's own organisations (or none) means the app lost its grant.
SCOPE_CATEGORY = "scope"
# The gateway not answering: a run failing only for these is an outage of the contacts service.
OUTAGE_CATEGORIES = ("unavailable", "throttled", "stopped")
_ORGANIZATION_CODE = re.compile(r"GO_[0-9A-Za-z]+")
# Problems about the runs themselves: they clear only when a run succeeds (or holds) again.
RUN_KINDS = ("run_failed", "auth_failed", "quarantined")
# Level 2 hears of these at once; level 1 hears of them too (its admins are the ones who can fix them).
LEVEL_2_AT_ONCE = ("auth_failed", "overdue")
# One record's problem: level 2 hears of it only through the change's deadline (an `overdue` problem).
RECORD_KINDS = ("refused",)
# Data problems are recalled once a day, never more often: one digest a day, not one a cycle; level 2
# is reminded at most daily of anything; a missing calendar year at most weekly (it stays for months).
DAILY_KINDS = ("records", "refused")
WEEKLY_KINDS = ("calendar",)
DAILY = timedelta(days=1)
WEEKLY = timedelta(days=7)
RETRY_AFTER = timedelta(minutes=10)  # a notice no channel delivered is tried again after this
RESOLVED_NOTICE_WITHIN = timedelta(days=7)  # an undelivered resolved notice is given up after this
DIGEST_WINDOW = timedelta(days=7)
# A legacy notice's sequence number (problems made before migration 0004, which have no token): the
# problem's row id and the reminder number (0 for open and resolved).
SEQUENCE_STRIDE = 100_000
LISTED = 20  # ids listed in a notice; the rest are counted
MAX_SUBJECTS = 1000  # ids kept on a problem
# An incomplete read's notice by `source.kind`: files copied in, a directory server, a database break off
# differently, and the admin checks a different thing (its what and action templates).
SOURCE_INCOMPLETE: dict[str, tuple[str, str]] = {
    "csv": ("source_incomplete.what.csv", "source_incomplete.action.file"),
    "xlsx": ("source_incomplete.what.xlsx", "source_incomplete.action.file"),
    "ldap": ("source_incomplete.what.ldap", "source_incomplete.action.ldap"),
    "sql": ("source_incomplete.what.sql", "source_incomplete.action.sql"),
}


# -- facts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldFigures:
    """Which rule held a run's deactivations, with the figures its run recorded (`GuardedPlan.hold_counts`)."""

    over_limits: bool  # past safety.max_deactivations or max_deactivation_share
    active: int | None  # the active people the share was measured against
    in_post: tuple[int, int] | None  # (before, now) when the shrink floor held them

    @classmethod
    def of(cls, counts: dict[str, Any]) -> HoldFigures | None:
        """The figures a run's counts recorded; None for a run that recorded none (held before they were)."""
        over = bool(counts.get(COUNT_OVER_LIMITS))
        shrink = COUNT_IN_POST_BEFORE in counts and COUNT_IN_POST_NOW in counts
        if not over and not shrink:
            return None
        active = counts.get(COUNT_ACTIVE)
        return cls(over, None if active is None else int(active),
                   (int(counts[COUNT_IN_POST_BEFORE]), int(counts[COUNT_IN_POST_NOW])) if shrink else None)


@dataclass(frozen=True, slots=True)
class HeldRun:
    """A run whose held changes wait for `syncd approve` or `syncd reject`."""

    run_id: str
    started_at: datetime
    changes: int
    entries: tuple[FailedEntry, ...] = ()  # the held changes: kind, subject, the guard's reason (category)
    figures: HoldFigures | None = None  # what held its deactivations


@dataclass(frozen=True, slots=True)
class HoldLimits:
    """The `[safety]` thresholds a hold notice names."""

    max_deactivations: int
    max_deactivation_share: float
    max_shrink_share: float = 0.10
    max_shrink_count: int = 5


@dataclass(frozen=True, slots=True)
class OverdueChange:
    """A change not in the directory past its due date."""

    kind: str
    subject: str
    due: date
    state: str
    run_id: str
    detected: datetime | None = None  # when the cycle found HR's change
    # The due date counts days of a year whose holidays nobody told the calendar: it may be wrong.
    unknown_calendar: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """What the state says now, as the escalation rules read it (ids and counts only, never a name)."""

    today: date
    run_id: str | None = None  # the latest finished whole-unit run
    outcome: str | None = None  # success | partial | failed | held | crashed
    failed_in_a_row: int = 0
    failing_since: datetime | None = None  # when the first run of that streak started
    failed: tuple[FailedEntry, ...] = ()  # the latest run's changes that did not land, for a cause of the run
    refused: tuple[FailedEntry, ...] = ()  # … and those the gateway refused for a cause in that one record
    auth_failed: bool = False
    quarantined: bool = False
    rejected: int = 0
    incomplete: int = 0
    source_incomplete: bool = False  # the latest run read HR only in part (a damaged export, a broken-off server)
    held: tuple[HeldRun, ...] = ()
    overdue: tuple[OverdueChange, ...] = ()
    uncovered_years: tuple[int, ...] = ()  # years the working-day calendar does not know
    # A cycle that ended before it could record a run (the source unreadable): what the daemon caught.
    cycle_error: str | None = None

    @property
    def failing(self) -> bool:
        """Whether the latest cycle failed (a run whose only failures are refused records did not)."""
        if self.cycle_error is not None:
            return True
        return self.outcome in FAILED_OUTCOMES and not (self.outcome == "partial" and not self.failed)

    @property
    def healthy(self) -> bool:
        """Whether the latest cycle worked: the problems of failing runs clear."""
        return self.cycle_error is None and (self.outcome in HEALTHY_OUTCOMES
                                             or (self.outcome == "partial" and not self.failed))


def gather_facts(store: StateStore, today: date, escalation: EscalationConfig | None = None,
                 cycle_error: str | None = None, root_organization_code: str | None = None,
                 timezone: str = "Asia/Shanghai") -> Facts:
    """Read the facts the rules need from the state; `today` in the unit's time zone (`timezone`).

    `root_organization_code` (`unit.root_organization_code`) tells a scope refusal of the unit's own
    node, which is the app's, from one naming another unit's, which is one record's.
    """
    escalation = escalation or EscalationConfig()
    problems = Problems(store)
    runs = store.held_runs()
    entries = problems.held_entries([run_id for run_id, _, _ in runs])
    held = tuple(HeldRun(run_id, aware(started), count, tuple(entries.get(run_id, ())), _hold_figures(store, run_id))
                 for run_id, started, count in runs)
    zone = ZoneInfo(timezone)
    overdue = tuple(
        OverdueChange(e.kind, e.subject, e.due_at, e.state, e.run_id, aware(e.detected_at),
                      bool(uncovered_years(aware(e.detected_at).astimezone(zone).date(), e.due_at,
                                           escalation.workday_overrides_complete)))
        for e in store.overdue(today))
    facts = Facts(today=today, held=held, overdue=overdue, cycle_error=cycle_error,
                  auth_failed=cycle_error in AUTH_ERRORS, uncovered_years=_uncovered_years(today, escalation))
    last = store.last_unit_run()
    if last is None:
        return facts
    failed = tuple(problems.failed_entries(last.id))
    refused: tuple[FailedEntry, ...] = ()
    if any(entry.category == SCOPE_CATEGORY for entry in failed):
        ours = {*problems.organization_codes(), *([root_organization_code] if root_organization_code else [])}
        refused = tuple(entry for entry in failed if _refuses_one_record(entry, ours))
        failed = tuple(entry for entry in failed if entry not in refused)
    counts = last.counts or {}
    refusals = any(entry.category in AUTH_CATEGORIES or entry.category == SCOPE_CATEGORY for entry in failed)
    # The app itself is refused when a scope refusal names the unit's own node, or an auth refusal
    # came in a run where no call got through; one refused call among accepted ones is a run failure.
    landed = sum(count for name, count in counts.items() if name.endswith(".done"))
    auth = any(entry.category == SCOPE_CATEGORY for entry in failed) or (
        landed == 0 and any(entry.category in AUTH_CATEGORIES for entry in failed))
    by_signal = any(entry.message == f"not attempted: {STOPPED_BY_SIGNAL}" for entry in failed)
    in_a_row, failing_since = problems.failed_streak()
    return replace(
        facts, run_id=last.id, outcome=last.outcome, failed_in_a_row=in_a_row, failing_since=failing_since,
        failed=failed, refused=refused, auth_failed=auth or facts.auth_failed,
        # A recorded run ends "failed" only when it was stopped: by an auth error, by SIGTERM, or by
        # the quarantine (the apply report's `stopped`, which the run record does not keep).
        quarantined=last.outcome == "failed" and not refusals and not by_signal,
        rejected=int(counts.get("rejected", 0)), incomplete=int(counts.get("incomplete_people", 0)),
        source_incomplete=bool(counts.get("source_incomplete", 0)),
    )


def _hold_figures(store: StateStore, run_id: str) -> HoldFigures | None:
    """What held a run's deactivations, as its counts recorded."""
    run = store.run(run_id)
    return None if run is None else HoldFigures.of(run.counts or {})


def _refuses_one_record(entry: FailedEntry, ours: set[str]) -> bool:
    """Whether a failure is a scope refusal naming only organisations outside the unit (one record's cause)."""
    if entry.category != SCOPE_CATEGORY:
        return False
    named = set(_ORGANIZATION_CODE.findall(entry.message))
    return bool(named) and not named & ours


def _uncovered_years(today: date, escalation: EscalationConfig) -> tuple[int, ...]:
    """Years a change detected today may count working days in that the calendar does not know.

    A year counts as covered by `workday_overrides` only when the operator lists it in
    `workday_overrides_complete`: one override date does not tell every holiday of its year.
    """
    horizon = add_workdays(today, escalation.deadline_workdays, escalation.workday_overrides)
    return uncovered_years(today, horizon, escalation.workday_overrides_complete)


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
    since: str | None = None  # when it started, if not when the problem opened (HR's change, for a deadline)
    unit: str = ""
    heading: str | None = None  # the title's name of the problem, when not its kind's (an outage)

    @property
    def title(self) -> str:
        """The open notice's title (the unit's name in it)."""
        return notice_title("open", self.kind, self.unit, self.heading)

    def text(self, since: str) -> str:
        """The level-1 open notice: what happened, since when, what it affects, what to do."""
        lines = [self.what, notice_text("open.since", since=self.since or since)]
        if self.affects:
            lines.append(notice_text("open.affects", affects=self.affects))
        lines.append(notice_text("open.action", action=self.action))
        return "\n".join(lines)


# A run problem that stays open as last described while runs keep failing (now for another reason).
_STILL_OPEN = Finding("run_failed", "-", 1, "", "")


def findings(facts: Facts, unit: str, deadline_workdays: int, open_keys: Iterable[str],
             timezone: str = "Asia/Shanghai", limits: HoldLimits | None = None,
             console: str | None = None, source_kind: str = "csv") -> dict[str, Finding]:
    """The problems the facts show, by key; a run problem still open stays while runs keep failing.

    `source_kind` (`source.kind`) words an incomplete read: export files, a directory server or a database.
    """
    zone = ZoneInfo(timezone)
    found: dict[str, Finding] = {}
    still = set(open_keys) if not facts.healthy else set()

    def add(finding: Finding) -> None:
        found[finding.key] = finding

    failed = facts.failed
    run = facts.run_id or "-"
    if facts.auth_failed and (facts.outcome in FAILED_OUTCOMES or facts.cycle_error in AUTH_ERRORS):
        add(Finding("auth_failed", "auth_failed", 2, notice_text("auth_failed.what", unit=unit, run=run),
                    notice_text("auth_failed.action"), _affects(failed), _subjects(failed)))
    # One outage is one problem: a quarantined run and a failed or partial one share the key.
    if facts.quarantined:
        add(Finding("quarantined", "run_failed", 1, notice_text("quarantined.what", unit=unit, run=run),
                    notice_text("quarantined.action"), _affects(failed), _subjects(failed)))
    if facts.cycle_error is not None and facts.cycle_error not in AUTH_ERRORS:
        add(Finding("run_failed", "run_failed", 1, notice_text("not_run.what", unit=unit, error=facts.cycle_error),
                    notice_text("not_run.action")))
    elif facts.failing and not facts.auth_failed and not facts.quarantined:
        in_a_row = (notice_text("run_failed.in_a_row", count=facts.failed_in_a_row)
                    if facts.failed_in_a_row > 1 else "")
        if failed and all(entry.category in OUTAGE_CATEGORIES for entry in failed):
            add(Finding("run_failed", "run_failed", 1,
                        notice_text("outage.what", unit=unit, run=run, in_a_row=in_a_row),
                        notice_text("outage.action"), _affects(failed), _subjects(failed),
                        heading=notice_text("outage.title")))
        else:
            outcome = RUN_OUTCOMES.get(facts.outcome or "", RUN_OUTCOMES["failed"])
            add(Finding("run_failed", "run_failed", 1,
                        notice_text("run_failed.what", unit=unit, outcome=outcome, run=run, in_a_row=in_a_row),
                        notice_text("run_failed.action"), _affects(failed), _subjects(failed)))
    for entry in facts.refused:
        if f"refused:{entry.subject}" in found:
            continue
        person = entry.kind not in DEPARTMENT_KINDS
        add(Finding("refused", f"refused:{entry.subject}", 1,
                    notice_text("refused.what", unit=unit, change=CHANGE_KINDS.get(entry.kind, entry.kind),
                                subject=_ids_text([(entry.kind, entry.subject)]), run=run),
                    notice_text("refused.action.person" if person else "refused.action.department"),
                    notice_text("refused.affects", workdays=deadline_workdays), (entry.subject,)))
    if facts.held:
        add(_held(facts.held, unit, limits, console))
    if facts.source_incomplete:
        what, action = SOURCE_INCOMPLETE[source_kind]
        add(Finding("source_incomplete", "source_incomplete", 1, notice_text(what, unit=unit, run=run),
                    notice_text(action), notice_text("source_incomplete.affects")))
    if facts.rejected or facts.incomplete:
        add(Finding("records", "records", 1,
                    notice_text("records.what", unit=unit, rejected=facts.rejected, incomplete=facts.incomplete),
                    notice_text("records.action"), notice_text("records.affects")))
    by_due: dict[date, list[OverdueChange]] = defaultdict(list)
    for change in facts.overdue:
        by_due[change.due].append(change)
    for due, changes in sorted(by_due.items()):
        detected = min((c.detected for c in changes if c.detected is not None), default=None)
        found_at = detected.astimezone(zone).strftime("%Y-%m-%d %H:%M") if detected else None
        what = notice_text("overdue.what", unit=unit, count=len(changes), workdays=deadline_workdays,
                           due=due.isoformat(),
                           detected=notice_text("overdue.detected", detected=found_at) if found_at else "")
        if any(c.unknown_calendar for c in changes):
            what += notice_text("overdue.unknown_calendar")
        add(Finding("overdue", f"overdue:{due.isoformat()}", 2, what,
                    notice_text("overdue.action"), _ids_text([(c.kind, c.subject) for c in changes]),
                    tuple(sorted({c.subject for c in changes})), found_at))
    for year in facts.uncovered_years:
        add(Finding("calendar", f"calendar:{year}", 1, notice_text("calendar.what", unit=unit, year=year),
                    notice_text("calendar.action", year=year),
                    notice_text("calendar.affects", year=year, workdays=deadline_workdays)))
    for key in still - set(found):
        if key.split(":", 1)[0] in RUN_KINDS:
            found[key] = _STILL_OPEN  # runs still fail: the problem stays open as last described
    return {key: finding if finding is _STILL_OPEN else replace(finding, unit=unit) for key, finding in found.items()}


def _held(held: Sequence[HeldRun], unit: str, limits: HoldLimits | None, console: str | None) -> Finding:
    """One problem for every undecided hold: the newest run holds the whole set (older ones are from
    before holds were joined), so level 2 hears of a waiting decision once, however often it grows."""
    runs = [h.run_id for h in held]
    entries = [entry for h in held for entry in h.entries]
    by_reason: dict[str, int] = defaultdict(int)
    for entry in entries:
        by_reason[entry.category or ""] += 1
    reasons = []
    # The newest run's record of what held its deactivations (a run held before it was kept: the limits).
    figures = next((h.figures for h in held if h.figures is not None), None)
    shrink = figures is not None and figures.in_post is not None
    for reason, count in sorted(by_reason.items()):
        if reason == HOLD_MASS_DEACTIVATION and limits is not None:
            if figures is None or figures.over_limits:
                active = notice_text("held.active", active=figures.active) if figures and figures.active else ""
                reasons.append(notice_text("held.reason.mass_deactivation", count=count, max=limits.max_deactivations,
                                           active=active, share=_percent(limits.max_deactivation_share)))
            if figures is not None and figures.in_post is not None:
                before, now = figures.in_post
                lost = max(before - now, 0)
                reasons.append(notice_text("held.reason.shrink", count=count, before=before, now=now, lost=lost,
                                           drop=_percent(lost / before if before else 0.0),
                                           share=_percent(limits.max_shrink_share), max=limits.max_shrink_count))
        elif reason == "structure":
            reasons.append(notice_text("held.reason.structure", count=count))
        else:
            reasons.append(notice_text("held.reason.other", count=count, reason=reason))
    ids = notice_text("held.ids", ids=_ids_text([(e.kind, e.subject) for e in entries])) if entries else ""
    affects = notice_text("held.affects", changes=sum(h.changes for h in held), ids=ids)
    commands = LIST_SEPARATOR.join(
        notice_text("held.command", run=run, link=console_link(console, f"/held/{run}/approve")) for run in runs)
    # A shrink is most often a wrong export: fixing it ends the hold without a decision.
    action = (notice_text("held.action.shrink") if shrink else "") + notice_text("held.action", commands=commands)
    return Finding("held", "held", 1,
                   notice_text("held.what", unit=unit, run=LIST_SEPARATOR.join(runs),
                               reasons=GROUP_SEPARATOR.join(reasons)),
                   action, affects,
                   tuple(dict.fromkeys(e.subject for e in entries))[:MAX_SUBJECTS])


def _percent(share: float) -> str:
    """`5%`, `12.5%`: a share as a notice shows it, to a tenth of a percent."""
    return f"{share:.1%}".replace(".0%", "%")


def console_link(console: str | None, path: str) -> str:
    """`（控制台：URL）` beside a command, when `api.public_url` is set; else nothing."""
    return notice_text("console_link", url=console.rstrip("/") + path) if console else ""


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
        self._timezone = config.schedule.timezone
        safety = config.safety
        self._limits = HoldLimits(safety.max_deactivations, safety.max_deactivation_share, safety.max_shrink_share,
                                  safety.max_shrink_count)
        self._zone = ZoneInfo(config.schedule.timezone)
        self._notifiers = list(notifiers)
        self._unit = unit_name
        self._recipients: dict[int, tuple[Recipient, ...]] = {
            1: recipients_of(config.escalation.unit_admins), 2: recipients_of(config.escalation.higher_admins)}
        # The Article 11 digest is for the admins of work groups; the unit's admins when none are named.
        self._digest_recipients = recipients_of(config.escalation.work_group_admins) or self._recipients[1]
        self._console = config.api.public_url
        self._source_kind = config.source.kind
        self._contacts = LIST_SEPARATOR.join(
            notice_text("contact", name=admin.name, contact=admin.contact) if admin.contact else admin.name
            for admin in config.escalation.unit_admins)

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
        grown = self._reconcile(now, facts)
        deliveries: list[Delivery] = []
        for row in self._problems.open_rows():
            deliveries += self._notify_open(row, now, facts, row.id in grown)
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
            if not moves or not (self._notifiers and (self._digest_recipients or self._reaches(1))):
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

        def destination(hr_id: str) -> str:
            return notice_text("digest.destination_named", name=names[hr_id], id=hr_id) if hr_id in names else hr_id

        lines: dict[str | None, list[str]] = defaultdict(list)
        for move in moves:
            to = notice_text("digest.move_to", department=destination(move.to_department)) if move.to_department else ""
            kind = DIGEST_MOVES.get(f"{move.kind}:{move.status}", DIGEST_MOVES[move.kind])
            lines[move.department].append(notice_text("digest.move", move=kind, employee_id=move.employee_id, to=to))
        text = [notice_text("digest.head", unit=self._unit, start=self._local(moment - DIGEST_WINDOW),
                            end=self._local(moment), people=len({move.employee_id for move in moves}))]
        for hr_id in sorted(lines, key=lambda d: (d is None, d or "")):
            text.append(notice_text("digest.department", department=department(hr_id),
                                    moves=GROUP_SEPARATOR.join(lines[hr_id])))
        return notice_title("open", "digest", self._unit), "\n".join(text)

    def _reconcile(self, now: datetime, facts: Facts) -> set[int]:
        """Open new problems, refresh open ones, resolve cleared ones, raise to level 2: one transaction.

        Returns the holds whose decision changed (more held, another run to decide): level 1 hears at once.
        """
        grown: set[int] = set()
        escalation = self._escalation
        with self._problems.transaction() as session:
            rows = {row.key: row for row in self._problems.open_rows(session) if row.kind != "digest"}
            found = findings(facts, self._unit, escalation.deadline_workdays, rows, self._timezone, self._limits,
                             self._console, self._source_kind)
            for key, finding in found.items():
                row = rows.get(key)
                if finding is _STILL_OPEN:
                    continue
                if row is None:
                    row = ProblemRow(level=finding.level, kind=finding.kind, key=key, subjects=list(finding.subjects),
                                     title=finding.title, text="", opened_at=now, reminders=0)
                    # A failure streak that began before this run (a restart mid-streak) is dated from its first run.
                    row.text = finding.text(self._local(_open_since(row, facts)))
                    session.add(row)
                    rows[key] = row
                    log.info("escalation.opened", kind=finding.kind, key=key, level=finding.level,
                             subjects=len(finding.subjects))
                else:  # the same problem, described as it is now (counts, ids); no notice for that but a hold's
                    text = finding.text(self._local(_open_since(row, facts)))
                    if row.kind == "held" and text != row.text:
                        grown.add(row.id)
                    row.subjects = list(finding.subjects)
                    row.text = text
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
        return grown

    def _escalation_reason(self, row: ProblemRow, now: datetime, facts: Facts) -> str | None:
        escalation = self._escalation
        if row.kind in RECORD_KINDS:
            return None  # the change's deadline brings it to level 2, as an overdue change
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

    def _notify_open(self, row: ProblemRow, now: datetime, facts: Facts, grown: bool = False) -> list[Delivery]:
        """The open notice to each level the problem has reached, then a reminder to each where one is due.

        A hold that `grown` is recalled to level 1 at once, acknowledged or not: the run to decide changed.
        """
        deliveries: list[Delivery] = []
        attempts = self._problems.attempts(row.id)
        told: list[int] = []
        for level in self._levels(row):
            title, text = self._open_text(row, level, now, facts)
            sent, delivered = self._send_once(row, level, "open", 0, title, text, now, attempts)
            deliveries += sent
            if not delivered:
                continue
            told.append(level)
            escalated = level == 2 and row.escalated_at is None
            if sent or escalated:
                self._problems.noticed(row.id, now, escalated=escalated)
        quiet = row.acknowledged_at is not None or not self._within_reminder_hours(now)
        if not told or (quiet and not grown):
            return deliveries
        # From the attempts, not only the row: a crash after a send and before its bookkeeping must
        # not leave a problem without reminders. Each level keeps its own pace.
        attempts = self._problems.attempts(row.id)
        for level in told:
            heard = [a for a in attempts.values() if a.level == level and a.delivered]
            last = max((a.last_tried for a in heard), default=None)
            if grown and level == 1 and last is not None and last < now:
                pass  # the hold grew: level 1 needs the new run to decide now
            elif quiet or last is None or now - last < self._reminder_interval(row, level):
                continue
            number = 1 + sum(1 for a in heard if a.state == "reminder")
            title, text = self._reminder_text(row, level, number, now, facts)
            sent, delivered = self._send_once(row, level, "reminder", number, title, text, now, attempts)
            deliveries += sent
            if delivered:
                self._problems.noticed(row.id, now, reminders=max(row.reminders, number))
        return deliveries

    def _reminder_interval(self, row: ProblemRow, level: int) -> timedelta:
        interval = self._escalation.duration("reminder_every")
        if row.kind in DAILY_KINDS or level == 2:
            interval = max(interval, DAILY)
        if row.kind in WEEKLY_KINDS:
            interval = max(interval, WEEKLY)
        return interval

    def _within_reminder_hours(self, now: datetime) -> bool:
        """Whether a reminder may go out now: within `reminder_hours`, on a working day when so configured."""
        local = now.astimezone(self._zone)
        start, end = self._escalation.reminder_window()
        if not start <= local.hour * 60 + local.minute < end:
            return False
        return not self._escalation.reminders_on_workdays or is_workday(local.date(),
                                                                       self._escalation.workday_overrides)

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
            sequence=_sequence(row, number), title=title, text=text,
            since=aware(row.opened_at).astimezone(self._zone), subjects=row.subjects or (),
            recipients=self._digest_recipients if row.kind == "digest" else self._recipients[level])
        tried = attempts.get(notice.id)
        notice = replace(notice, resend=tried is not None)
        if tried is not None and (tried.delivered or now - tried.last_tried < RETRY_AFTER):
            return [], tried.delivered
        deliveries = send_first(self._notifiers, notice)  # no transaction is open here
        if deliveries:
            self._problems.record_attempts(row.id, level, state, notice.id,
                                           [(d.channel, d.ok, d.error) for d in deliveries], now)
        return deliveries, any(d.ok for d in deliveries)

    def _id(self, row: ProblemRow, level: int, state: str, number: int) -> str:
        return notice_id(self._unit, level, row.key, state, _sequence(row, number))

    # -- texts --

    def _open_text(self, row: ProblemRow, level: int, now: datetime, facts: Facts) -> tuple[str, str]:
        if level == 1:
            return row.title, row.text
        if row.kind in LEVEL_2_AT_ONCE:
            return row.title, self._with_contacts(row.text)
        in_a_row = (notice_text("escalated.in_a_row", count=facts.failed_in_a_row)
                    if row.kind in RUN_KINDS and facts.failed_in_a_row > 1 else "")
        open_for = now - _open_since(row, facts)
        # Raised the moment it opened (no earlier run to date it from): "0 minutes, not yet solved" would be unfair.
        template = "escalated" if open_for >= timedelta(minutes=1) else "escalated.now"
        return (notice_title("escalated", row.kind, self._unit, self._what(row)),
                self._with_contacts(notice_text(template, unit=self._unit, in_a_row=in_a_row, text=row.text,
                                                open_for=duration_text(open_for))))

    def _reminder_text(self, row: ProblemRow, level: int, number: int, now: datetime,
                       facts: Facts) -> tuple[str, str]:
        # Never the open text again: the platform delivers the same content to a person once a day.
        open_for = duration_text(now - _open_since(row, facts))
        if level == 2:  # level 2 cannot run syncd on the unit's server: whom to call there instead
            return (notice_title("reminder", row.kind, self._unit, self._what(row)),
                    self._with_contacts(notice_text("reminder.higher", unit=self._unit, number=number,
                                                    open_for=open_for, text=row.text)))
        return (notice_title("reminder", row.kind, self._unit, self._what(row)),
                notice_text("reminder", number=number, open_for=open_for, text=row.text, key=row.key,
                            link=console_link(self._console, "/")))

    def _what(self, row: ProblemRow) -> str:
        """The problem's name as its open notice's title gave it (通讯录服务不可用 for an outage)."""
        prefix = NOTICE_TITLE_PREFIX.format(unit=self._unit)
        return row.title.removeprefix(prefix) if row.title.startswith(prefix) else PROBLEM_TITLES[row.kind]

    def _with_contacts(self, text: str) -> str:
        """A level-2 text with the unit admins to call, as configured."""
        return f"{text}\n{notice_text('contacts', contacts=self._contacts)}" if self._contacts else text

    def _resolved_text(self, row: ProblemRow) -> tuple[str, str]:
        opened, resolved = aware(row.opened_at), aware(row.resolved_at or row.opened_at)
        return (notice_title("resolved", row.kind, self._unit, self._what(row)),
                notice_text("resolved", unit=self._unit, what=self._what(row), key=row.key,
                            opened=self._local(opened), resolved=self._local(resolved),
                            duration=duration_text(resolved - opened)))

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class _Never:
    delivered: bool = False


_NEVER = _Never()


def _sequence(row: ProblemRow, number: int) -> str:
    """What a notice's id derives from besides unit, level, key and state: the problem's token and the number."""
    if row.token is None:  # made before migration 0004: its notices went out under these ids
        return str(row.id * SEQUENCE_STRIDE + number)
    return f"{row.token}:{number}"


def _open_since(row: ProblemRow, facts: Facts) -> datetime:
    """Since when a problem has lasted: a failing run's streak may have begun before its problem opened
    (a daemon restarted mid-streak, runs by hand before the daemon ran), and then it is dated from its first run."""
    opened = aware(row.opened_at)
    if row.kind in RUN_KINDS and facts.failing and facts.failing_since is not None:
        return min(opened, facts.failing_since)
    return opened


def _maybe(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")

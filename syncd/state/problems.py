"""The escalation engine's database access: problems, notice attempts, and the run facts it reads.

Kept beside the store rather than in it: only the escalation engine and the views of it
(`syncd status`, `GET /api/v1/escalations`, `syncd ack`) use these tables. Every function is one
short transaction on `store.engine`; none is held across a send.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from syncd.state.models import DepartmentLink, JournalEntry, NoticeRow, PersonLink, ProblemRow, Run
from syncd.state.store import StateStore, aware

# Whole-unit cycles, as `StateStore.last_unit_run` counts them: not a freeze, a scoped resync or a dry run.
_NOT_CYCLES = ("freeze", "unfreeze")
FAILED_OUTCOMES = ("failed", "partial", "crashed")
# How far back a run of failures is counted: enough for any sensible failed_runs_before_escalation.
_IN_A_ROW_LOOKBACK = 100


@dataclass(frozen=True, slots=True)
class Attempts:
    """What was tried of one notice id: whether a channel delivered it, and when it was last tried."""

    delivered: bool
    last_tried: datetime
    level: int = 1
    state: str = "open"


@dataclass(frozen=True, slots=True)
class FailedEntry:
    """A change of the latest run that did not land: which, and why (category and message)."""

    kind: str
    subject: str
    category: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Move:
    """A person who transferred or left, as journaled when the directory took the change."""

    kind: str  # transfer | transfer_out | leave
    employee_id: str
    department: str | None  # the department they left
    to_department: str | None  # a transfer's new department
    status: str | None = None  # a leave's 人员状态 (退休, 离职, 死亡), when HR gave one


class Problems:
    """Problems and notice attempts in the state database."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._session = sessionmaker(store.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One short transaction (rows stay readable after it)."""
        with self._session.begin() as session:
            yield session

    # -- problems ----------------------------------------------------------------------------

    def open_rows(self, session: Session | None = None) -> list[ProblemRow]:
        """Open problems, oldest first."""
        query = select(ProblemRow).where(ProblemRow.resolved_at.is_(None)).order_by(ProblemRow.id)
        if session is not None:
            return list(session.scalars(query))
        with self._session() as own:
            return list(own.scalars(query))

    def resolved_since(self, since: datetime, exclude_kind: str) -> list[ProblemRow]:
        """Problems resolved at or after `since` (except one kind), oldest first."""
        with self._session() as session:
            return list(session.scalars(select(ProblemRow).where(
                ProblemRow.resolved_at >= utc(since), ProblemRow.kind != exclude_kind).order_by(ProblemRow.id)))

    def by_key(self, key: str) -> ProblemRow | None:
        """The latest problem with this key, open or not."""
        with self._session() as session:
            return session.scalars(select(ProblemRow).where(ProblemRow.key == key)
                                   .order_by(ProblemRow.id.desc()).limit(1)).first()

    def add(self, row: ProblemRow) -> ProblemRow:
        """Store a new problem row; return it with its id."""
        with self._session.begin() as session:
            session.add(row)
            session.flush()
        return row

    def acknowledge(self, key: str, by: str, now: datetime) -> bool:
        """Acknowledge the open problem with `key` (the first acknowledgement stands); False when none is open."""
        with self._session.begin() as session:
            row = session.scalars(select(ProblemRow).where(
                ProblemRow.key == key, ProblemRow.resolved_at.is_(None))).first()
            if row is None:
                return False
            if row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = utc(now), by[:128]
            return True

    def noticed(self, problem_id: int, now: datetime, *, reminders: int | None = None,
                escalated: bool = False) -> None:
        """A notice of the problem was delivered at `now`: the reminder count, and whether level 2 was told."""
        values: dict[str, Any] = {"last_notice_at": utc(now)}
        if reminders is not None:
            values["reminders"] = reminders
        if escalated:
            values["escalated_at"] = utc(now)
        with self._session.begin() as session:
            session.execute(update(ProblemRow).where(ProblemRow.id == problem_id).values(**values))

    def open_counts(self) -> dict[tuple[int, str], int]:
        """Open problems by (level, kind): the `syncd_open_problems` gauge."""
        with self._session() as session:
            rows = session.execute(select(ProblemRow.level, ProblemRow.kind, func.count()).where(
                ProblemRow.resolved_at.is_(None)).group_by(ProblemRow.level, ProblemRow.kind))
            return {(level, kind): count for level, kind, count in rows}

    def latest(self, resolved: int) -> tuple[list[ProblemRow], list[ProblemRow], dict[int, list[NoticeRow]]]:
        """Open problems, the latest `resolved` resolved ones, and every notice attempt of both."""
        with self._session() as session:
            open_rows = self.open_rows(session)
            closed = list(session.scalars(select(ProblemRow).where(ProblemRow.resolved_at.is_not(None))
                                          .order_by(ProblemRow.resolved_at.desc(), ProblemRow.id.desc())
                                          .limit(resolved)))
            ids = [row.id for row in (*open_rows, *closed)]
            notices: dict[int, list[NoticeRow]] = {}
            if ids:
                for notice in session.scalars(select(NoticeRow).where(NoticeRow.problem_id.in_(ids))
                                              .order_by(NoticeRow.id)):
                    notices.setdefault(notice.problem_id, []).append(notice)
            return open_rows, closed, notices

    # -- notices -----------------------------------------------------------------------------

    def attempts(self, problem_id: int) -> dict[str, Attempts]:
        """Notice id → what was tried of it, for one problem."""
        found: dict[str, Attempts] = {}
        with self._session() as session:
            rows = session.execute(select(NoticeRow.notice_id, NoticeRow.ok, NoticeRow.sent_at, NoticeRow.level,
                                          NoticeRow.state).where(NoticeRow.problem_id == problem_id))
            for notice_id, ok, sent_at, level, state in rows:
                before = found.get(notice_id)
                sent = aware(sent_at)
                found[notice_id] = Attempts(bool(ok) or (before is not None and before.delivered),
                                            sent if before is None else max(before.last_tried, sent), level, state)
        return found

    def record_attempts(self, problem_id: int, level: int, state: str, notice_id: str,
                        deliveries: Iterable[tuple[str, bool, str]], now: datetime) -> None:
        """Keep every channel's attempt at one notice: (channel, ok, error)."""
        with self._session.begin() as session:
            session.add_all(NoticeRow(problem_id=problem_id, level=level, state=state, notice_id=notice_id,
                                      channel=channel, ok=ok, error=error or None, sent_at=utc(now))
                            for channel, ok, error in deliveries)

    # -- what the runs and the journal say ---------------------------------------------------

    def failed_streak(self) -> tuple[int, datetime | None]:
        """How many of the latest finished whole-unit runs failed (or partly failed, or crashed) in a row, and
        when the first of them started (None when the latest did not fail)."""
        with self._session() as session:
            runs = session.execute(select(Run.outcome, Run.started_at).where(
                Run.scope == "all", Run.dry_run.is_(False), Run.trigger.not_in(_NOT_CYCLES),
                Run.finished_at.is_not(None)).order_by(Run.started_at.desc()).limit(_IN_A_ROW_LOOKBACK))
            count, since = 0, None
            for outcome, started in runs:
                if outcome not in FAILED_OUTCOMES:
                    break
                count, since = count + 1, aware(started)
            return count, since

    def failed_entries(self, run_id: str) -> list[FailedEntry]:
        """The changes of a run that failed, in plan order."""
        with self._session() as session:
            rows = session.execute(select(JournalEntry.kind, JournalEntry.subject, JournalEntry.error_category,
                                          JournalEntry.error_message).where(
                JournalEntry.run_id == run_id, JournalEntry.state == "failed").order_by(JournalEntry.seq))
            return [FailedEntry(kind, subject, category, message or "") for kind, subject, category, message in rows]

    def held_entries(self, run_ids: Iterable[str]) -> dict[str, list[FailedEntry]]:
        """Run id → its changes held for a decision (not those only waiting on one), in plan order."""
        wanted = list(run_ids)
        found: dict[str, list[FailedEntry]] = {}
        if not wanted:
            return found
        with self._session() as session:
            rows = session.execute(select(JournalEntry.run_id, JournalEntry.kind, JournalEntry.subject,
                                          JournalEntry.error_category, JournalEntry.error_message).where(
                JournalEntry.run_id.in_(wanted), JournalEntry.state == "held",
                JournalEntry.error_category != "waiting").order_by(JournalEntry.run_id, JournalEntry.seq))
            for run_id, kind, subject, category, message in rows:
                found.setdefault(run_id, []).append(FailedEntry(kind, subject, category, message or ""))
        return found

    def moves(self, start: datetime, end: datetime) -> list[Move]:
        """People whose transfer or departure the directory took in [start, end), oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(JournalEntry.kind, JournalEntry.subject, JournalEntry.change, PersonLink.department)
                .outerjoin(PersonLink, PersonLink.employee_id == JournalEntry.subject)
                .where(JournalEntry.kind.in_(("transfer", "transfer_out", "leave")), JournalEntry.state == "done",
                       JournalEntry.updated_at >= utc(start), JournalEntry.updated_at < utc(end))
                .order_by(JournalEntry.updated_at, JournalEntry.id))
            moves = []
            for kind, subject, change, linked_department in rows:
                if kind == "transfer":
                    moves.append(Move(kind, subject, _text(change.get("from_department")),
                                      _text(change.get("department"))))
                else:  # the link keeps the department of the main position they left
                    moves.append(Move(kind, subject, linked_department, None, _text(change.get("reason"))))
            return moves

    def organization_codes(self) -> list[str]:
        """The organisation codes of the unit's linked departments."""
        with self._session() as session:
            return list(session.scalars(select(DepartmentLink.organization_code)))

    def department_names(self, ids: Iterable[str]) -> dict[str, str]:
        """HR department id → the name last pushed to the directory (departments are not personal data)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self._session() as session:
            rows = session.execute(select(DepartmentLink.hr_id, DepartmentLink.pushed).where(
                DepartmentLink.hr_id.in_(wanted)))
            return {hr_id: str(pushed["name"]) for hr_id, pushed in rows if pushed and pushed.get("name")}


def utc(moment: datetime) -> datetime:
    """`moment` in UTC, as every time is stored: SQLite keeps the wall-clock fields and drops the zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time with a zone is needed")
    return moment.astimezone(UTC)


def _text(value: object) -> str | None:
    return None if value is None else str(value)

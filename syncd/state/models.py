"""The state tables (SQLAlchemy 2.0). Schema changes are Alembic migrations in `migrations/`."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every state table."""


class DepartmentLink(Base):
    """An HR department linked to its organisation in the directory, with what was last pushed."""

    __tablename__ = "department_links"

    hr_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_hr_id: Mapped[str | None] = mapped_column(String(64))
    pushed: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | retired
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PersonLink(Base):
    """An HR person (工号) linked to a directory employee, with the fields last pushed."""

    __tablename__ = "person_links"

    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_code: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(64))  # HR department id of the main position
    organization_code: Mapped[str] = mapped_column(String(64))
    pushed: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | inactive
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Run(Base):
    """One cycle: how it was triggered, when, how it ended, what it counted."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_started_at", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # incremental | full
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[str] = mapped_column(String(80), default="all")  # all | employee ID | department ID
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))  # success | partial | failed | held
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class JournalEntry(Base):
    """One change of one run: planned → sent → done | failed | held, with its deadline."""

    __tablename__ = "journal"
    __table_args__ = (Index("ix_journal_state", "state"), Index("ix_journal_subject", "subject"),
                      Index("ix_journal_kind_subject", "kind", "subject"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # position in the plan
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    change: Mapped[dict[str, object]] = mapped_column(JSON)  # what to do, so another run can finish it
    state: Mapped[str] = mapped_column(String(16), default="planned")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_category: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ResyncRequestRow(Base):
    """A manual resync asked for by the CLI or the API: queued → running → done | failed."""

    __tablename__ = "resync_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # employee | department | all
    subject: Mapped[str | None] = mapped_column(String(64))
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)


class ServiceState(Base):
    """Small named values the service keeps between cycles: the source's change token, the last decision."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProblemRow(Base):
    """A problem the escalation engine told administrators of: open until it clears (DESIGN.md §7).

    `level` is the highest level it has reached (2 from the start for an auth failure or an overdue
    change); `escalated_at` is when level 2 was told. A key names at most one open problem.
    """

    __tablename__ = "problems"
    __table_args__ = (Index("uq_problems_open_key", "key", unique=True, sqlite_where=sql_text("resolved_at IS NULL"),
                            postgresql_where=sql_text("resolved_at IS NULL")),
                      Index("ix_problems_resolved_at", "resolved_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    level: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    subjects: Mapped[list[str]] = mapped_column(JSON, default=list)
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_notice_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What its notice ids derive from: random, never the row id, which a restored state hands out
    # again (the gateway would refuse the new problem's notices as repeats of the lost ones).
    # None on problems made before migration 0004, whose notices keep their row-id-derived ids.
    token: Mapped[str | None] = mapped_column(String(32), default=lambda: secrets.token_hex(16))


class NoticeRow(Base):
    """One attempt to send one notice of a problem on one channel, and its result."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # open | reminder | resolved
    notice_id: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

"""The state store: links, runs and the journal, behind a small API the engine calls.

Each method is its own short transaction: the engine never holds one open across an HTTP call,
and a change's link is written only after the directory accepted it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError as AlembicError
from sqlalchemy import Connection, Engine, Table, create_engine, event, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from syncd.domain.model import (
    REPEATING_PERSON_FIELDS,
    Change,
    LinkedDepartment,
    LinkedPerson,
    LinkState,
    Person,
    PushedAsHR,
    PushedFields,
    Snapshot,
    fingerprint,
)
from syncd.domain.scope import ResyncRequest, Scope
from syncd.state import MigrationFailed, StateTooNew, StateUnavailable
from syncd.state.models import DepartmentLink, JournalEntry, PersonLink, ResyncRequestRow, Run, ServiceState

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite hands back naive UTC, PostgreSQL aware times."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by the service user only (mode 0600)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite starts transactions itself, and not before DDL: a migration that failed half-way
    # would stay half-applied. SQLAlchemy's recipe: the driver starts none, `_sqlite_begin` does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL keeps readers (status, approve) from blocking a running cycle; NORMAL sync is crash-safe in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE for the transactions that read and then write (decide, claim a resync): deferred, they
    # fail at once with "database is locked" when another connection committed in between; taking the
    # write lock up front makes them wait (busy timeout) instead. Reads stay deferred: they take no lock.
    immediate = connection.get_execution_options().get(_IMMEDIATE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# Freeze and unfreeze run beside cycles (a lost phone cannot wait), and an accepted onboarding review
# only stores links: recovery leaves them alone, and none of them is the unit's last cycle.
_OUTSIDE_CYCLES = ("freeze", "unfreeze", "onboard")
_LOCK_KEY = 0x73796E6364  # "syncd": the advisory lock every node contends for
# A change in one of these states needs nothing more; any other is still owed to the directory.
CLOSED_STATES = ("done", "superseded", "rejected")
DECIDED_AT = "decisions.last"
_IMMEDIATE = "syncd_sqlite_immediate"
_MIGRATION_LOCK_KEY = _LOCK_KEY + 2  # beside the cycle lock's and the daemon's
_LINK_BATCH = 5000  # person links fetched at a time
_REPEATING_PUSHED = (*REPEATING_PERSON_FIELDS, "order")


MAX_QUEUED_RESYNCS = 50  # resyncs that may wait at once; beyond it a request is refused (ask again later)


class Busy(Exception):
    """Another cycle holds the lock."""


class ResyncQueueFull(Exception):
    """`MAX_QUEUED_RESYNCS` resyncs wait already: ask again once some have run."""


@dataclass(frozen=True, slots=True)
class UnfinishedEntry:
    """A journal entry a dead run left `planned` or `sent`."""

    id: int
    run_id: str
    kind: str
    subject: str
    state: str
    fields: dict[str, str]
    department: str | None


@dataclass(frozen=True, slots=True)
class JournaledChange:
    """One journal entry as the Article 9 figures read it: when detected, due, last updated, and whether still owed."""

    kind: str
    subject: str
    state: str
    detected_at: datetime
    due_at: date
    updated_at: datetime
    owed: bool  # not in the directory yet and still planned (what `StateStore.overdue` counts once past due)


def _engine(url: str) -> Engine:
    # PostgreSQL may restart under a running daemon: a pooled connection is tested before use (one
    # that died with the old server is replaced), and a server that does not answer fails in seconds.
    options: dict[str, Any] = ({"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}}
                               if make_url(url).get_backend_name() == "postgresql" else {})
    engine = create_engine(url, future=True, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        name_sessions(engine)
    return engine


_SESSION_TAG: tuple[int, str] = (0, "")  # (pid, a random tag): a fork gets its own


def session_name() -> str:
    """The `application_name` of every PostgreSQL session of this process: `syncd <tag> <pid> <host>`.

    A node that takes the lead ends every session of the leader before it by this name (recorded
    with the leader): a leader frozen inside a transaction would otherwise hold its row locks until
    the server noticed. The random tag keeps a restarted process with the same pid and host (pid 1
    in a container) from being taken for the one before it.
    """
    global _SESSION_TAG
    if _SESSION_TAG[0] != os.getpid():
        _SESSION_TAG = (os.getpid(), uuid.uuid4().hex[:12])
    pid, tag = _SESSION_TAG
    return f"syncd {tag} {pid} {socket.gethostname()}".encode()[:63].decode(errors="ignore")  # the server keeps 63


def name_sessions(engine: Engine) -> None:
    """Give each new session of `engine` this process's `session_name` (looked up at connect)."""

    def named(dialect: Any, record: Any, args: Any, params: dict[str, Any]) -> None:
        params["application_name"] = session_name()

    event.listen(engine, "do_connect", named)


def _alembic() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def unavailable(engine: Engine, exc: SQLAlchemyError) -> StateUnavailable:
    """What went wrong opening the state database, as an operator can act on it (never the password)."""
    url = engine.url
    where = url.database if url.get_backend_name() == "sqlite" else f"{url.host}:{url.port or 5432}/{url.database}"
    original = getattr(exc, "orig", None)
    message = str(original or exc).strip()
    detail = message.splitlines()[0][:300] if message else type(exc).__name__
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in ("28P01", "28000") or "password authentication failed" in str(original):
        return StateUnavailable(f"state.url / state.password_file: the state database {where} refused the "
                                f"password of user {url.username!r} ({detail})", refused=True)
    return StateUnavailable(f"state.url: the state database {where} cannot be reached ({detail})", refused=False)


def _upgrade(connection: Connection, commit: bool, revision: Callable[[], str]) -> tuple[str | None, str]:
    """Migrate to the newest revision in one transaction, committed or (a trial) rolled back:
    (the revision before, the newest). StateTooNew / MigrationFailed leave the database as it was."""
    config = _alembic()
    head = ScriptDirectory.from_config(config).get_current_head() or "none"
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    try:
        transaction = connection.begin()
        try:
            if connection.dialect.name == "postgresql":  # nodes starting together migrate one after the other
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in known:
                raise StateTooNew(f"the state database is at revision {current}, which this release does not "
                                  f"know (its newest is {head}): a newer release wrote it")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        except BaseException:
            transaction.rollback()
            raise
        if commit:
            transaction.commit()
        else:
            transaction.rollback()
    except (SQLAlchemyError, AlembicError) as exc:
        # One transaction: the database is as it was. Say so, and from which revision.
        raise MigrationFailed(f"the state database could not be migrated to this release "
                              f"(it stays at revision {revision()}): {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:300]}") from exc
    return current, head


def check_state(url: str) -> str:
    """What `syncd run` will find in the state database, said in one line; nothing is changed.

    A database behind this release is migrated in a transaction that is rolled back, so a migration
    that would fail at start fails here. Raises StateUnavailable, StateTooNew or MigrationFailed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not Path(parsed.database).exists():
        return f"no state yet: {parsed.database} is created at the first start"
    engine = _engine(url)
    try:
        try:
            connection = engine.connect()
        except SQLAlchemyError as exc:
            raise unavailable(engine, exc) from exc
        with connection:
            current, head = _upgrade(connection, commit=False, revision=lambda: "unchanged")
    finally:
        engine.dispose()
    if current == head:
        return f"the state database is at this release's revision {head}"
    return f"the state database is at revision {current or 'none'}; syncd run migrates it to {head} (tried, undone)"


class StateStore:
    """Links, runs and the change journal in one database (SQLite by default, PostgreSQL for several nodes)."""

    def __init__(self, url: str) -> None:
        _private_sqlite_file(url)
        self.engine: Engine = _engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # Read-then-write transactions (SQLite: BEGIN IMMEDIATE; other databases: unchanged).
        self._updating = sessionmaker(self.engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False)
        self.migrate()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the cycle lock: never two cycles at once, on one node or (PostgreSQL) several.

        SQLite: an flock on a file beside the database. PostgreSQL: a session advisory lock on a
        connection held for the cycle; whoever holds it is the leader.
        """
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                yield
                return
            fd = os.open(f"{url.database}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise Busy("another syncd cycle is running on this state database") from None
                yield
            finally:
                os.close(fd)  # closing releases the flock
            return
        with self.engine.connect() as connection:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}).scalar()
            # A session lock outlives the transaction; committing now keeps the connection from
            # sitting "idle in transaction" for the whole cycle, where a server timeout would kill it
            # and silently release the lock.
            connection.commit()
            if not got:
                raise Busy("another syncd node holds the cycle lock")
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                connection.commit()

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as exc:
            raise unavailable(self.engine, exc) from exc
        with connection:
            _upgrade(connection, commit=True, revision=self._revision)

    def _revision(self) -> str:
        """The schema revision the database is at, or "none" (a new database)."""
        try:
            with self.engine.connect() as connection:
                return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar() or "none")
        except SQLAlchemyError:
            return "none"

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # -- links -------------------------------------------------------------------------------

    def links(self, people: Iterable[str] | None = None, like: Snapshot | None = None) -> LinkState:
        """Every department link and the person links (all, or only these employee ids), as reconcile's input.

        `like` is the HR snapshot the links are read to be reconciled with: where a link holds the same
        text as its person (the id, the pushed name and mobile …), it holds the person's, not a copy.
        """
        state = LinkState()
        departments = select(DepartmentLink.hr_id, DepartmentLink.organization_code, DepartmentLink.parent_hr_id,
                             DepartmentLink.pushed, DepartmentLink.status)
        query = select(
            PersonLink.employee_id, PersonLink.employee_code, PersonLink.account_id, PersonLink.department,
            PersonLink.organization_code, PersonLink.pushed, PersonLink.status, PersonLink.frozen)
        if people is not None:
            query = query.where(PersonLink.employee_id.in_(list(people)))
        # A million links must fit beside a million HR records: rows are streamed, not buffered, and
        # text that repeats (departments, labels, field names, what HR holds too) is held once.
        texts = _SharedTexts(like)
        with self.engine.connect() as connection:
            for hr_id, organization_code, parent, pushed, status in connection.execute(departments):
                state.departments[hr_id] = LinkedDepartment(organization_code, parent, pushed, status)
            rows = connection.execution_options(yield_per=_LINK_BATCH).execute(query)
            for employee_id, code, account_id, department, organization_code, pushed, status, frozen in rows:
                person = texts.person(employee_id)
                if person is None:
                    held: Mapping[str, str] = PushedFields(texts.repeating(pushed))
                else:
                    employee_id = person.employee_id
                    held = _alike(pushed, person, texts)
                state.people[employee_id] = LinkedPerson(
                    code, account_id, texts.once(department), texts.once(organization_code), held,
                    texts.once(status), frozen)
        return state

    def _upsert(self, connection: Connection, table: Table, key: str, values: dict[str, Any],
                keep: tuple[str, ...] = ()) -> None:
        """Insert a link row or replace the one with the same key, in one statement; `keep` columns
        are written on insert only."""
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(table).values(**values)
        connection.execute(statement.on_conflict_do_update(
            index_elements=[key], set_={k: v for k, v in values.items() if k != key and k not in keep}))

    def _department_row(self, hr_id: str, link: LinkedDepartment) -> dict[str, Any]:
        return {"hr_id": hr_id, "organization_code": link.organization_code, "parent_hr_id": link.parent,
                "pushed": dict(link.pushed), "status": link.status, "updated_at": _now()}

    def _person_row(self, employee_id: str, link: LinkedPerson) -> dict[str, Any]:
        return {"employee_id": employee_id, "employee_code": link.employee_code, "account_id": link.account_id,
                "department": link.department, "organization_code": link.organization_code,
                "pushed": dict(link.pushed), "status": link.status, "frozen": link.frozen, "updated_at": _now()}

    def set_account_id(self, employee_id: str, account_id: int) -> None:
        """Complete a person's link with the login account the directory holds for them."""
        with self.engine.begin() as connection:
            connection.execute(update(PersonLink).where(PersonLink.employee_id == employee_id).values(
                account_id=account_id, updated_at=_now()))

    def set_frozen(self, employee_id: str, frozen: bool, entry_id: int) -> None:
        """Record a freeze or unfreeze on the link and close its journal entry."""
        with self.engine.begin() as connection:
            connection.execute(update(PersonLink).where(PersonLink.employee_id == employee_id).values(
                frozen=frozen, updated_at=_now()))
            connection.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(
                state="done", updated_at=_now()))

    # -- runs and journal --------------------------------------------------------------------

    def start_run(self, trigger: str, mode: str, dry_run: bool, scope: str = "all") -> str:
        """Record a new run and return its id."""
        run_id = uuid.uuid4().hex[:12]
        with self._session.begin() as session:
            session.add(Run(id=run_id, trigger=trigger, mode=mode, dry_run=dry_run, started_at=_now(), counts={},
                            scope=scope))
        return run_id

    def finish_run(self, run_id: str, outcome: str, counts: dict[str, int]) -> None:
        """Record how a run ended."""
        with self._session.begin() as session:
            session.execute(update(Run).where(Run.id == run_id).values(
                finished_at=_now(), outcome=outcome, counts=counts))

    def journal_plan(self, run_id: str, changes: Iterable[Change], detected_at: datetime,
                     due: date) -> list[tuple[int, date]]:
        """Journal every change of a plan as planned; return their entry ids and due dates in plan order.

        A change still open from an earlier run (failed, interrupted, held) keeps the detection time
        and due date it was first journaled with: the three working days run from when HR changed,
        not from the latest retry.
        """
        changes = list(changes)
        now = _now()
        first = self._first_detected({(c.kind.value, c.subject) for c in changes})
        with self._session.begin() as session:
            entries = [
                JournalEntry(run_id=run_id, seq=seq, kind=change.kind.value, subject=change.subject,
                             change=_change_payload(change), state="planned", attempts=0,
                             detected_at=first.get((change.kind.value, change.subject), (detected_at, due))[0],
                             due_at=first.get((change.kind.value, change.subject), (detected_at, due))[1],
                             updated_at=now)
                for seq, change in enumerate(changes)
            ]
            session.add_all(entries)
            session.flush()
            return [(entry.id, entry.due_at) for entry in entries]

    def _first_detected(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[datetime, date]]:
        """(kind, subject) → (detected, due) of the latest journal entry of each that is still owed: left
        open by the latest whole-unit run, or held. A failure a later complete run no longer planned
        (HR took the change back) is not owed, so a new change never inherits its date."""
        found: dict[tuple[str, str], tuple[int, str, datetime, date]] = {}
        subjects = sorted({subject for _, subject in keys})
        last = self.last_unit_run()
        owed = JournalEntry.state.in_(("held", "approved"))
        if last is not None:
            owed = owed | (JournalEntry.run_id == last.id)
        with self._session() as session:
            for start in range(0, len(subjects), 500):
                rows = session.execute(select(
                    JournalEntry.id, JournalEntry.kind, JournalEntry.subject, JournalEntry.state,
                    JournalEntry.detected_at, JournalEntry.due_at).where(
                    JournalEntry.subject.in_(subjects[start:start + 500]), owed))
                for entry_id, kind, subject, state, detected, due in rows:
                    key = (kind, subject)
                    if key in keys and (key not in found or found[key][0] < entry_id):
                        found[key] = (entry_id, state, detected, due)
        return {key: (detected, due) for key, (_, state, detected, due) in found.items()
                if state not in CLOSED_STATES}

    def mark_sent(self, entry_id: int) -> None:
        """The change is about to be sent: a crash from here on needs a check before any resend."""
        with self.engine.begin() as connection:
            connection.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(
                state="sent", attempts=JournalEntry.attempts + 1, updated_at=_now()))

    def mark_done(self, entry_id: int, department: tuple[str, LinkedDepartment] | None = None,
                  person: tuple[str, LinkedPerson] | None = None) -> None:
        """The directory accepted the change: write its link and close the entry in one transaction."""
        # Core statements, not ORM objects: this runs once per change and must stay cheap.
        with self.engine.begin() as connection:
            if department is not None:
                self._upsert(connection, DepartmentLink.__table__, "hr_id", self._department_row(*department))
            if person is not None:
                # `frozen` belongs to freeze/unfreeze alone: a cycle that read the link before a freeze
                # must not write the old value back.
                self._upsert(connection, PersonLink.__table__, "employee_id", self._person_row(*person),
                             keep=("frozen",))
            connection.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(
                state="done", error_category=None, error_message=None, updated_at=_now()))

    def store_confirmed(self, run_id: str, changes: Sequence[Change], departments: Mapping[str, LinkedDepartment],
                        people: Mapping[str, LinkedPerson], moment: datetime) -> None:
        """Links an operator confirmed (`syncd onboard --accept`): journaled as done and stored in one
        transaction, so that either all of them are stored or none."""
        with self.engine.begin() as connection:
            rows = [{"run_id": run_id, "seq": seq, "kind": change.kind.value, "subject": change.subject,
                     "change": _change_payload(change), "state": "done", "attempts": 0, "detected_at": moment,
                     "due_at": moment.date(), "updated_at": moment} for seq, change in enumerate(changes)]
            for start in range(0, len(rows), 1000):
                connection.execute(JournalEntry.__table__.insert(), rows[start:start + 1000])
            for hr_id, department in departments.items():
                self._upsert(connection, DepartmentLink.__table__, "hr_id", self._department_row(hr_id, department))
            for employee_id, person in people.items():
                self._upsert(connection, PersonLink.__table__, "employee_id", self._person_row(employee_id, person),
                             keep=("frozen",))

    def mark_failed(self, entry_id: int, category: str, message: str, state: str = "failed") -> None:
        """The change did not land (or waits on another): keep why."""
        with self._session.begin() as session:
            session.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(
                state=state, error_category=category, error_message=message[:2000], updated_at=_now()))

    def mark_not_attempted(self, entry_ids: Sequence[int], message: str) -> None:
        """The run stopped (quarantine, auth, SIGTERM) before these changes were sent: one statement per
        thousand, so stopping never costs a write per change."""
        now = _now()
        with self.engine.begin() as connection:
            for start in range(0, len(entry_ids), 1000):
                batch = list(entry_ids[start:start + 1000])
                connection.execute(update(JournalEntry).where(JournalEntry.id.in_(batch)).values(
                    state="failed", error_category="stopped", error_message=message[:2000], updated_at=now))

    def _decisions(self, states: tuple[str, ...]) -> list[tuple[str, str, JournalEntry]]:
        """(fingerprint, run id, entry) of entries in these states that hold for a decision."""
        with self._session() as session:
            entries = session.scalars(select(JournalEntry).where(
                JournalEntry.state.in_(states), JournalEntry.error_category.is_distinct_from("waiting")))
            return [(_fingerprint(e), e.run_id, e) for e in entries]

    def approvals(self) -> frozenset[str]:
        """Fingerprints of held changes an operator approved that no run has applied yet."""
        return frozenset(fp for fp, _, _ in self._decisions(("approved",)))

    def pending_holds(self) -> dict[str, str]:
        """Fingerprint → run id of changes held for a decision nobody has made yet."""
        return {fp: run_id for fp, run_id, _ in self._decisions(("held",))}

    def settle_decisions(self, planned: set[str], applied: set[str], run_id: str,
                         within: frozenset[str] | None = None) -> None:
        """Close holds and approvals the current plan has moved past.

        An approved change this run applied is done. A held or approved change that is no longer
        in the plan (HR fixed the data, or the change is now a different one) is superseded, so a
        decision never outlives the change it was about. A change that only waited on a held one is
        journaled again by every run that still holds it, so earlier runs' waiting entries close too.
        A scoped run (`within`: its subjects) planned nothing outside its scope, so it settles nothing there.
        """
        closing = [(e.id, fp in applied) for fp, _, e in self._decisions(("held", "approved"))
                   if (within is None or e.subject in within) and (fp in applied or fp not in planned)]
        with self._session() as session:
            waiting = session.scalars(select(JournalEntry).where(
                JournalEntry.state == "held", JournalEntry.error_category == "waiting", JournalEntry.run_id != run_id))
            closing += [(e.id, _fingerprint(e) in applied) for e in waiting if within is None or e.subject in within]
        if not closing:
            return
        with self._session.begin() as session:
            for entry_id, was_applied in closing:
                session.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(
                    state="done" if was_applied else "superseded",
                    error_message=f"applied by run {run_id}" if was_applied else f"no longer planned (run {run_id})",
                    updated_at=_now()))

    def supersede_holds(self, fingerprints: set[str], run_id: str, take_in: bool = False) -> int:
        """Earlier runs' undecided holds of these changes are superseded by `run_id`, which holds them all.

        `take_in` (a scoped run, whose plan holds only its part): every other undecided hold of the
        earlier runs, and what waits on them, is journaled into `run_id` too, as it was detected and
        due, so one run is decided and not two. Returns how many holds were taken in.
        """
        now = _now()
        # One read-then-write transaction (SQLite: BEGIN IMMEDIATE), the rows locked (PostgreSQL): an
        # approval made meanwhile waits for it, then finds nothing left to approve in the earlier run,
        # rather than being overwritten here or leaving a copy still held.
        with self._updating.begin() as session:
            earlier = list(session.scalars(select(JournalEntry).where(
                JournalEntry.state == "held", JournalEntry.run_id != run_id).order_by(JournalEntry.id)
                .with_for_update()))
            held_again = {e.id for e in earlier if _fingerprint(e) in fingerprints}
            taken = [e for e in earlier if take_in and e.id not in held_again]
            seq = session.scalar(select(func.max(JournalEntry.seq)).where(JournalEntry.run_id == run_id)) or 0
            for n, entry in enumerate(taken, start=seq + 1):
                session.add(JournalEntry(run_id=run_id, seq=n, kind=entry.kind, subject=entry.subject,
                                         change=entry.change, state="held", attempts=0,
                                         error_category=entry.error_category, error_message=entry.error_message,
                                         detected_at=entry.detected_at, due_at=entry.due_at, updated_at=now))
            superseded = [*held_again, *(e.id for e in taken)]
            if superseded:
                session.execute(update(JournalEntry).where(
                    JournalEntry.id.in_(superseded), JournalEntry.state == "held").values(
                    state="superseded", error_message=f"held again with more by run {run_id}", updated_at=now))
        return sum(1 for e in taken if e.error_category != "waiting")

    def overdue(self, today: date) -> list[JournalEntry]:
        """Changes not in the directory past their due date: what the latest whole-unit run could not
        apply, and holds nobody has decided."""
        last = self.last_unit_run()
        latest = None if last is None else last.id
        with self._session() as session:
            query = select(JournalEntry).where(JournalEntry.due_at < today, (
                JournalEntry.state.in_(("held", "approved"))
                | ((JournalEntry.run_id == latest) & JournalEntry.state.not_in(CLOSED_STATES))))
            return list(session.scalars(query.order_by(JournalEntry.due_at, JournalEntry.id)))

    def journaled_changes(self, kinds: Iterable[str], since: datetime, until: datetime) -> list[JournaledChange]:
        """Every journal entry of these kinds detected in [since, until), by the unit's cycles and
        resyncs (not onboarding, a freeze or a dry run), oldest first; `owed` as `overdue` counts it."""
        last = self.last_unit_run()
        latest = None if last is None else last.id
        # Bounds in UTC, as the journal keeps its times (SQLite as text without a zone).
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        with self._session() as session:
            rows = session.execute(
                select(JournalEntry.kind, JournalEntry.subject, JournalEntry.state, JournalEntry.run_id,
                       JournalEntry.detected_at, JournalEntry.due_at, JournalEntry.updated_at)
                .join(Run, Run.id == JournalEntry.run_id)
                .where(JournalEntry.kind.in_(list(kinds)), JournalEntry.detected_at >= since,
                       JournalEntry.detected_at < until, Run.dry_run.is_(False),
                       Run.trigger.not_in(_OUTSIDE_CYCLES))
                .order_by(JournalEntry.id))
            return [JournaledChange(kind, subject, state, aware(detected), due, aware(updated),
                                    state in ("held", "approved") or (run_id == latest and state not in CLOSED_STATES))
                    for kind, subject, state, run_id, detected, due, updated in rows]

    def decide(self, run_id: str, approve: bool) -> int:
        """Approve or reject the changes a run held for approval; return how many were decided.

        Changes that only waited on a held one are not decided themselves: they follow it.
        """
        with self._updating.begin() as session:
            if session.get(Run, run_id) is None:
                raise LookupError(f"no run {run_id!r}")
            result = session.execute(update(JournalEntry).where(
                JournalEntry.run_id == run_id, JournalEntry.state == "held",
                JournalEntry.error_category != "waiting").values(
                state="approved" if approve else "rejected", updated_at=_now()))
            decided = int(result.rowcount or 0)
        if decided:
            # An incremental cycle that finds HR unchanged still runs after a decision.
            self.set_value(DECIDED_AT, _now().isoformat())
        return decided

    def held_runs(self) -> list[tuple[str, datetime, int]]:
        """Runs with changes still waiting for a decision: (run id, started, held count)."""
        with self._session() as session:
            rows = session.execute(
                select(Run.id, Run.started_at, func.count(JournalEntry.id))
                .join(JournalEntry, JournalEntry.run_id == Run.id)
                .where(JournalEntry.state == "held", JournalEntry.error_category != "waiting")
                .group_by(Run.id, Run.started_at).order_by(Run.started_at.desc()))
            return [(run_id, started, count) for run_id, started, count in rows]

    def unfinished_entries(self) -> list[UnfinishedEntry]:
        """Entries left `planned` or `sent` by runs that never finished, oldest first."""
        with self._session() as session:
            rows = session.scalars(select(JournalEntry).join(Run, Run.id == JournalEntry.run_id).where(
                JournalEntry.state.in_(("planned", "sent")), Run.finished_at.is_(None),
                Run.trigger.not_in(_OUTSIDE_CYCLES)).order_by(JournalEntry.id))
            return [UnfinishedEntry(e.id, e.run_id, e.kind, e.subject, e.state, dict(e.change.get("fields") or {}),
                                    e.change.get("department")) for e in rows]  # type: ignore[arg-type]

    def close_dead_runs(self) -> None:
        """Runs that never finished are recorded as crashed."""
        with self._session.begin() as session:
            session.execute(update(Run).where(Run.finished_at.is_(None), Run.trigger.not_in(_OUTSIDE_CYCLES)).values(
                finished_at=_now(), outcome="crashed"))

    def journal_states(self, run_id: str) -> dict[str, int]:
        """Count of entries per state for a run."""
        with self._session() as session:
            rows = session.execute(select(JournalEntry.state, func.count()).where(
                JournalEntry.run_id == run_id).group_by(JournalEntry.state))
            return {state: count for state, count in rows}

    def runs(self, limit: int = 10) -> list[Run]:
        """The latest runs, newest first."""
        with self._session() as session:
            return list(session.scalars(select(Run).order_by(Run.started_at.desc()).limit(limit)))

    def last_unit_run(self, finished: bool = True, outcomes: Sequence[str] = ()) -> Run | None:
        """The latest cycle over the whole unit (not a scoped resync, a freeze or a dry run); with
        `finished=False` also one still running or left unfinished by a crash; with `outcomes` the
        latest that ended so."""
        with self._session() as session:
            query = select(Run).where(Run.scope == "all", Run.dry_run.is_(False), Run.trigger.not_in(_OUTSIDE_CYCLES))
            if finished:
                query = query.where(Run.finished_at.is_not(None))
            if outcomes:
                query = query.where(Run.outcome.in_(outcomes))
            return session.scalars(query.order_by(Run.started_at.desc()).limit(1)).first()

    def requeue_resync(self, request_id: str) -> None:
        """Put a claimed resync back in the queue (its cycle could not take the lock)."""
        with self._session.begin() as session:
            session.execute(update(ResyncRequestRow).where(ResyncRequestRow.id == request_id).values(
                status="queued", started_at=None))

    def run(self, run_id: str) -> Run | None:
        """One run, or None."""
        with self._session() as session:
            return session.get(Run, run_id)

    # -- service state -----------------------------------------------------------------------

    def value(self, key: str) -> Any:
        """A named service value (a source's change token, the last decision), or None."""
        with self._session() as session:
            row = session.get(ServiceState, key)
            return None if row is None else row.value

    def set_value(self, key: str, value: Any) -> None:
        """Keep a named service value."""
        with self.engine.begin() as connection:
            self._upsert(connection, ServiceState.__table__, "key",
                         {"key": key, "value": value, "updated_at": _now()})

    # -- manual resyncs ----------------------------------------------------------------------

    def queue_resync(self, scope: Scope, full: bool, requested_by: str) -> ResyncRequest:
        """Queue a manual resync for the daemon (or an inline run) to pick up.

        A request identical to one still waiting (same scope, same `full`) is that one: three hundred
        clicks on 立即同步 make one cycle. ResyncQueueFull when `MAX_QUEUED_RESYNCS` wait already.
        """
        with self._updating.begin() as session:
            waiting = list(session.scalars(select(ResyncRequestRow).where(ResyncRequestRow.status == "queued")))
            for row in waiting:
                if (row.scope, row.subject, row.full) == (scope.kind, scope.value, full):
                    return _resync(row)
            if len(waiting) >= MAX_QUEUED_RESYNCS:
                raise ResyncQueueFull(f"{len(waiting)} resyncs are waiting already")
            row = ResyncRequestRow(id=uuid.uuid4().hex[:12], scope=scope.kind, subject=scope.value, full=full,
                                   status="queued", requested_by=requested_by[:128], requested_at=_now())
            session.add(row)
        return _resync(row)

    def claim_resync(self, request_id: str | None = None) -> ResyncRequest | None:
        """Take the oldest queued resync (or this one) and mark it running; None when there is none."""
        with self._updating.begin() as session:
            query = select(ResyncRequestRow).where(ResyncRequestRow.status == "queued")
            if request_id is not None:
                query = query.where(ResyncRequestRow.id == request_id)
            row = session.scalars(query.order_by(ResyncRequestRow.requested_at).limit(1)).first()
            if row is None:
                return None
            # Conditional on still being queued: two claimers never both win.
            claimed = session.execute(update(ResyncRequestRow).where(
                ResyncRequestRow.id == row.id, ResyncRequestRow.status == "queued").values(
                status="running", started_at=_now()))
            if not claimed.rowcount:
                return None
            row.status = "running"
            return _resync(row)

    def finish_resync(self, request_id: str, status: str, run_id: str | None, outcome: str | None,
                      exit_code: int | None, message: str = "") -> None:
        """Record how a resync ended (`done` when its run ran, `failed` when it could not)."""
        with self._session.begin() as session:
            session.execute(update(ResyncRequestRow).where(ResyncRequestRow.id == request_id).values(
                status=status, finished_at=_now(), run_id=run_id, outcome=outcome, exit_code=exit_code,
                message=message[:2000]))

    def resync(self, request_id: str) -> ResyncRequest | None:
        """One resync request, or None."""
        with self._session() as session:
            row = session.get(ResyncRequestRow, request_id)
            return None if row is None else _resync(row)

    def resyncs(self, limit: int = 10) -> list[ResyncRequest]:
        """Queued and running resyncs, then the latest finished ones."""
        with self._session() as session:
            rows = list(session.scalars(select(ResyncRequestRow).where(
                ResyncRequestRow.status.in_(("queued", "running"))).order_by(ResyncRequestRow.requested_at)))
            rows += session.scalars(select(ResyncRequestRow).where(
                ResyncRequestRow.status.not_in(("queued", "running"))).order_by(
                ResyncRequestRow.requested_at.desc()).limit(limit))
            return [_resync(row) for row in rows]


def _resync(row: ResyncRequestRow) -> ResyncRequest:
    return ResyncRequest(row.id, Scope(row.scope, row.subject), row.full, row.status,  # type: ignore[arg-type]
                         row.requested_by, aware(row.requested_at), row.run_id, row.outcome, row.exit_code,
                         row.message or "")


class _SharedTexts:
    """Text read for the links that is held once: what repeats from link to link, and what HR holds too."""

    def __init__(self, like: Snapshot | None) -> None:
        self._seen: dict[str, str] = {}
        self._people = like.people if like is not None else {}

    def once(self, text: str) -> str:
        """The one copy of this text."""
        return self._seen.setdefault(text, text)

    def person(self, employee_id: str) -> Person | None:
        """The HR record of this link, when a snapshot to share with was given and holds it."""
        return self._people.get(employee_id)

    def repeating(self, pushed: dict[str, str]) -> dict[str, str]:
        """The pushed fields with the values that repeat across people (labels, phones, order) held once."""
        for key in _REPEATING_PUSHED:
            value = pushed.get(key)
            if value is not None:
                pushed[key] = self._seen.setdefault(value, value)
        return pushed


def _alike(pushed: dict[str, str], person: Person, texts: _SharedTexts) -> Mapping[str, str]:
    """What was pushed, held as the person's record when it is exactly what the record pushes now (the
    common case), else with each value equal to the record's taken from it."""
    wanted = person.pushed_fields()
    if pushed == wanted and list(pushed) == list(wanted):
        return PushedAsHR(person)
    return PushedFields(texts.repeating(
        {key: shared if (shared := wanted.get(key)) == value else value for key, value in pushed.items()}))


def _fingerprint(entry: JournalEntry) -> str:
    payload = entry.change
    return fingerprint(entry.kind, entry.subject, dict(payload.get("fields") or {}),  # type: ignore[call-overload]
                       payload.get("department"), payload.get("from_department"))  # type: ignore[arg-type]


def _change_payload(change: Change) -> dict[str, object]:
    return {"fields": change.fields, "department": change.department,
            "from_department": change.from_department, "reason": change.reason}

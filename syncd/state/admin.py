"""Backup, restore and migration of the state database (`syncd state …`).

A SQLite state is copied with SQLite's online backup API: one read transaction, which in WAL mode
does not stop a running daemon, so the copy is consistent without stopping anything. PostgreSQL
has its own tools for this (`pg_dump`, `pg_restore`); syncd names the command rather than doing
their job worse. Restoring replaces the live file, so it refuses while a daemon or a cycle holds
the state, and keeps the replaced database beside it.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, DateTime, Engine, Table, delete, func, select
from sqlalchemy.engine import make_url

from syncd.state.models import Base
from syncd.state.store import MIGRATIONS, Busy, StateStore

# The daemon holds an flock on `<db>.daemon` for its lifetime, a cycle one on `<db>.lock`.
LOCKS = ((".daemon", "a running syncd daemon"), (".lock", "a running syncd cycle"))
# Rows in these make a state worth keeping: a destination holding any is never written over.
STATE_TABLES = ("runs", "journal", "person_links", "department_links")
KEPT_SUFFIX = ".before-restore"
_BATCH = 1000


class AdminError(Exception):
    """The state operation cannot be done as asked; the message says what to do instead."""


class StateInUse(AdminError):
    """A daemon or a cycle holds the state: stop it (or wait), then try again."""


def state_url(url: str) -> str:
    """The URL with psycopg named for PostgreSQL: `postgresql://` alone would mean psycopg2, not installed."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """The URL as it may be printed: password masked."""
    return make_url(url).render_as_string(hide_password=True)


def backup(url: str, dest: Path) -> None:
    """Copy the state to a new file `dest` (mode 0600), consistently even while a daemon writes to it."""
    if dest.exists() or dest.is_symlink():
        # An earlier backup is worth as much as this one: it is never replaced silently.
        raise AdminError(f"{dest} already exists; back up to a new file (or remove that one first)")
    path = _sqlite_file(url)
    if path is None:
        # umask 077: the dump holds mobiles and must be as private as the state (mode 0600).
        raise AdminError(
            "syncd does not back up a PostgreSQL state itself; pg_dump takes a consistent copy while the daemon "
            f"runs:\n  (umask 077 && pg_dump --format=custom --file={shlex.quote(str(dest))} "
            f"{shlex.quote(_libpq_url(url))})\n"
            "(the password from PGPASSWORD or ~/.pgpass); it is restored with pg_restore --clean --dbname=…")
    _state_revision(path, "state database")
    if dest.exists() and dest.resolve() == path.resolve():
        raise AdminError(f"{dest} is the state database itself; back it up to another file")
    with _temporary_beside(dest) as tmp:
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(tmp)) as copy:
            source.backup(copy)  # all pages in one step: one snapshot
            # One self-contained file, no -wal beside it to be left behind when it is carried away.
            copy.execute("PRAGMA journal_mode=DELETE")
        _fsync(tmp)
        os.replace(tmp, dest)
    _fsync(dest.parent)


def restore(url: str, src: Path) -> Path | None:
    """Replace the SQLite state by the backup `src`; return where the replaced state was kept (None if none was).

    Refuses while a daemon or a cycle holds the state, and when `src` is not a syncd state this
    release can read. The replacement is atomic: a crash leaves the old state or the new one.
    """
    path = _sqlite_file(url)
    if path is None:
        raise AdminError(
            "syncd does not restore a PostgreSQL state itself; stop the daemons, then:\n"
            f"  pg_restore --clean --if-exists --dbname={shlex.quote(_libpq_url(url))} {shlex.quote(str(src))}")
    revision = _state_revision(src, "backup")
    try:
        ScriptDirectory(str(MIGRATIONS)).get_revision(revision)
    except CommandError:
        raise AdminError(f"backup {src} has schema revision {revision!r}, which this syncd does not know: it was "
                         "made by a newer release; restore it with that release") from None
    if path.exists() and src.resolve() == path.resolve():
        raise AdminError(f"{src} is the state database itself")
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _owner(path)
    with _held_exclusively(path, owner), _temporary_beside(path) as tmp:
        with closing(sqlite3.connect(_read_only(src), uri=True)) as source, closing(sqlite3.connect(tmp)) as copy:
            source.backup(copy)
        _give(tmp, owner)  # the daemon's user must still be able to write it
        _fsync(tmp)
        kept = _keep_replaced(path)
        # An -shm left beside the database describes the old file's WAL, not the new file.
        Path(f"{path}-shm").unlink(missing_ok=True)
        os.replace(tmp, path)
        _fsync(path.parent)
    return kept


def migrate(src_url: str, dest_url: str) -> dict[str, int]:
    """Copy the whole state at `src_url` into the empty state at `dest_url`; return the rows copied per table.

    The destination's schema is made by its own migrations (constructing a StateStore), then every
    table of the models is copied in dependency order in one transaction on the destination, so a
    failed copy leaves nothing behind. Refuses when the destination already holds runs or links.
    """
    dest_url = state_url(dest_url)
    if make_url(state_url(src_url)) == make_url(dest_url):
        raise AdminError("the destination is the state database itself")
    src_path = _sqlite_file(src_url)
    if src_path is not None and not src_path.is_file():
        raise AdminError(f"there is no state at {src_path} to migrate")
    with ExitStack() as stack:
        if src_path is not None:
            stack.enter_context(_held_exclusively(src_path, _owner(src_path)))
        source = StateStore(src_url)  # brings the source to this release's schema, as a start would
        stack.callback(source.close)
        dest = StateStore(dest_url)
        stack.callback(dest.close)
        if src_path is None:
            stack.enter_context(_cycle_lock(source))
        stack.enter_context(_cycle_lock(dest))
        return _copy(source.engine, dest.engine)


def _copy(source: Engine, dest: Engine) -> dict[str, int]:
    tables = Base.metadata.sorted_tables  # parents before children: runs before journal
    copied: dict[str, int] = {}
    with source.connect() as reading, dest.begin() as writing:
        held = [name for name in STATE_TABLES if name in Base.metadata.tables
                and writing.execute(select(func.count()).select_from(Base.metadata.tables[name])).scalar()]
        if held:
            raise AdminError(f"the destination already holds a state ({', '.join(held)} not empty); "
                             "migrate into an empty database")
        # Anything else there (a value a short-lived daemon kept) gives way to the source's.
        for table in reversed(tables):
            writing.execute(delete(table))
        for table in tables:
            count = 0
            result = reading.execution_options(yield_per=_BATCH).execute(select(table))
            for rows in result.mappings().partitions():
                writing.execute(table.insert(), [_portable(table, row) for row in rows])
                count += len(rows)
            copied[table.name] = count
        if dest.dialect.name == "postgresql":
            _reset_sequences(writing, tables)
    return copied


def _portable(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the destination must receive it: times in UTC with their zone.

    SQLite hands back naive UTC, which PostgreSQL would read in its session's time zone (Asia/Shanghai
    on a Chinese server: eight hours off); PostgreSQL hands back aware times, whose zone SQLite drops.
    """
    values = dict(row)
    for column in table.columns:
        value = values.get(column.name)
        if isinstance(value, datetime) and isinstance(column.type, DateTime) and column.type.timezone:
            values[column.name] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return values


def _reset_sequences(connection: Connection, tables: list[Table]) -> None:
    """Move each serial column's sequence past the copied ids, so the next journal entry gets a new one."""
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        connection.execute(select(func.setval(func.pg_get_serial_sequence(table.name, column.name),
                                              func.coalesce(func.max(column), 0) + 1, False)).select_from(table))


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise AdminError("the state is an in-memory SQLite database: there is nothing to keep")
    return Path(parsed.database)


def _libpq_url(url: str) -> str:
    """The URL as pg_dump takes it: no SQLAlchemy driver, no password on the command line."""
    parsed = make_url(url)
    return URL.create("postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database,
                      parsed.query).render_as_string(hide_password=False)


def _read_only(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def _state_revision(path: Path, what: str) -> str:
    """The schema revision of the syncd state database at `path`; AdminError when it is none."""
    if not path.is_file():
        raise AdminError(f"{what} {path} does not exist")
    try:
        with closing(sqlite3.connect(_read_only(path), uri=True)) as db:
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise AdminError(f"{what} {path} is damaged (PRAGMA quick_check failed)")
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise AdminError(f"{what} {path} is not a syncd state database ({exc})") from exc
    if row is None:
        raise AdminError(f"{what} {path} is not a syncd state database (no schema revision)")
    return str(row[0])


@contextmanager
def _held_exclusively(db: Path, owner: tuple[int, int]) -> Iterator[None]:
    """Hold the daemon's and the cycle's locks on `db` without waiting; StateInUse names the one held."""
    with ExitStack() as stack:
        for suffix, holder in LOCKS:
            lock = Path(f"{db}{suffix}")
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
            stack.callback(os.close, fd)  # closing releases the flock
            _give(lock, owner)  # a lock file root created must stay openable by the daemon's user
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateInUse(f"{holder} holds {lock}: stop it (systemctl stop syncd) or let it finish, "
                                 "then try again") from None
        yield


@contextmanager
def _cycle_lock(store: StateStore) -> Iterator[None]:
    """The store's cycle lock, with Busy told as StateInUse."""
    try:
        with store.exclusive():
            yield
    except Busy as exc:
        raise StateInUse(f"{exc}: stop the daemons using it, then try again") from exc


def _keep_replaced(path: Path) -> Path | None:
    """Keep the database about to be replaced as `<db>.before-restore` (with its WAL), for a change of mind."""
    if not path.exists():
        return None
    kept = Path(f"{path}{KEPT_SUFFIX}")
    for stale in (kept, Path(f"{kept}-wal"), Path(f"{kept}-shm")):
        stale.unlink(missing_ok=True)
    os.link(path, kept)
    wal = Path(f"{path}-wal")
    if wal.exists():
        # Committed changes not yet checkpointed live here; they belong to the kept file, and
        # left beside the new one they would be replayed into it.
        os.replace(wal, f"{kept}-wal")
    return kept


@contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A new private (0600) file in `target`'s directory, removed unless it was renamed onto `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _owner(db: Path) -> tuple[int, int]:
    """Who must own files written for `db`: its owner, or its directory's when it does not exist yet."""
    info = db.stat() if db.exists() else db.parent.stat()
    return info.st_uid, info.st_gid


def _give(path: Path, owner: tuple[int, int]) -> None:
    # Only root can give a file away, and only root (restoring for the service's user) needs to.
    if os.geteuid() == 0:
        os.chown(path, *owner)


def _fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk before relying on it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""One daemon per state: the instance lock.

SQLite state lives on one machine, so a second `syncd run` on the same file refuses to start and
names the holder (pid, host, since), read from the lock file the holder wrote. PostgreSQL state
may be shared by several nodes: each contends for a session-level advisory lock on a connection
it keeps open; the holder is the leader and syncs, the others wait. When the leader dies its
connection drops, the server releases the lock, and a waiting node takes over at its next try.

The lock is a lease. A leader that is frozen (SIGSTOP, a paused VM) keeps its TCP connection, and
the kernel answers keepalives for it; so its lock session is given server-side timeouts: the
leader touches it every second, and a session idle for `LEASE` (or whose peer stopped answering
TCP keepalives) is ended by the server, releasing the lock. The node that takes the lock ends any
session still holding the cycle lock (the frozen leader's cycle), and the old leader, thawed,
checks the lease before each write to the directory (`fence`): it finds the session gone and
writes nothing more.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from syncd.state.store import StateStore, name_sessions, session_name

log = structlog.get_logger(__name__)

_DAEMON_KEY = 0x73796E6364 + 1  # beside the cycle lock's key: the daemon's leadership
_CYCLE_KEY = 0x73796E6364  # the store's cycle lock (syncd.state.store._LOCK_KEY)
LEADER = "daemon.leader"
LEASE_S = 15  # a leader silent this long loses the lock: a standby takes over within LEASE_S + STANDBY_POLL
FENCE_FRESH_S = 1.0  # a lease checked this recently is not checked again before a write
# Server-side settings of the lock session (all settable by an ordinary role, PostgreSQL 14+).
_LEASE_SETTINGS = {"idle_session_timeout": f"{LEASE_S}s", "tcp_keepalives_idle": "5",
                   "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the state: a process on a host, since when."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        """`pid 4242 on host-1 since 2026-11-30T08:00:00+00:00`."""
        return f"pid {self.pid} on {self.host} since {self.since}"

    def as_json(self) -> dict[str, Any]:
        """For `syncd status` and the API."""
        return {"pid": self.pid, "host": self.host, "since": self.since}


class LeadershipLost(Exception):
    """This node's lease on the state ended: it must write nothing more (another node may lead)."""


class AlreadyRunning(Exception):
    """Another daemon holds this SQLite state."""

    def __init__(self, holder: Holder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another process"
        super().__init__(f"another syncd daemon holds this state: {who}")


def _me() -> Holder:
    return Holder(os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat(timespec="seconds"))


def _holder(data: Any) -> Holder | None:
    try:
        return Holder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (TypeError, KeyError, ValueError):
        return None


class InstanceLock:
    """The daemon's hold on its state; `acquire` is non-blocking and may be retried (PostgreSQL)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        url = store.engine.url
        self._sqlite = url.get_backend_name() == "sqlite"
        self._path = f"{url.database}.daemon" if self._sqlite and url.database not in (None, "", ":memory:") else None
        self._fd: int | None = None
        # Its own connections, never pooled: the lease settings must not reach the store's other sessions.
        self._engine = None if self._sqlite else create_engine(url, poolclass=NullPool)
        if self._engine is not None:
            name_sessions(self._engine)
        self._connection: Connection | None = None
        self._guard = threading.Lock()  # the lock session is touched by the main thread and by writers
        self._checked = 0.0  # time.monotonic() of the last good touch

    @property
    def shared(self) -> bool:
        """Whether several nodes may share the state (PostgreSQL): then a held lock means "wait"."""
        return not self._sqlite

    def acquire(self) -> bool:
        """Take the lock: True when held. SQLite raises AlreadyRunning; PostgreSQL answers False."""
        me = _me()
        if self._sqlite:
            if self._path is None:
                return True
            fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AlreadyRunning(sqlite_holder(self._path)) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me.as_json()).encode(), 0)
            self._fd = fd
            return True
        assert self._engine is not None
        connection = self._engine.connect()
        try:
            for name, value in _LEASE_SETTINGS.items():
                connection.execute(text("SELECT set_config(:name, :value, false)"), {"name": name, "value": value})
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _DAEMON_KEY}).scalar()
            connection.commit()  # a session lock outlives the transaction; never sit idle in one
            if got:
                recorded = self._store.value(LEADER)
                previous = recorded.get("session") if isinstance(recorded, dict) else None
                if previous == session_name():
                    previous = None  # this process led before: its own sessions stay
                evicted = _evict_previous_leader(connection, previous if isinstance(previous, str) else None)
                if evicted:
                    log.warning("daemon.evicted", sessions=evicted,
                                reason="sessions of the previous leader were still open")
                self._store.set_value(LEADER, {**me.as_json(), "session": session_name()})
        except SQLAlchemyError:
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        with self._guard:
            self._connection = connection
            self._checked = time.monotonic()
        return True

    def alive(self) -> bool:
        """Whether the lock is still ours (touching the lease): a PostgreSQL session that ended released it."""
        with self._guard:
            return self._touch()

    def fence(self) -> None:
        """Before a write to the directory: raise LeadershipLost unless the lease is (still) ours."""
        if self._sqlite:
            return
        with self._guard:
            # Monotonic time runs on while a process is stopped: a thawed leader always checks again.
            if self._connection is not None and time.monotonic() - self._checked < FENCE_FRESH_S:
                return
            if not self._touch():
                raise LeadershipLost("the leader lock's session ended: another node may lead now")

    def _touch(self) -> bool:
        if self._connection is None:
            return self._sqlite
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except SQLAlchemyError as exc:  # the session, and the lock with it, is gone
            log.error("daemon.leadership_lost", error=type(exc).__name__)
            self._drop()
            return False
        self._checked = time.monotonic()
        return True

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError):  # the session is gone already: nothing left to close
                connection.close()

    def release(self) -> None:
        """Let go (closing the file or the connection is what releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with self._guard:
            self._drop()
        if self._engine is not None:
            self._engine.dispose()


def _evict_previous_leader(connection: Connection, previous: str | None) -> int:
    """End every session of the previous leader (its `session_name`), and any session of a syncd too
    old to name its sessions that still holds the cycle lock; in this database only.

    Only the leader runs cycles and writes, so such a session belongs to a leader that lost its
    lease and may thaw at any moment: its cycle lock, and any transaction it was frozen inside of
    (with its row locks), would stall this leader until the server noticed. Ending them releases
    them now; a thawed leader finds its sessions gone and stands by. A named session holding the
    cycle lock that is not the previous leader's is a command's (`syncd sync`, an inline resync): it
    holds the lock rightly, and this leader's cycles wait for it. Another unit's state on the same
    server holds the same keys in its own database. Nodes share one database role, which may end its
    own sessions.
    """
    ended = connection.execute(text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND datname = current_database() AND (application_name = :name OR (application_name NOT LIKE 'syncd %' "
        "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :high "
        "AND objid = :low AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))))"),
        {"name": previous, "high": _CYCLE_KEY >> 32, "low": _CYCLE_KEY & 0xFFFFFFFF}).scalar()
    connection.commit()
    return int(ended or 0)


# The directory's write verbs of a cycle (syncd.domain.target.Target): each waits for the lease check. Not
# `set_account_frozen`: any node may freeze a lost phone's login at once, leader or not (Article 17).
_WRITES = frozenset({"create_department", "update_department", "create_person", "update_person", "move_person",
                     "deactivate_person", "rehire_person", "remove_position", "move_department",
                     "delete_department"})


class FencedTarget:
    """A target whose writes first check that this node still leads (`fence`); reads pass straight through."""

    def __init__(self, target: Any, fence: Callable[[], None]) -> None:
        self._target = target
        self._fence = fence

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in _WRITES:
            return attribute
        fence = self._fence

        def fenced(*args: Any, **kwargs: Any) -> Any:
            fence()
            return attribute(*args, **kwargs)

        return fenced


def sqlite_holder(path: str) -> Holder | None:
    """The holder a daemon wrote into its lock file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return _holder(json.loads(handle.read() or "null"))
    except (OSError, ValueError):
        return None


def running_daemon(store: StateStore) -> Holder | None:
    """The daemon holding this state, or None when none runs (for `syncd resync` and `syncd status`)."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        path = f"{url.database}.daemon"
        if not os.path.exists(path):
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return sqlite_holder(path) or Holder(0, "?", "?")
        finally:
            os.close(fd)  # closing releases a lock we got
        return None
    with store.engine.connect() as connection:
        free = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _DAEMON_KEY}).scalar()
        if free:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _DAEMON_KEY})
        connection.commit()
    if free:
        return None
    return _holder(store.value(LEADER)) or Holder(0, "?", "?")

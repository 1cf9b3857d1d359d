"""One daemon per state: the instance lock.

SQLite state lives on one machine, so a second `syncd run` on the same file refuses to start and
names the holder (pid, host, since), read from the lock file the holder wrote. PostgreSQL state
may be shared by several nodes: each contends for a session-level advisory lock on a connection
it keeps open; the holder is the leader and syncs, the others wait. When the leader dies its
connection drops, the server releases the lock, and a waiting node takes over at its next try.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from syncd.state.store import StateStore

log = structlog.get_logger(__name__)

_DAEMON_KEY = 0x73796E6364 + 1  # beside the cycle lock's key: the daemon's leadership
LEADER = "daemon.leader"


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
        self._connection: Connection | None = None

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
        connection = self._store.engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _DAEMON_KEY}).scalar()
        connection.commit()  # a session lock outlives the transaction; never sit idle in one
        if not got:
            connection.close()
            return False
        self._connection = connection
        self._store.set_value(LEADER, me.as_json())
        return True

    def alive(self) -> bool:
        """Whether the lock is still ours: a PostgreSQL connection that dropped released it."""
        if self._connection is None:
            return self._sqlite
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except SQLAlchemyError as exc:  # the session, and the lock with it, is gone
            log.error("daemon.leadership_lost", error=type(exc).__name__)
            self._connection = None
            return False
        return True

    def release(self) -> None:
        """Let go (closing the file or the connection is what releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


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

"""The leader lock on a real PostgreSQL: a lease the server can end, and writes fenced by it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from syncd.service.leader import FENCE_FRESH_S, LEADER, LEASE_S, FencedTarget, InstanceLock, LeadershipLost
from syncd.state.store import StateStore
from tests.test_sql_source import PG_URL

CYCLE_KEY = 0x73796E6364  # syncd.state.store's cycle lock: the same key in every unit's database


class RecordingTarget:
    """A directory that keeps the writes it receives."""

    def __init__(self) -> None:
        self.deactivated: list[str] = []

    def deactivate_person(self, employee_code: str) -> None:
        self.deactivated.append(employee_code)

    def visible_scope(self) -> list[str]:
        return ["GO_root"]


@pytest.fixture
def store(pg_state: str) -> Iterator[StateStore]:
    state = StateStore(pg_state)
    try:
        yield state
    finally:
        state.close()


def end_lock_sessions(store: StateStore) -> int:
    """What the server's idle_session_timeout does to a frozen leader: end the session holding the lock."""
    with store.engine.begin() as connection:
        return int(connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = :high AND objid = :low AND pid <> pg_backend_pid()"),
            {"high": 0x73, "low": 0x796E6365}).scalar() or 0)


def test_a_lease_the_server_ended_fences_the_next_write_and_frees_the_lock(store: StateStore) -> None:
    leader, standby = InstanceLock(store), InstanceLock(store)
    assert leader.acquire()
    try:
        assert not standby.acquire()
        target = RecordingTarget()
        fenced = FencedTarget(target, leader.fence)
        fenced.deactivate_person("GE_1")
        assert end_lock_sessions(store) == 1
        time.sleep(FENCE_FRESH_S)  # past the freshness of the last check: the next write checks again
        with pytest.raises(LeadershipLost):
            fenced.deactivate_person("GE_2")
        assert target.deactivated == ["GE_1"]  # the fenced write never reached the directory
        assert fenced.visible_scope() == ["GO_root"]  # reads are not fenced
        assert not leader.alive()
        assert standby.acquire()  # the lock went with the session: another node leads
    finally:
        leader.release()
        standby.release()


def test_a_leader_silent_for_the_lease_loses_the_lock_to_the_server(store: StateStore) -> None:
    leader, standby = InstanceLock(store), InstanceLock(store)
    assert leader.acquire()
    try:
        assert not standby.acquire()
        # A frozen leader touches nothing: the server's idle_session_timeout ends its session.
        deadline = time.monotonic() + LEASE_S + 10
        while not standby.acquire():
            assert time.monotonic() < deadline, "the server never ended the silent leader's session"
            time.sleep(1)
        with pytest.raises(LeadershipLost):
            leader.fence()
    finally:
        leader.release()
        standby.release()


def test_taking_the_lead_leaves_another_units_database_alone(store: StateStore) -> None:
    # Another unit's state on the same server, mid-cycle: its session holds the cycle lock's key in
    # its own database, where advisory locks are its own.
    other = create_engine(make_url(PG_URL).set(database="syncd_test_other"), poolclass=NullPool)
    try:
        with other.connect() as cycle:
            assert cycle.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": CYCLE_KEY}).scalar()
            cycle.commit()
            lock = InstanceLock(store)
            try:
                assert lock.acquire()
                assert cycle.execute(text("SELECT 1")).scalar() == 1  # not ended by this unit's new leader
            finally:
                lock.release()
    finally:
        other.dispose()


def named_session(url: str, name: str) -> tuple[Engine, Connection]:
    """A connection to `url` whose `application_name` is `name`, as another syncd process would open it."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": name})
    return engine, engine.connect()


def is_alive(connection: Connection) -> bool:
    try:
        return connection.execute(text("SELECT 1")).scalar() == 1
    except OperationalError:
        return False


def test_taking_the_lead_ends_the_previous_leaders_sessions_and_no_other_processes(store: StateStore) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    store.set_value(LEADER, {"pid": 1, "host": "node-a", "since": "2026-12-04T00:00:00+00:00",
                             "session": "syncd 0a1b2c3d4e5f 1 node-a"})
    # The frozen leader, inside a transaction; a new process that has its pid and host (a restarted
    # container); and a command's cycle (`syncd sync`), which holds the cycle lock rightly.
    sessions = {name: named_session(url, name) for name in (
        "syncd 0a1b2c3d4e5f 1 node-a", "syncd 99aa88bb77cc 1 node-a", "syncd 123456abcdef 4242 node-b")}
    try:
        frozen = sessions["syncd 0a1b2c3d4e5f 1 node-a"][1]
        frozen.execute(text("SELECT count(*) FROM service_state"))  # a transaction left open
        command = sessions["syncd 123456abcdef 4242 node-b"][1]
        assert command.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": CYCLE_KEY}).scalar()
        command.commit()
        lock = InstanceLock(store)
        try:
            assert lock.acquire()
        finally:
            lock.release()
        alive = {name: is_alive(connection) for name, (_, connection) in sessions.items()}
        assert alive == {"syncd 0a1b2c3d4e5f 1 node-a": False, "syncd 99aa88bb77cc 1 node-a": True,
                         "syncd 123456abcdef 4242 node-b": True}
    finally:
        for engine, connection in sessions.values():
            with contextlib.suppress(OperationalError):
                connection.close()
            engine.dispose()

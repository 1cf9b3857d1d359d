"""The state store: migrations from the first table, a private SQLite file, links and the journal."""

from __future__ import annotations

import stat
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect

from syncd.domain.model import Change, ChangeKind, LinkedPerson
from syncd.state.store import Busy, StateStore
from tests.test_state_admin import pg_schema


def test_a_new_sqlite_database_is_private_and_migrated(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        mode = stat.S_IMODE((tmp_path / "state.db").stat().st_mode)
        assert mode == 0o600
        tables = set(inspect(store.engine).get_table_names())
        assert {"department_links", "person_links", "runs", "journal", "alembic_version"} <= tables
    finally:
        store.close()


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = StateStore(url)
    run = first.start_run("manual", "incremental", dry_run=False)
    first.close()
    store = StateStore(url)
    try:
        assert [r.id for r in store.runs()] == [run]  # the second start migrated nothing away
    finally:
        store.close()


def test_a_change_is_journaled_planned_sent_done_with_its_link(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run = store.start_run("manual", "incremental", dry_run=False)
        change = Change(ChangeKind.JOIN, "A1", {"name": "张明"}, department="D2")
        [(entry, _)] = store.journal_plan(run, [change], datetime.now(UTC), date(2026, 12, 1))
        assert store.journal_states(run) == {"planned": 1}
        store.mark_sent(entry)
        assert store.journal_states(run) == {"sent": 1}
        store.mark_done(entry, person=("A1", LinkedPerson("GE_1", 7, "D2", "GO_2", {"name": "张明"})))
        assert store.journal_states(run) == {"done": 1}
        assert store.links().people["A1"].account_id == 7
        store.finish_run(run, "success", {"join.done": 1})
        assert store.runs()[0].outcome == "success"
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_only_one_cycle_holds_the_lock_at_a_time(tmp_path: Path, backend: str) -> None:
    """SQLite: a file lock on one host; PostgreSQL: an advisory lock across nodes."""
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'state.db'}" if backend == "sqlite" else stack.enter_context(pg_schema())
        first, second = StateStore(url), StateStore(url)
        try:
            with first.exclusive(), pytest.raises(Busy), second.exclusive():
                pass
            with second.exclusive():
                pass
        finally:
            first.close()
            second.close()


def test_the_state_store_migrates_and_journals_on_postgresql() -> None:
    with pg_schema() as url:
        store = StateStore(url)
        try:
            run = store.start_run("manual", "incremental", dry_run=False)
            [(entry, _)] = store.journal_plan(run, [Change(ChangeKind.LEAVE, "A1")], datetime.now(UTC),
                                              date(2026, 12, 1))
            store.mark_failed(entry, "state", "already inactive")
            assert store.journal_states(run) == {"failed": 1}
        finally:
            store.close()

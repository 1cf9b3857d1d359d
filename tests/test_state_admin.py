"""Backup, restore and SQLite → PostgreSQL migration of a real state, built by real syncs against the simulator."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from connectors.zzd.simulator.admin import SimAdmin
from connectors.zzd.simulator.server import SimulatorServer
from connectors.zzd.simulator.tenant import SimTenant
from syncd.config import Config, load
from syncd.domain.model import LinkState
from syncd.engine.cycle import CycleResult, run_cycle
from syncd.state.admin import AdminError, StateInUse, backup, migrate, restore
from syncd.state.commands import state
from syncd.state.models import JournalEntry
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER, config_toml, person, write_csv
from tests.test_sql_source import PG_URL

TENANT = SimTenant(tenant_id=196729, app_key="adm-key", app_secret="adm-secret",
                   root_code="GO_" + "0" * 31 + "7", admin_token="adm-admin")


@dataclass
class Synced:
    """A state built by an initial sync of the small bureau into a running simulator."""

    directory: Path
    config_path: Path
    config: Config
    admin: SimAdmin

    @property
    def url(self) -> str:
        return self.config.state.url

    def config_with_state(self, url: str) -> Config:
        """The same configuration with another state database."""
        return self.config.model_copy(update={"state": self.config.state.model_copy(update={"url": url})})

    def sync(self, config: Config | None = None) -> CycleResult:
        config = config or self.config
        store = StateStore(config.state.url)
        try:
            return run_cycle(config, build_source(config), build_target(config), store)
        finally:
            store.close()

    def writes(self) -> int:
        return int(self.admin.counters()["writes"])


@pytest.fixture
def synced(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> Iterator[Synced]:
    export()
    with SimulatorServer(TENANT) as server:
        config_path = tmp_path / "syncd.toml"
        config_path.write_text(config_toml(
            server.base_url, TENANT.root_code, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
            target={"rate_limit": 1000}, state={"url": "sqlite:///state/state.db"},
            safety={"structure_changes": "apply"}, logging={"format": "json", "level": "warning"}),
            encoding="utf-8")
        synced = Synced(tmp_path, config_path, load(config_path), SimAdmin(server.base_url, TENANT.admin_token))
        first = synced.sync()
        assert first.outcome == "success" and synced.writes() > 0
        yield synced


@contextmanager
def pg_schema() -> Iterator[str]:
    """The URL of an empty schema of its own in the test PostgreSQL (other tests use `public`), dropped
    afterwards; sessions in Beijing time, as on a server in Zhengzhou."""
    schema = f"syncd_admin_{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_URL)

    def drop() -> None:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))

    drop()
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema} -ctimezone=Asia/Shanghai"}
                                                 ).render_as_string(hide_password=False)
    finally:
        drop()
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema() as url:
        yield url


def table_rows(url: str) -> dict[str, int]:
    """Rows per state table."""
    store = StateStore(url)
    try:
        with store.engine.connect() as connection:
            return {name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                    for name in ("runs", "journal", "person_links", "department_links")}
    finally:
        store.close()


def links(url: str) -> LinkState:
    store = StateStore(url)
    try:
        return store.links()
    finally:
        store.close()


def test_a_backup_taken_during_a_cycle_restores_into_a_state_that_syncs_with_zero_writes(synced: Synced) -> None:
    copy = synced.directory / "backups" / "state.db"
    holder = StateStore(synced.url)
    try:
        with holder.exclusive():  # a cycle of the running daemon holds the state
            backup(synced.url, copy)
    finally:
        holder.close()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not Path(f"{copy}-wal").exists(), "a backup is one self-contained file"

    fresh = f"sqlite:///{synced.directory / 'restored' / 'state.db'}"
    assert restore(fresh, copy) is None  # nothing was there to keep
    assert stat.S_IMODE((synced.directory / "restored" / "state.db").stat().st_mode) == 0o600
    assert table_rows(fresh) == table_rows(synced.url)
    assert links(fresh) == links(synced.url)

    before = synced.writes()
    result = synced.sync(synced.config_with_state(fresh))
    assert result.outcome == "success"
    assert len(result.plan) == 0
    assert synced.writes() == before


def test_restore_over_a_state_keeps_the_replaced_one_beside_it(synced: Synced) -> None:
    copy = synced.directory / "state-backup.db"
    backup(synced.url, copy)
    live = Path(make_url(synced.url).database or "")
    later = StateStore(synced.url)
    later.start_run("manual", "incremental", dry_run=False)  # a run after the backup
    later.close()

    kept = restore(synced.url, copy)

    assert kept == Path(f"{live}.before-restore")
    assert table_rows(f"sqlite:///{kept}")["runs"] == table_rows(synced.url)["runs"] + 1
    assert stat.S_IMODE(live.stat().st_mode) == 0o600


@pytest.mark.parametrize("lock", [".lock", ".daemon"])
def test_restore_refuses_while_a_cycle_or_the_daemon_holds_the_state(synced: Synced, lock: str) -> None:
    copy = synced.directory / "state-backup.db"
    backup(synced.url, copy)
    live = Path(make_url(synced.url).database or "")
    before = live.read_bytes()
    fd = os.open(f"{live}{lock}", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a cycle (.lock) or the daemon (.daemon) holds
        with pytest.raises(StateInUse, match=rf"holds {live}{lock}"):
            restore(synced.url, copy)
    finally:
        os.close(fd)
    assert live.read_bytes() == before
    assert not Path(f"{live}.before-restore").exists()


def test_the_cycle_lock_of_a_state_store_makes_restore_refuse(synced: Synced) -> None:
    copy = synced.directory / "state-backup.db"
    backup(synced.url, copy)
    holder = StateStore(synced.url)
    try:
        with holder.exclusive(), pytest.raises(StateInUse, match="cycle"):
            restore(synced.url, copy)
    finally:
        holder.close()


def test_restore_refuses_a_file_that_is_not_a_syncd_state(synced: Synced) -> None:
    live = Path(make_url(synced.url).database or "")
    before = live.read_bytes()
    other = synced.directory / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    text_file = synced.directory / "notes.txt"
    text_file.write_text("not a database\n" * 100, encoding="utf-8")
    for bad in (other, text_file, synced.directory / "missing.db"):
        with pytest.raises(AdminError):
            restore(synced.url, bad)
    assert live.read_bytes() == before


def test_restore_refuses_a_backup_of_a_newer_release(synced: Synced) -> None:
    copy = synced.directory / "state-backup.db"
    backup(synced.url, copy)
    with closing(sqlite3.connect(copy)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(AdminError, match="made by a newer release"):
        restore(synced.url, copy)


def test_backup_refuses_to_overwrite_an_earlier_backup(synced: Synced) -> None:
    copy = synced.directory / "state-backup.db"
    copy.write_bytes(b"last week's backup")
    with pytest.raises(AdminError, match="already exists"):
        backup(synced.url, copy)
    assert copy.read_bytes() == b"last week's backup"


def test_the_printed_pg_dump_writes_a_private_dump_of_the_real_postgresql(tmp_path: Path) -> None:
    dump = tmp_path / "state.dump"
    with pytest.raises(AdminError) as caught:
        backup(PG_URL, dump)
    [command] = [line.strip() for line in str(caught.value).splitlines() if "pg_dump" in line and "umask" in line]
    password = make_url(PG_URL).password or ""
    ran = subprocess.run(["bash", "-c", command], env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600 and dump.stat().st_size > 0


def test_backup_of_a_postgresql_state_names_pg_dump_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(AdminError, match="pg_dump --format=custom") as caught:
        backup("postgresql+psycopg://syncd:hunter2@db.example:5432/syncd", tmp_path / "x.dump")
    assert "hunter2" not in str(caught.value)
    assert "postgresql://syncd@db.example:5432/syncd" in str(caught.value)


def test_migrate_to_postgresql_copies_every_row_and_the_next_cycle_makes_zero_writes(
        synced: Synced, pg_url: str) -> None:
    copied = migrate(synced.url, pg_url)

    assert copied["runs"] == 1 and copied["person_links"] == len([p for p in PEOPLE if p["人员状态"] == "在职"])
    assert table_rows(pg_url) == table_rows(synced.url)
    assert links(pg_url) == links(synced.url)
    # Times kept their instant (SQLite's naive UTC is not read in PostgreSQL's zone).
    source, dest = StateStore(synced.url), StateStore(pg_url)
    try:
        assert [r.started_at.replace(tzinfo=UTC) for r in source.runs()] == [r.started_at for r in dest.runs()]
        with dest.engine.connect() as connection:
            copied_max = connection.execute(select(func.max(JournalEntry.id))).scalar_one()
    finally:
        source.close()
        dest.close()
    before = synced.writes()
    result = synced.sync(synced.config_with_state(pg_url))
    assert result.outcome == "success" and len(result.plan) == 0
    assert synced.writes() == before

    # The journal's sequence moved past the copied ids: the next change in HR journals and lands.
    write_csv(synced.directory / "people.csv", PEOPLE_HEADER,
              [*PEOPLE, person("A000009", "钱多", "13800000009", "D0005")])
    result = synced.sync(synced.config_with_state(pg_url))
    assert result.outcome == "success" and len(result.plan) == 1
    dest = StateStore(pg_url)
    try:
        with dest.engine.connect() as connection:
            assert connection.execute(select(func.max(JournalEntry.id))).scalar_one() == copied_max + 1
    finally:
        dest.close()


def test_migrate_refuses_a_destination_that_holds_a_state(synced: Synced, pg_url: str) -> None:
    migrate(synced.url, pg_url)
    with pytest.raises(AdminError, match="already holds a state"):
        migrate(synced.url, pg_url)


def test_migrate_refuses_while_the_daemon_holds_the_source(synced: Synced, tmp_path: Path) -> None:
    live = Path(make_url(synced.url).database or "")
    fd = os.open(f"{live}.daemon", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateInUse, match="daemon"):
            migrate(synced.url, f"sqlite:///{tmp_path / 'elsewhere.db'}")
    finally:
        os.close(fd)


def test_the_state_commands_back_up_refuse_and_migrate(synced: Synced, pg_url: str) -> None:
    runner = CliRunner()
    obj = {"config_path": synced.config_path}
    copy = synced.directory / "cli-backup.db"

    result = runner.invoke(state, ["backup", str(copy)], obj=obj)
    assert result.exit_code == 0, result.output
    assert copy.is_file()

    holder = StateStore(synced.url)
    try:
        with holder.exclusive():
            result = runner.invoke(state, ["restore", str(copy)], obj=obj)
    finally:
        holder.close()
    assert result.exit_code == 1
    assert "syncd: a running syncd cycle holds" in result.stderr

    result = runner.invoke(state, ["restore", str(copy)], obj=obj)
    assert result.exit_code == 0, result.output
    assert "before-restore" in result.output

    result = runner.invoke(state, ["migrate", "--to", pg_url], obj=obj)
    assert result.exit_code == 0, result.output
    assert "person_links" in result.output and "syncd_test:***@" in result.output

    result = runner.invoke(state, ["backup", str(copy)], obj={"config_path": synced.directory / "missing.toml"})
    assert result.exit_code == 2


def test_a_person_added_after_a_restore_is_joined_once(synced: Synced) -> None:
    """A restored state is a working state: the next change in HR is applied exactly once."""
    copy = synced.directory / "state-backup.db"
    backup(synced.url, copy)
    restore(synced.url, copy)
    joiner = person("A000009", "钱多", "13800000009", "D0005")
    write_csv(synced.directory / "people.csv", PEOPLE_HEADER, [*PEOPLE, joiner])
    write_csv(synced.directory / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    before = synced.writes()
    result = synced.sync()
    assert result.outcome == "success" and len(result.plan) == 1
    assert synced.writes() > before
    again = synced.sync()
    assert len(again.plan) == 0

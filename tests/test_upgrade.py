"""Upgrades keep state: a database of the first release (revision 0001), with runs, journal, links and an
approval in it, upgraded to head by the store as a start does; a failed migration changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from connectors.zzd.simulator.admin import SimAdmin
from connectors.zzd.simulator.server import SimulatorServer
from connectors.zzd.simulator.tenant import SimTenant
from syncd.cli import main
from syncd.config import Config, load
from syncd.domain.model import fingerprint
from syncd.engine.cycle import run_cycle
from syncd.state import MigrationFailed
from syncd.state.models import Base
from syncd.state.store import MIGRATIONS, StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import config_toml
from tests.test_state_admin import pg_schema

TENANT = SimTenant(tenant_id=196729, app_key="up-key", app_secret="up-secret",
                   root_code="GO_" + "0" * 31 + "8", admin_token="up-admin")
FIRST_RELEASE = "0001"
TABLES = ("department_links", "person_links", "runs", "journal")
APPROVED = {"kind": "leave", "subject": "A000099", "fields": {}, "department": "D0003"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty state database on each backend syncd supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old' / 'state.db'}"
        return
    with pg_schema() as pg_url:
        yield pg_url


def first_release_database(url: str) -> Engine:
    """A database with the first release's schema only, as that release's `syncd` left it."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, FIRST_RELEASE)
    return engine


def first_release_tables(engine: Engine) -> MetaData:
    """The tables as the database holds them (0001's columns), not as today's models declare them."""
    metadata = MetaData()
    metadata.reflect(engine, only=TABLES)
    return metadata


def history(links: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Runs and journal of two earlier releases' days: an initial load, and a run whose hold was approved."""
    day = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    runs = [
        {"id": "run00000001", "trigger": "manual", "mode": "incremental", "dry_run": False, "started_at": day,
         "finished_at": day + timedelta(seconds=3), "outcome": "success",
         "counts": {"dept_create.done": len(links["department_links"]) - 1, "join.done": len(links["person_links"])}},
        {"id": "run00000002", "trigger": "manual", "mode": "incremental", "dry_run": False,
         "started_at": day + timedelta(days=1), "finished_at": day + timedelta(days=1, seconds=1), "outcome": "held",
         "counts": {"leave.held": 1}},
    ]
    journal = [
        {"id": 1 + seq, "run_id": "run00000001", "seq": seq, "kind": "join", "subject": link["employee_id"],
         "change": {"fields": dict(link["pushed"]), "department": link["department"], "from_department": None,
                    "reason": ""},
         "state": "done", "attempts": 1, "error_category": None, "error_message": None, "detected_at": day,
         "due_at": date(2026, 11, 25), "updated_at": day + timedelta(seconds=2)}
        for seq, link in enumerate(links["person_links"])
    ]
    journal.append(
        {"id": len(journal) + 1, "run_id": "run00000002", "seq": 0, "kind": APPROVED["kind"],
         "subject": APPROVED["subject"],
         "change": {"fields": {}, "department": APPROVED["department"], "from_department": None, "reason": "left"},
         "state": "approved", "attempts": 0, "error_category": "held", "error_message": "mass deactivation",
         "detected_at": day + timedelta(days=1), "due_at": date(2026, 11, 26),
         "updated_at": day + timedelta(days=1, hours=2)})
    return {"runs": runs, "journal": journal}


def rows(engine: Engine, metadata: MetaData) -> dict[str, list[dict[str, Any]]]:
    """Every row of the first release's tables, in the first release's columns, in key order."""
    with engine.connect() as connection:
        return {name: [dict(row) for row in connection.execute(
            select(*table.columns).order_by(*table.primary_key.columns)).mappings()]
            for name, table in metadata.tables.items()}


@pytest.fixture
def synced_links(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> Iterator[tuple[Config, SimAdmin,
                                                                                                StateStore]]:
    """A directory loaded by a real first sync; the links it left (a state of today's schema) to plant in 0001."""
    export()
    with SimulatorServer(TENANT) as server:
        config_path = tmp_path / "syncd.toml"
        config_path.write_text(config_toml(
            server.base_url, TENANT.root_code, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
            target={"rate_limit": 1000}, state={"url": "sqlite:///today.db"}, safety={"structure_changes": "apply"},
            logging={"format": "json", "level": "warning"}), encoding="utf-8")
        config = load(config_path)
        store = StateStore(config.state.url)
        try:
            assert run_cycle(config, build_source(config), build_target(config), store).outcome == "success"
            yield config, SimAdmin(server.base_url, TENANT.admin_token), store
        finally:
            store.close()


def test_a_first_release_state_upgrades_with_every_row_and_a_no_change_cycle_plans_nothing(
        url: str, synced_links: tuple[Config, SimAdmin, StateStore]) -> None:
    config, admin, today = synced_links
    engine = first_release_database(url)
    metadata = first_release_tables(engine)
    with today.engine.connect() as connection:
        links = {name: [dict(row) for row in connection.execute(select(Base.metadata.tables[name])).mappings()]
                 for name in ("department_links", "person_links")}
    planted = {**links, **history(links)}
    with engine.begin() as connection:
        for name in TABLES:  # parents first: journal refers to runs
            table = metadata.tables[name]
            connection.execute(table.insert(), [{column.name: row[column.name] for column in table.columns}
                                                for row in planted[name]])
    before = rows(engine, metadata)
    engine.dispose()

    store = StateStore(url)  # a start of today's release: migrations to head
    try:
        with store.engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert revision == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert rows(store.engine, metadata) == before
        assert store.links() == today.links()
        assert store.approvals() == {fingerprint(APPROVED["kind"], APPROVED["subject"], {}, APPROVED["department"],
                                                 None)}
        assert {run.id for run in store.runs()} == {"run00000001", "run00000002"}

        writes = admin.counters()["writes"]
        moved = config.model_copy(update={"state": config.state.model_copy(update={"url": url})})
        result = run_cycle(moved, build_source(moved), build_target(moved), store)
        assert result.outcome == "success"
        assert len(result.plan) == 0
        assert admin.counters()["writes"] == writes
    finally:
        store.close()


def test_a_migration_that_fails_leaves_the_database_as_it_was(url: str) -> None:
    engine = first_release_database(url)
    metadata = first_release_tables(engine)
    with engine.begin() as connection:
        connection.execute(metadata.tables["runs"].insert(), history({"department_links": [], "person_links": []})
                           ["runs"])
        # An object in the way of the newest migration's last step (an index of the same name), so it
        # fails after its first steps created tables and added a column.
        connection.execute(text("CREATE INDEX ix_runs_started_at ON journal (seq)"))
    before = (rows(engine, metadata), sorted(inspect(engine).get_table_names()),
              [c["name"] for c in inspect(engine).get_columns("runs")])
    engine.dispose()

    with pytest.raises(MigrationFailed, match=f"stays at revision {FIRST_RELEASE}") as failed:
        StateStore(url)
    assert isinstance(failed.value.__cause__, DBAPIError)
    assert "ix_runs_started_at" in str(failed.value)

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == FIRST_RELEASE
        after = (rows(engine, metadata), sorted(inspect(engine).get_table_names()),
                 [c["name"] for c in inspect(engine).get_columns("runs")])
        assert after == before
        # Once the obstacle is gone, the same start upgrades.
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_runs_started_at"))
    finally:
        engine.dispose()
    StateStore(url).close()


def test_the_daemon_refuses_to_start_on_a_state_it_cannot_migrate_and_says_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = first_release_database(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE INDEX ix_runs_started_at ON journal (seq)"))
    engine.dispose()
    config = tmp_path / "syncd.toml"
    config.write_text(config_toml(state={"url": url}), encoding="utf-8")
    (tmp_path / "people.csv").write_text("工号\n", encoding="utf-8")
    (tmp_path / "departments.csv").write_text("部门编号\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert f"could not be migrated to this release (it stays at revision {FIRST_RELEASE})" in result.output
    assert "Traceback" not in result.output

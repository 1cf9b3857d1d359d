"""`syncd check-config` proves what `syncd run` needs: one test per failure it detects, against the
simulator over HTTP and the real PostgreSQL; and the state errors `syncd` itself tells apart."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.zzd.simulator import SimTenant, SimulatorServer
from syncd.cli import main
from syncd.demo import APP_KEY, DEMO_SECRET, ROOT_CODE, TENANT_ID
from syncd.service.tokens import add_token
from tests.conftest import config_toml
from tests.test_sql_source import PG_URL
from tests.test_upgrade import FIRST_RELEASE, first_release_database

CLOSED_PORT = 9  # the discard port: nothing listens on it here

Check = Callable[..., Result]


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    """The simulator's base URL: the unit's tenant, its root in the app's scope."""
    tenant = SimTenant(tenant_id=TENANT_ID, app_key=APP_KEY, app_secret=DEMO_SECRET, root_code=ROOT_CODE,
                       root_name="郑州市审计局", admin_token="admin", state_file=None)
    with SimulatorServer(tenant) as server:
        yield server.base_url


@pytest.fixture
def check(tmp_path: Path, gateway: str, export: Callable[..., tuple[Path, Path]]) -> Check:
    """Write a configuration for the small bureau against the simulator (sections override, `extra` is
    TOML appended) and run `syncd check-config` on it with the given flags."""
    export()

    def run(*flags: str, base_url: str = gateway, tenant_id: int = TENANT_ID, extra: str = "",
            **sections: dict[str, object]) -> Result:
        sections.setdefault("state", {"url": "sqlite:///state.db"})
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(base_url, ROOT_CODE, APP_KEY, DEMO_SECRET, tenant_id, **sections) + extra,
                          encoding="utf-8")
        return CliRunner().invoke(main, ["check-config", "--config", str(config), *flags])

    return run


def pg_url(password: str | None = None, port: int | None = None) -> str:
    url = make_url(PG_URL)
    return url.set(password=password or url.password, port=port or url.port).render_as_string(hide_password=False)


def test_a_good_configuration_passes_and_says_what_was_reached(check: Check) -> None:
    result = check()
    assert result.exit_code == 0, result.output
    assert "no state yet" in result.output
    assert "the unit's root is in the app's scope" in result.output


def test_unreadable_code_tables_are_a_problem_of_source_code_tables(check: Check, tmp_path: Path) -> None:
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "gender.toml").write_text('[codes]\n"男" = "1"\n')  # political_status.toml missing
    result = check("--offline", source={"code_tables": "codes"})
    assert result.exit_code == 2
    assert "source.code_tables" in result.output and "political_status.toml" in result.output


def test_a_state_database_out_of_reach_exits_1_saying_so(check: Check) -> None:
    result = check(state={"url": pg_url(port=CLOSED_PORT)})
    assert result.exit_code == 1
    assert f"state.url: the state database 127.0.0.1:{CLOSED_PORT}/" in result.output
    assert "cannot be reached" in result.output and "migrated" not in result.output


def test_a_refused_state_password_exits_2_and_never_shows_it(check: Check) -> None:
    result = check(state={"url": pg_url(password="Wrong-Pw-4711")})
    assert result.exit_code == 2
    assert "refused the password of user 'syncd_test'" in result.output
    assert "Wrong-Pw-4711" not in result.output and "migrated" not in result.output


def test_a_state_written_by_a_newer_release_exits_2(check: Check, tmp_path: Path) -> None:
    engine = first_release_database(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999_from_the_future'"))
    engine.dispose()
    result = check()
    assert result.exit_code == 2
    assert "revision 0999_from_the_future, which this release does not know" in result.output


def test_a_migration_that_would_fail_at_start_fails_here_and_changes_nothing(check: Check, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = first_release_database(url)
    with engine.begin() as connection:  # an obstacle in the way of a later migration
        connection.execute(text("CREATE INDEX ix_runs_started_at ON journal (seq)"))
    engine.dispose()
    result = check()
    assert result.exit_code == 2
    assert "could not be migrated to this release" in result.output and "ix_runs_started_at" in result.output
    assert revision(url) == FIRST_RELEASE


def test_a_state_behind_this_release_passes_and_is_left_for_the_start_to_migrate(check: Check, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first_release_database(url).dispose()
    result = check()
    assert result.exit_code == 0, result.output
    assert f"at revision {FIRST_RELEASE}; syncd run migrates it" in result.output
    assert revision(url) == FIRST_RELEASE


def revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def test_a_root_only_tokens_file_is_named_with_the_user_and_mode_to_use(check: Check, tmp_path: Path) -> None:
    add_token(tmp_path / "tokens.toml", "hr-portal", "hr")  # 0600, owned by whoever runs the test
    result = check("--offline", api={"tokens_file": "tokens.toml"})
    if os.geteuid() == 0:
        assert result.exit_code == 2
        assert "api.tokens_file" in result.output and "the service's dynamic user" in result.output
        assert "chgrp syncd" in result.output and "chmod 0640" in result.output
    else:  # owned by this user, who would run the daemon: readable by it
        assert result.exit_code == 0, result.output


def test_a_secret_written_in_the_file_is_refused_for_a_real_gateway(check: Check) -> None:
    result = check("--offline", base_url="https://zzd-gateway.example.gov.cn")
    assert result.exit_code == 2
    assert "target.app_secret: the secret is written in" in result.output
    assert DEMO_SECRET not in result.output


def test_a_root_department_absent_from_hr_exits_2(check: Check) -> None:
    result = check(unit={"root_department": "D9999"})
    assert result.exit_code == 2
    assert "unit.root_department: got 'D9999'" in result.output and "every record would be rejected" in result.output


def test_a_wrong_tenant_is_blamed_on_tenant_id_not_on_the_address(check: Check) -> None:
    result = check(tenant_id=100001)
    assert result.exit_code == 2
    assert "target.tenant_id" in result.output and "target.base_url" not in result.output


@pytest.mark.parametrize(("port", "code", "says"), [
    (CLOSED_PORT, 1, "cannot be reached"),
    (None, 2, "refused the password"),
])
def test_a_command_on_a_state_it_cannot_open_says_why_and_exits_by_whether_retrying_helps(
        check: Check, tmp_path: Path, port: int | None, code: int, says: str) -> None:
    check("--offline", state={"url": pg_url(password="Wrong-Pw-4711", port=port)})  # writes the configuration
    result = CliRunner().invoke(main, ["status", "--config", str(tmp_path / "syncd.toml")])
    assert result.exit_code == code
    assert says in result.output and "Nothing was read or changed" in result.output
    assert "restore a backup" not in result.output

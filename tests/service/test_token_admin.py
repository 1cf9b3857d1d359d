"""Secrets the service under DynamicUser can read: `syncd token add | list | revoke`, the group scheme,
and `state.password_file` against the real PostgreSQL."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from syncd.cli import main
from syncd.config import ConfigError, load
from syncd.service.token_admin import SERVICE_GROUP, readable_by_service, share_with_service
from syncd.service.tokens import Token, TokenStore, add_token, hash_token, load_tokens
from syncd.state.store import StateStore
from tests.conftest import config_toml
from tests.test_state_admin import pg_schema

NOBODY = 65534


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    config = tmp_path / "syncd.toml"
    config.write_text(config_toml(api={"tokens_file": "tokens.toml"}), encoding="utf-8")
    return config


def own_group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def test_a_shared_secret_file_is_0640_in_the_service_group_and_a_member_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    add_token(path, "hr-portal", "hr")
    assert share_with_service(path, own_group()) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_gid == os.getgid()
    assert readable_by_service(path, own_group()) is None
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # As the service would: another UID, the group as a supplementary group only. pytest's own
        # directories are 0700, so the file goes where another user can reach it.
        with tempfile.TemporaryDirectory() as etc:
            Path(etc).chmod(0o755)
            shared = Path(shutil.copy2(path, etc))
            member = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={os.getgid()}",
                                     "cat", str(shared)], capture_output=True, text=True, check=False)
            stranger = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                       "cat", str(shared)], capture_output=True, text=True, check=False)
        assert member.returncode == 0 and "hr-portal" in member.stdout
        assert stranger.returncode != 0 and "Permission denied" in stranger.stderr


def test_a_root_only_secret_file_is_named_with_the_commands_that_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "app-secret"
    path.write_text("s\n")
    path.chmod(0o600)
    problem = readable_by_service(path, own_group())
    assert problem is not None
    assert "mode 0600" in problem and f"chgrp {own_group()} {path}" in problem and "chmod 0640" in problem


def test_token_add_gives_the_file_to_the_group_syncd_or_says_it_is_missing(configured: Path) -> None:
    added = CliRunner().invoke(main, ["token", "add", "hr-portal", "--role", "hr", "--config", str(configured)])
    assert added.exit_code == 0, added.output
    assert_shared_with_service(configured.parent / "tokens.toml", added.stderr)


def assert_shared_with_service(path: Path, stderr: str) -> None:
    """The file is the group syncd's, 0640; or, where that group does not exist, the owner's and the command says so."""
    try:
        gid = grp.getgrnam(SERVICE_GROUP).gr_gid
    except KeyError:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"groupadd --system {SERVICE_GROUP}" in stderr
    else:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.stat().st_gid == gid


def test_city_token_add_gives_the_city_tokens_file_to_the_group_syncd_or_says_it_is_missing(tmp_path: Path) -> None:
    (tmp_path / "a.token").write_text("t\n")
    config = tmp_path / "city.toml"
    config.write_text('tokens_file = "city-tokens.toml"\n[[unit]]\nname = "A区"\nurl = "http://127.0.0.1:1"\n'
                      'token_file = "a.token"\n', encoding="utf-8")
    added = CliRunner().invoke(main, ["city", "token", "add", "city-admin-1", "--config", str(config)])
    assert added.exit_code == 0, added.output
    path = tmp_path / "city-tokens.toml"
    assert [(token.name, token.role) for token in load_tokens(path)] == [("city-admin-1", "auditor")]
    assert_shared_with_service(path, added.stderr)


def test_token_list_shows_names_roles_and_dates_never_the_hash(configured: Path) -> None:
    path = configured.parent / "tokens.toml"
    first = add_token(path, "hr-portal", "hr")
    add_token(path, "ops", "operator")
    listed = CliRunner().invoke(main, ["token", "list", "--config", str(configured)])
    assert listed.exit_code == 0, listed.output
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [line[:2] for line in lines] == [["hr-portal", "hr"], ["ops", "operator"]]
    assert all(line[2].startswith("20") for line in lines)
    assert hash_token(first) not in listed.output and first not in listed.output


def test_a_revoked_token_is_refused_by_the_running_store_and_the_others_still_work(configured: Path) -> None:
    path = configured.parent / "tokens.toml"
    portal = add_token(path, "hr-portal", "hr")
    ops = add_token(path, "ops", "operator")
    path.chmod(0o640)
    store = TokenStore(path)
    assert store.lookup(portal) == Token("hr-portal", "hr")

    revoked = CliRunner().invoke(main, ["token", "revoke", "hr-portal", "--config", str(configured)])

    assert revoked.exit_code == 0, revoked.output
    assert store.lookup(portal) is None
    assert store.lookup(ops) == Token("ops", "operator")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # rewritten in place: owner and mode kept
    again = add_token(path, "hr-portal", "hr")  # the name is free again, and the file still parses
    assert store.lookup(again) == Token("hr-portal", "hr")


def test_revoking_an_unknown_name_is_a_usage_error(configured: Path) -> None:
    add_token(configured.parent / "tokens.toml", "ops", "operator")
    result = CliRunner().invoke(main, ["token", "revoke", "nobody", "--config", str(configured)])
    assert result.exit_code == 2
    assert "no token named 'nobody'" in result.output


def test_the_state_password_comes_from_its_file_and_opens_the_real_postgresql(tmp_path: Path) -> None:
    with pg_schema() as schema_url:  # a schema of its own: other tests migrate `public`
        url = make_url(schema_url)
        (tmp_path / "state-password").write_text(f"{url.password}\n")
        without_password = URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                                      url.query).render_as_string(hide_password=False)
        assert make_url(without_password).password is None
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(state={"url": without_password, "password_file": "state-password"}),
                          encoding="utf-8")
        store = StateStore(load(config).state.url)
        try:
            with store.engine.connect() as connection:
                assert connection.execute(text("SELECT 1")).scalar() == 1
        finally:
            store.close()


@pytest.mark.parametrize(("state", "message"), [
    ({"url": "sqlite:///state.db", "password_file": "state-password"}, "set only with a postgresql:// state url"),
    ({"url": "postgresql://syncd:inline@db/syncd", "password_file": "state-password"}, "a url without a password"),
    ({"url": "postgresql://syncd@db/syncd", "password_file": "missing"}, "a readable file"),
])
def test_a_state_password_file_that_cannot_serve_is_refused_naming_the_key(
        tmp_path: Path, state: dict[str, object], message: str) -> None:
    (tmp_path / "state-password").write_text("pw\n")
    config = tmp_path / "syncd.toml"
    config.write_text(config_toml(state=state), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load(config)
    assert [str(problem) for problem in raised.value.problems if problem.key == "state.password_file"
            and message in problem.expected], [str(problem) for problem in raised.value.problems]

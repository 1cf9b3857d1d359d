"""The tokens file: hashed bearer tokens with roles, re-read when it changes, refused when malformed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.service.tokens import Token, TokensError, TokenStore, add_token, hash_token, load_tokens


def test_an_added_token_is_found_with_its_name_and_role(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "hr-portal", "hr")
    assert TokenStore(path).lookup(token) == Token("hr-portal", "hr")


def test_the_file_holds_only_the_hash_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "ops", "operator")
    text = path.read_text()
    assert token not in text and hash_token(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_tokens_and_absent_files_grant_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    add_token(path, "ops", "operator")
    assert TokenStore(path).lookup("not-a-token") is None
    assert TokenStore(path).lookup("") is None
    assert TokenStore(None).lookup("anything") is None
    assert TokenStore(tmp_path / "missing.toml").lookup("anything") is None


def test_a_token_added_while_the_store_runs_is_accepted_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    store = TokenStore(path)  # the file does not exist yet
    first = add_token(path, "hr-portal", "hr")
    assert store.lookup(first) == Token("hr-portal", "hr")
    second = add_token(path, "ops", "operator")
    assert store.lookup(second) == Token("ops", "operator")
    assert store.lookup(first) == Token("hr-portal", "hr")


def test_a_removed_token_stops_working_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    keep = add_token(path, "ops", "operator")
    store = TokenStore(path)
    removed = add_token(path, "hr-portal", "hr")
    assert store.lookup(removed) is not None
    path.write_text(f'[[token]]\nname = "ops"\nrole = "operator"\nsha256 = "{hash_token(keep)}"\n')
    assert store.lookup(removed) is None
    assert store.lookup(keep) == Token("ops", "operator")


def test_a_duplicate_name_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    add_token(path, "hr-portal", "hr")
    before = path.read_text()
    with pytest.raises(TokensError, match=r"tokens\.toml.*'hr-portal' already exists"):
        add_token(path, "hr-portal", "operator")
    assert path.read_text() == before


@pytest.mark.parametrize(("name", "role"), [("", "hr"), ("has space", "hr"), ('qu"ote', "hr"), ("ok", "admin")])
def test_a_bad_name_or_role_is_refused(tmp_path: Path, name: str, role: str) -> None:
    path = tmp_path / "tokens.toml"
    with pytest.raises(TokensError, match=r"tokens\.toml"):
        add_token(path, name, role)
    assert not path.exists() or path.read_text() == ""


def test_a_name_in_any_script_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "人事处-console", "hr")
    assert TokenStore(path).lookup(token) == Token("人事处-console", "hr")


def test_a_token_is_appended_to_a_hand_written_file_without_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(f'[[token]]\nname = "old"\nrole = "hr"\nsha256 = "{hash_token("x")}"')
    token = add_token(path, "new", "operator")
    assert [t.name for t in load_tokens(path)] == ["old", "new"]
    assert TokenStore(path).lookup(token) == Token("new", "operator")


GOOD = 'name = "a"\nrole = "hr"\nsha256 = "' + "ab" * 32 + '"\n'


@pytest.mark.parametrize(("text", "message"), [
    ("[[token]\n", "not valid TOML"),
    ("token = 3\n", "array of tables"),
    ("[other]\n", "unknown top-level key"),
    (f"[[token]]\n{GOOD}\n[[token]]\nname = \"b\"\nrole = \"admin\"\nsha256 = \"{'cd' * 32}\"\n",
     r"entry 2 \('b'\): `role` must be one of hr, operator, auditor, got 'admin'"),
    ('[[token]]\nname = "a"\nrole = "hr"\nsha256 = "not-hex"\n', r"entry 1 \('a'\): `sha256` must be 64 hex"),
    ('[[token]]\nrole = "hr"\nsha256 = "' + "ab" * 32 + '"\n', r"entry 1: `name` must be"),
    (f"[[token]]\n{GOOD}\n[[token]]\n{GOOD}", r"entry 2 \('a'\): duplicate name"),
    (f"[[token]]\n{GOOD}token = \"plain\"\n", r"entry 1 \('a'\): unknown key\(s\) \['token'\]"),
])
def test_a_malformed_file_is_refused_at_load_naming_the_file_and_entry(tmp_path: Path, text: str,
                                                                        message: str) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(TokensError, match=message) as caught:
        TokenStore(path)
    assert str(path) in str(caught.value)


def test_a_file_broken_while_running_fails_closed_and_is_logged(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "ops", "operator")
    store = TokenStore(path)
    path.write_text(path.read_text() + "role = \n")
    with capture_logs() as logs:
        assert store.lookup(token) is None
    [event] = [e for e in logs if e["event"] == "tokens.reload_failed"]
    assert event["log_level"] == "error" and str(path) in event["error"]
    assert token not in str(logs)
    path.write_text(f'[[token]]\nname = "ops"\nrole = "operator"\nsha256 = "{hash_token(token)}"\n')
    assert store.lookup(token) == Token("ops", "operator")


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "tokens.toml"
    directory.mkdir()
    with pytest.raises(TokensError, match=r"tokens\.toml: cannot be read"):
        TokenStore(directory)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[[token]]")
    with pytest.raises(TokensError, match=r"binary\.toml: not UTF-8"):
        TokenStore(binary)


def test_an_edit_that_keeps_size_and_mtime_is_seen_at_the_next_lookup(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "ops", "operator")
    store = TokenStore(path)
    assert store.lookup(token) == Token("ops", "operator")
    before = path.stat()
    text = path.read_text()
    path.write_text(text.replace(hash_token(token), hash_token("another-token")))  # same length, same mtime
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert store.lookup(token) is None


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o660])
def test_a_group_or_world_writable_file_is_refused_with_a_clear_error(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "ops", "operator")
    store = TokenStore(path)
    path.chmod(mode)
    with pytest.raises(TokensError, match=rf"tokens\.toml: group- or world-writable \(mode {mode:04o}\).*chmod 600"):
        TokenStore(path)
    with capture_logs() as logs:
        assert store.lookup(token) is None and store.lookup(token) is None  # closed while running, logged once
    assert [e["event"] for e in logs] == ["tokens.reload_failed"]
    path.chmod(0o640)  # readable by the group is fine
    assert store.lookup(token) == Token("ops", "operator")

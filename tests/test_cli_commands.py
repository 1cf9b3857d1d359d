"""Every command answers `--help` and takes `--config` after its name, as the README says."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from syncd.cli import main
from tests.conftest import config_toml


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command under `group`, groups included."""
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += commands(command, (*prefix, name))
    return found


COMMANDS = commands()


def test_the_commands_are_all_found() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"token add", "token list", "token revoke", "report completeness", "state backup", "check-config",
            "run", "sync", "demo"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_answers_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_takes_config_after_its_name(path: tuple[str, ...], tmp_path: Path) -> None:
    # Before --help, so nothing runs: an unknown --config would fail the parse with "No such option".
    result = CliRunner().invoke(main, [*path, "--config", str(tmp_path / "syncd.toml"), "--help"])
    assert result.exit_code == 0, result.output
    assert "--config" in result.output


def test_config_after_a_subcommand_is_the_one_used(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(config_toml(api={"tokens_file": "tokens.toml"}), encoding="utf-8")
    added = CliRunner().invoke(main, ["token", "add", "hr-portal", "--role", "hr", "--config", str(config)])
    assert added.exit_code == 0, added.output
    listed = CliRunner().invoke(main, ["token", "list", "--config", str(config)])
    assert listed.stdout.startswith("hr-portal\thr\t")

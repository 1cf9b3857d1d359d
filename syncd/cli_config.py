"""What every `syncd` command shares: its exit codes, the `--config` option, and loading the file it names.

Apart from `syncd.cli` so that command groups in other modules (`syncd.state.commands`) use them
without importing the CLI that registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from syncd import log as logging_setup
from syncd.config import DEFAULT_PATH, Config, ConfigError, load

EXIT_FAILED = 1
EXIT_CONFIG = 2


def _set_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """`--config` is accepted before the command (`syncd --config F sync`) and after it (`syncd sync --config F`)."""
    if value is not None:
        ctx.ensure_object(dict)["config_path"] = value
        ctx.find_root().ensure_object(dict)["config_path"] = value


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--config PATH` option of every command."""
    return click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="SYNCD_CONFIG",
                        expose_value=False, callback=_set_config, is_eager=True,
                        help=f"Configuration file (default {DEFAULT_PATH}, or SYNCD_CONFIG).")(command)


def config_path(ctx: click.Context) -> Path:
    """The configuration file named by `--config` (before or after the command), SYNCD_CONFIG, or the default."""
    return ctx.find_root().ensure_object(dict).get("config_path") or DEFAULT_PATH


def load_config(ctx: click.Context) -> Config:
    """The command's configuration, with logging set up from it; exit 2 naming every problem when it is not valid."""
    path = config_path(ctx)
    try:
        config = load(path)
    except ConfigError as exc:
        click.echo(f"syncd: configuration {path} is not valid:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        ctx.exit(EXIT_CONFIG)
    logging_setup.configure(config.logging.format, config.logging.level, config.logging.show_personal_data)
    return config

"""`syncd state backup|restore|migrate`: the state database's care, for the administrator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from syncd.cli_config import EXIT_CONFIG, EXIT_FAILED, config_path, load_config

if TYPE_CHECKING:
    from syncd.state.admin import AdminError


def _fail(ctx: click.Context, exc: AdminError) -> NoReturn:
    """Print why, and exit 1 when the state is busy (try again later) or 2 when the request cannot be done."""
    from syncd.state.admin import StateInUse

    click.echo(f"syncd: {exc}", err=True)
    ctx.exit(EXIT_FAILED if isinstance(exc, StateInUse) else EXIT_CONFIG)


@click.group("state")
def state() -> None:
    """Back up, restore, or move the state database (links, runs, journal)."""


@state.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup_command(ctx: click.Context, file: Path) -> None:
    """Copy the state to FILE (mode 0600), consistently even while the daemon runs.

    A PostgreSQL state is backed up with pg_dump: the command says how."""
    from syncd.state import admin  # SQLAlchemy and Alembic load when a state command runs, not for --help

    config = load_config(ctx)
    try:
        admin.backup(config.state.url, file)
    except admin.AdminError as exc:
        _fail(ctx, exc)
    click.echo(f"backed up the state ({admin.shown(config.state.url)}) to {file}")


@state.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def restore_command(ctx: click.Context, file: Path) -> None:
    """Replace the state by the backup FILE; refuses while the daemon or a cycle uses the state.

    The replaced database is kept beside it as <state>.before-restore."""
    from syncd.state import admin

    config = load_config(ctx)
    try:
        kept = admin.restore(config.state.url, file)
    except admin.AdminError as exc:
        _fail(ctx, exc)
    click.echo(f"restored the state ({admin.shown(config.state.url)}) from {file}")
    if kept is not None:
        click.echo(f"the state it replaced is kept as {kept}")
    click.echo("start the daemon again: systemctl start syncd")


@state.command("migrate")
@click.option("--to", "to", required=True, metavar="URL",
              help="The empty destination, e.g. postgresql+psycopg://syncd@db.example/syncd "
                   "(password from PGPASSWORD or ~/.pgpass).")
@click.pass_context
def migrate_command(ctx: click.Context, to: str) -> None:
    """Copy the whole state into another, empty database (SQLite to PostgreSQL); the source is kept.

    Stop the daemon first; afterwards point [state] url at the destination and start it."""
    from sqlalchemy.engine import make_url

    from syncd.state import admin

    config = load_config(ctx)
    destination = admin.state_url(to)
    try:
        copied = admin.migrate(config.state.url, destination)
    except admin.AdminError as exc:
        _fail(ctx, exc)
    click.echo(f"copied the state ({admin.shown(config.state.url)}) to {admin.shown(destination)}:")
    for table, count in copied.items():
        click.echo(f"  {table:<20} {count:>8} rows")
    # The URL is shown masked; where it held a password the operator puts it back (or uses PGPASSWORD).
    password = " with the password where *** stands" if make_url(destination).password else ""
    click.echo(f"next: set [state] url = \"{admin.shown(destination)}\"{password} in {config_path(ctx)}, "
               "run syncd check-config, then start the daemon")

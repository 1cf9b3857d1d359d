"""The `syncd` command (DESIGN.md §9). Exit codes: 0 success, 1 run failed, 2 usage or configuration, 3 held."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncd import log as logging_setup
from syncd.cli_config import EXIT_CONFIG, EXIT_FAILED, config_option, config_path
from syncd.cli_config import load_config as _load_config
from syncd.config import ConfigError

if TYPE_CHECKING:
    from syncd.city import CityConfig
from syncd.state import MigrationFailed, StateUnavailable
from syncd.state.commands import state as state_commands


class _Group(click.Group):
    """Adds `--config` to every command, so it may come after the command name too."""

    group_class = type  # `@main.group()` makes a _Group, whose later subcommands get `--config` as well

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "config_path" for p in cmd.params):
            config_option(cmd)
        if isinstance(cmd, click.Group) and not isinstance(cmd, _Group):
            for sub in cmd.commands.values():
                if not any(p.name == "config_path" for p in sub.params):
                    config_option(sub)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Every command: a state database that cannot be migrated is a clear refusal, not a traceback."""
        try:
            return super().invoke(ctx)
        except StateUnavailable as exc:
            # A refused password is a configuration fault; a database out of reach may come back
            # (exit 1: systemd restarts the service, which it does not after exit 2).
            click.echo(f"syncd: {exc}. Nothing was read or changed.", err=True)
            ctx.exit(EXIT_CONFIG if exc.refused else EXIT_FAILED)
        except MigrationFailed as exc:
            click.echo(f"syncd: {exc}. Nothing was changed; run the release that wrote it, or restore a "
                       f"backup (`syncd state restore FILE`).", err=True)
            ctx.exit(EXIT_CONFIG)


@click.group(cls=_Group)
@config_option
@click.version_option(package_name="syncd", prog_name="syncd")
@click.pass_context
def main(ctx: click.Context) -> None:
    """syncd keeps a unit's part of the Zhengzhengding directory equal to its HR records."""
    ctx.ensure_object(dict)


@main.command("check-config")
@click.option("--offline", is_flag=True, help="Check the file and what is on this host only; reach no server.")
@click.option("--send-test-notice", is_flag=True, help="Also send a signed test notice to escalation.webhook.")
@click.pass_context
def check_config(ctx: click.Context, offline: bool, send_test_notice: bool) -> None:
    """Check what `syncd run` needs: the configuration, files and secrets, the state, every server.

    Exit 2 when the configuration, a file or a secret is wrong (every problem with its key), 1 when
    a server is out of reach (the state database, HR source, gateway, mail relay or webhook)."""
    from syncd.preflight import Findings, check_files, check_state, reach

    config = _load_config(ctx)
    findings = Findings()
    check_files(config, config_path(ctx), findings)
    if not findings.problems:
        click.echo(f"configuration {config_path(ctx)} is valid (unit {config.unit.name}, "
                   f"source {config.source.kind}, target {config.target.base_url})")
        if not offline or config.state.url.startswith("sqlite"):
            check_state(config, findings)
        if not offline:
            reach(config, findings, send_test_notice)
    for line in findings.passed:
        click.echo(line)
    if findings.problems or findings.unreachable:
        _print_problems(ctx, findings.problems + findings.unreachable)
        ctx.exit(EXIT_CONFIG if findings.problems else EXIT_FAILED)


def _print_problems(ctx: click.Context, problems: list[str]) -> None:
    click.echo(f"syncd: configuration {config_path(ctx)} has problems:", err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)


@main.command()
@click.option("--full", is_flag=True, help="Also read the directory and repair what was changed by hand.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def sync(ctx: click.Context, full: bool, dry_run: bool, fmt: str) -> None:
    """Run one cycle now, then exit."""
    from syncd.engine.cycle import CycleOptions, run_cycle
    from syncd.reporting.present import (
        print_drift,
        print_held,
        print_issues,
        print_outcomes,
        print_plan,
        print_recorded_writes,
        print_rejections,
        result_json,
    )
    from syncd.state.store import Busy, StateStore
    from syncd.wiring import build_source, build_target

    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        target = build_target(config, dry_run=dry_run)
        result = run_cycle(config, build_source(config), target, store,
                           CycleOptions(trigger="manual", dry_run=dry_run, full=full))
    except Busy as exc:
        click.echo(f"syncd: {exc}; try again when it has finished", err=True)
        ctx.exit(EXIT_FAILED)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(result_json(result), ensure_ascii=False, indent=2))
    else:
        print_rejections(result.snapshot.rejections)
        print_issues(result.snapshot.issues)
        if result.drift is not None:
            print_drift(result.drift)
        print_plan(result.plan, title="Plan (dry run: nothing written)" if dry_run else "Plan")
        print_held(result.held)
        if dry_run:
            print_recorded_writes(target)
        else:
            print_outcomes(result)
    ctx.exit(result.exit_code)


def _decide(ctx: click.Context, run_id: str, approve: bool) -> None:
    from syncd.state.store import StateStore

    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        count = store.decide(run_id, approve)
    except LookupError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        store.close()
    verb = "approved" if approve else "rejected"
    if count == 0:
        click.echo(f"run {run_id} has no held changes left to decide", err=True)
        ctx.exit(EXIT_CONFIG)
    after = "the next sync applies them" if approve else "they stay held; fix HR's data, or approve a later run"
    click.echo(f"{count} held change(s) of run {run_id} {verb}; {after}")


@main.command()
@click.argument("run_id")
@click.pass_context
def approve(ctx: click.Context, run_id: str) -> None:
    """Approve the changes RUN held (mass deactivation, structure changes): the next sync applies them."""
    _decide(ctx, run_id, approve=True)


@main.command()
@click.argument("run_id")
@click.pass_context
def reject(ctx: click.Context, run_id: str) -> None:
    """Reject the changes RUN held: they are not applied."""
    _decide(ctx, run_id, approve=False)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Last runs, runs waiting for a decision, overdue changes, queued resyncs, and whether a daemon runs."""
    from zoneinfo import ZoneInfo

    from syncd.service.leader import running_daemon
    from syncd.service.status import gather_status
    from syncd.state.store import StateStore

    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        today = datetime.now(ZoneInfo(config.schedule.timezone)).date()
        report = gather_status(store, today, running_daemon(store))
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    daemon = report["daemon"]
    click.echo(f"Daemon: running, pid {daemon['pid']} on {daemon['host']} since {daemon['since']}"
               if daemon["running"] else "Daemon: not running")
    click.echo("Last runs:" if report["runs"] else "No runs yet.")
    for run in report["runs"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run["counts"].items()))
        scope = "" if run["scope"] == "all" else f" [{run['scope']}]"
        click.echo(f"  {run['id']}  {run['started_at']}  {run['trigger']:<8} {run['outcome'] or '':<8} "
                   f"{counts}{scope}")
    for held in report["held"]:
        click.echo(f"Waiting for a decision: run {held['run_id']} ({held['started_at']}) holds {held['changes']} "
                   f"change(s): `syncd approve {held['run_id']}` or `syncd reject {held['run_id']}`")
    if report["overdue"]:
        click.echo(f"Overdue (past their due date, not in the directory): {len(report['overdue'])}")
        for entry in report["overdue"]:
            click.echo(f"  {entry['kind']} {entry['subject']}  due {entry['due']}  {entry['state']}"
                       + (f" ({entry['error']})" if entry["error"] else ""))
    for problem in report["escalations"]:
        acked = f", acknowledged by {problem['acknowledged_by']}" if problem["acknowledged_at"] else ""
        click.echo(f"Open escalation (level {problem['level']}) {problem['key']}: {problem['title']} "
                   f"since {problem['opened_at']}{acked}")
    waiting = [r for r in report["resyncs"] if r["status"] in ("queued", "running")]
    for request in waiting:
        click.echo(f"Resync {request['id']} {request['status']}: {request['scope']} {request['subject'] or ''}")


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """The daemon: sync on schedule, serve the control API, until SIGTERM (systemd starts this)."""
    from syncd.service.daemon import Daemon

    config = _load_config(ctx)
    ctx.exit(Daemon(config_path(ctx), config).run())


@main.command()
@click.option("--employee", "employee_id", metavar="ID", help="One person, by HR employee id (工号).")
@click.option("--department", "department_id", metavar="ID", help="One department and everything under it.")
@click.option("--all", "everything", is_flag=True, help="The whole unit.")
@click.option("--full", is_flag=True, help="Also read the directory and repair what was changed by hand.")
@click.option("--no-wait", is_flag=True, help="Queue it for the daemon and return at once.")
@click.option("--by", help="Who asked (default: the invoking user).")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds to wait for the daemon to finish it.")
@click.pass_context
def resync(ctx: click.Context, employee_id: str | None, department_id: str | None, everything: bool, full: bool,
           no_wait: bool, by: str | None, timeout: float) -> None:
    """Resync one person, one department or everything now: the running daemon does it within seconds;
    without a daemon it runs here. Waits and exits with the run's code."""
    import time

    from syncd.domain.scope import Scope
    from syncd.service.leader import running_daemon
    from syncd.service.resyncs import carry_out
    from syncd.state.store import ResyncQueueFull, StateStore
    from syncd.wiring import build_source, build_target

    chosen = [s for s in (Scope("employee", employee_id) if employee_id else None,
                          Scope("department", department_id) if department_id else None,
                          Scope("all") if everything else None) if s is not None]
    if len(chosen) != 1:
        raise click.UsageError("name exactly one of --employee ID, --department ID, --all")
    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        try:
            request = store.queue_resync(chosen[0], full, by or os.environ.get("SUDO_USER") or getpass.getuser())
        except ResyncQueueFull as exc:
            raise click.ClickException(f"{exc}; try again once the daemon has carried some out") from None
        daemon = running_daemon(store)
        if daemon is not None:
            click.echo(f"resync {request.id} queued for the daemon ({daemon.describe()})", err=True)
            if no_wait:
                click.echo(request.id)
                return
            deadline = time.monotonic() + timeout
            while (current := store.resync(request.id)) is not None and current.status in ("queued", "running"):
                if time.monotonic() > deadline:
                    click.echo(f"syncd: resync {request.id} is still {current.status}; see `syncd status`", err=True)
                    ctx.exit(EXIT_FAILED)
                time.sleep(0.2)
            done = current
        else:
            claimed = store.claim_resync(request.id)
            assert claimed is not None
            done = carry_out(claimed, config, build_source(config), build_target(config), store)
            if done is None:
                click.echo("syncd: another cycle is running; the resync stays queued", err=True)
                ctx.exit(EXIT_FAILED)
    finally:
        store.close()
    assert done is not None
    click.echo(f"resync {done.id} ({done.scope.describe()}): {done.status}, outcome {done.outcome}"
               + (f", run {done.run_id}" if done.run_id else "") + (f" — {done.message}" if done.message else ""))
    ctx.exit(done.exit_code if done.exit_code is not None else EXIT_FAILED)


@main.command()
@click.argument("key")
@click.option("--by", help="Who acknowledges (default: the invoking user).")
@click.pass_context
def ack(ctx: click.Context, key: str, by: str | None) -> None:
    """Acknowledge an open escalation: its reminders stop, its level-2 deadline does not."""
    from datetime import UTC

    from syncd.domain.escalation import acknowledge
    from syncd.state.store import StateStore

    config = _load_config(ctx)
    who = by or os.environ.get("SUDO_USER") or getpass.getuser()
    store = StateStore(config.state.url)
    try:
        done = acknowledge(store, key, who, datetime.now(UTC))
    finally:
        store.close()
    if not done:
        click.echo(f"syncd: no open problem {key!r} (see `syncd status`)", err=True)
        ctx.exit(EXIT_CONFIG)
    click.echo(f"{key}: acknowledged by {who}; reminders stop, the deadline to level 2 still holds")


@main.group()
def token() -> None:
    """Tokens of the control API (and the console)."""


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["hr", "operator", "auditor"]), required=True,
              help="auditor: read status and compliance (the city bureau); hr: resync too; operator: everything.")
@click.pass_context
def token_add(ctx: click.Context, name: str, role: str) -> None:
    """Create a token for NAME; it is printed once, and only its hash is kept in api.tokens_file."""
    from syncd.service.token_admin import share_with_service
    from syncd.service.tokens import TokensError, add_token

    path = _tokens_file(ctx)
    try:
        secret = add_token(path, name, role)
    except TokensError as exc:
        raise click.UsageError(str(exc)) from exc
    if note := share_with_service(path):
        click.echo(f"syncd: warning: {note}", err=True)
    click.echo(f"token for {name} (role {role}); shown once, keep it now:", err=True)
    click.echo(secret)


def _tokens_file(ctx: click.Context) -> Path:
    config = _load_config(ctx)
    if config.api.tokens_file is None:
        raise click.UsageError("api.tokens_file is not set in the configuration")
    return config.api.tokens_file


@token.command("list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """The tokens of api.tokens_file: name, role, when created (never the token or its hash)."""
    from syncd.service.token_admin import list_tokens
    from syncd.service.tokens import TokensError

    path = _tokens_file(ctx)
    try:
        listed = list_tokens(path)
    except TokensError as exc:
        raise click.UsageError(str(exc)) from exc
    for entry in listed:
        created = entry.created.isoformat() if entry.created else "-"
        click.echo(f"{entry.name}\t{entry.role}\t{created}")
    if not listed:
        click.echo(f"no tokens in {path}", err=True)


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Remove the token of NAME from api.tokens_file; the running daemon refuses it from its next request."""
    from syncd.service.token_admin import revoke_token
    from syncd.service.tokens import TokensError

    path = _tokens_file(ctx)
    try:
        revoke_token(path, name)
    except TokensError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"revoked the token of {name}")


def _freeze(ctx: click.Context, employee_id: str, frozen: bool, by: str | None) -> None:
    from syncd.domain.target import TargetError
    from syncd.engine.freeze import NotLinked, set_frozen
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    config = _load_config(ctx)
    requested_by = by or os.environ.get("SUDO_USER") or getpass.getuser()
    store = StateStore(config.state.url)
    try:
        run_id = set_frozen(build_target(config), store, employee_id, frozen, requested_by, config.schedule.timezone)
    except NotLinked as exc:
        raise click.UsageError(str(exc)) from exc
    except TargetError as exc:
        click.echo(f"syncd: the directory refused: {exc.category}: {exc}", err=True)
        ctx.exit(EXIT_FAILED)
    finally:
        store.close()
    state = "frozen; syncs keep it frozen until `syncd unfreeze`" if frozen else "unfrozen"
    click.echo(f"{employee_id}: login {state} (run {run_id}, requested by {requested_by})")


@main.command()
@click.argument("employee_id")
@click.option("--by", help="Who asked (default: the invoking user).")
@click.pass_context
def freeze(ctx: click.Context, employee_id: str, by: str | None) -> None:
    """Freeze a person's login now (a lost phone); it stays frozen whatever HR says."""
    _freeze(ctx, employee_id, True, by)


@main.command()
@click.argument("employee_id")
@click.option("--by", help="Who asked (default: the invoking user).")
@click.pass_context
def unfreeze(ctx: click.Context, employee_id: str, by: str | None) -> None:
    """Unfreeze a person's login."""
    _freeze(ctx, employee_id, False, by)


@main.group()
def report() -> None:
    """Reports for HR."""


@report.command("completeness")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "xlsx"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (required for xlsx; default for table/csv: standard output).")
@click.pass_context
def report_completeness(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Article 9 completeness: per in-post person, the missing or invalid fields, by department."""
    from syncd.domain.validate import CodeTables, build_snapshot
    from syncd.reporting import report as reports
    from syncd.wiring import build_source

    config = _load_config(ctx)
    snapshot = build_snapshot(build_source(config), config.unit.root_department,
                              CodeTables.load(config.source.code_tables))
    result = reports.completeness(snapshot)
    if fmt == "xlsx":
        if output is None:
            raise click.UsageError("--format xlsx needs --output FILE.xlsx")
        reports.write_xlsx(result, output)
    elif fmt == "csv":
        if output is None:
            reports.write_csv(result, sys.stdout)
        else:
            with output.open("w", encoding="utf-8-sig", newline="") as handle:
                reports.write_csv(result, handle)
    else:
        _print_text(reports.format_table(result), output)
    _warn_partial(ctx, snapshot.complete)


def _period_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--from`, `--to`, `--format table|json|xlsx` and `--output` of the Article 9 figures' reports."""
    for option in reversed((
            click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
                         help="First day of the period (YYYY-MM-DD, schedule.timezone)."),
            click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
                         help="Last day of the period, included."),
            click.option("--format", "fmt", type=click.Choice(["table", "json", "xlsx"]), default="table",
                         show_default=True),
            click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                         help="Write to this file (required for xlsx; default for table/json: standard output)."))):
        command = option(command)
    return command


def _print_text(text: str, output: Path | None) -> None:
    """A report's text on standard output, or in `output` (UTF-8)."""
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


def _warn_partial(ctx: click.Context, complete: bool) -> None:
    """A report from an HR read that broke off says so and fails."""
    if not complete:
        from syncd.reporting.messages import REPORT_PARTIAL

        click.echo(REPORT_PARTIAL, err=True)
        ctx.exit(EXIT_FAILED)


@report.command("compliance")
@_period_options
@click.pass_context
def report_compliance(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """Article 9 figures: personnel changes of the period on time, completeness, open problems, holds."""
    from zoneinfo import ZoneInfo

    from syncd.console.snapshots import read_hr
    from syncd.domain import compliance as figures
    from syncd.state.store import StateStore

    if end < start:
        raise click.BadParameter("must not be before --from", param_hint="--to")
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE.xlsx")
    config = _load_config(ctx)
    snapshot = read_hr(config)
    store = StateStore(config.state.url)
    try:
        today = datetime.now(ZoneInfo(config.schedule.timezone)).date()
        result = figures.compliance(store, config.unit.name, start.date(), end.date(), today,
                                    figures.Rules.of(config), figures.LatestCompleteness().of(snapshot))
    finally:
        store.close()
    if fmt == "xlsx":
        assert output is not None
        figures.write_xlsx(result, output)
    else:
        _print_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2) if fmt == "json"
                    else figures.format_table(result), output)
    _warn_partial(ctx, snapshot.complete)


CITY_DEFAULT_PATH = Path("/etc/syncd/city.toml")


@main.group(invoke_without_command=True)
@click.pass_context
def city(ctx: click.Context) -> None:
    """The city bureau's view over its units: serves the city console; `report` prints the figures.

    `--config city.toml` (default /etc/syncd/city.toml): `[[unit]] name, url, token_file` and, for the
    console, `listen` and `tokens_file` (who may sign in: `syncd city token add NAME`)."""
    if ctx.invoked_subcommand is not None:
        return
    from syncd.service.city import serve_city
    from syncd.service.tokens import TokensError, TokenStore

    config = _load_city(ctx)
    if config.tokens_file is None:
        click.echo(f"syncd: city configuration {_city_path(ctx)} is not valid:", err=True)
        click.echo("  tokens_file: not set; expected the file of the tokens that may sign in "
                   "(`syncd city token add NAME`)", err=True)
        ctx.exit(EXIT_CONFIG)
    logging_setup.configure("auto", "info")
    try:
        TokenStore(config.tokens_file)  # a malformed or writable-by-others file stops here, not at a sign-in
    except TokensError as exc:
        click.echo(f"syncd: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    try:
        ctx.exit(serve_city(config))
    except OSError as exc:
        click.echo(f"syncd: cannot listen on {config.listen}: {exc.strerror}", err=True)
        ctx.exit(EXIT_CONFIG)


def _city_path(ctx: click.Context) -> Path:
    """`--config`, or SYNCD_CONFIG, or /etc/syncd/city.toml (never the unit's default configuration)."""
    return ctx.find_root().ensure_object(dict).get("config_path") or CITY_DEFAULT_PATH


def _load_city(ctx: click.Context) -> CityConfig:
    """The city configuration, or exit 2 naming every bad key."""
    from syncd import city as cities

    path = _city_path(ctx)
    try:
        return cities.load_city(path)
    except ConfigError as exc:
        click.echo(f"syncd: city configuration {path} is not valid:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        ctx.exit(EXIT_CONFIG)


@city.command("report")
@_period_options
@click.pass_context
def city_report(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """Every unit's Article 9 figures for the period, worst first (xlsx: the annual assessment); exit 1 when a
    unit did not answer."""
    from syncd import city as cities

    if end < start:
        raise click.BadParameter("must not be before --from", param_hint="--to")
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE.xlsx")
    config = _load_city(ctx)
    logging_setup.configure("auto", "warning")
    standings = cities.overview(config, start.date(), end.date())
    if fmt == "xlsx":
        assert output is not None
        cities.write_xlsx(standings, start.date(), end.date(), output, config.zone)
    else:
        _print_text(json.dumps([s.as_json() for s in standings], ensure_ascii=False, indent=2) if fmt == "json"
                    else cities.format_table(standings, config.zone), output)
    if any(s.error is not None for s in standings):
        ctx.exit(EXIT_FAILED)


@city.group("token")
def city_token() -> None:
    """Who may sign in to the city console (the city configuration's `tokens_file`)."""


@city_token.command("add")
@click.argument("name")
@click.pass_context
def city_token_add(ctx: click.Context, name: str) -> None:
    """Create a sign-in token for NAME (read-only); it is printed once, and only its hash is kept."""
    from syncd.service.token_admin import share_with_service
    from syncd.service.tokens import TokensError, add_token

    config = _load_city(ctx)
    if config.tokens_file is None:
        raise click.UsageError("tokens_file is not set in the city configuration")
    try:
        secret = add_token(config.tokens_file, name, "auditor")
    except TokensError as exc:
        raise click.UsageError(str(exc)) from exc
    if note := share_with_service(config.tokens_file):  # syncd-city.service reads it as the group syncd
        click.echo(f"syncd: warning: {note}", err=True)
    click.echo(f"city console token for {name}; shown once, keep it now:", err=True)
    click.echo(secret)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8470, show_default=True)
@click.option("--tenant-id", type=int, default=196729, show_default=True)
@click.option("--app-key", default="demo-app-key", show_default=True)
@click.option("--app-secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the app secret (default: the demo secret).")
@click.option("--root-code", default="GO_" + "0" * 31 + "1", show_default=True, help="Root organisationCode.")
@click.option("--root-name", default="郑州市审计局", show_default=True)
@click.option("--admin-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the token of the /_sim admin endpoints (default: the demo token).")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the directory in this JSON file across restarts.")
@click.option("--latency", type=float, default=0.0, show_default=True, help="Seconds added to every call.")
@click.option("--error-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of calls answered HTTP 500.")
@click.option("--throttle-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of calls throttled (HTTP 429, Throttling.User, Retry-After).")
@click.option("--per-second-limit", type=click.IntRange(min=1), help="Throttle calls over this many per second.")
@click.option("--drop-after-commit", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of writes applied and then answered HTTP 502 (a lost response).")
@click.option("--clock-skew", type=float, default=0.0, show_default=True, help="Seconds added to the gateway clock.")
@click.option("--seed", type=int, help="Seed of the fault sequence (deterministic faults).")
def simulator(host: str, port: int, tenant_id: int, app_key: str, app_secret_file: Path | None,
              root_code: str, root_name: str, admin_token_file: Path | None, state_file: Path | None,
              latency: float, error_share: float, throttle_share: float, per_second_limit: int | None,
              drop_after_commit: float, clock_skew: float, seed: int | None) -> None:
    """Serve the bundled Zhengzhengding simulator (demo, tests) until interrupted.

    Faults can also be changed while it runs: POST /_sim/faults with the admin token.
    """
    from connectors.zzd.simulator import SimTenant, serve
    from connectors.zzd.simulator.tenant import Faults
    from syncd.demo import DEMO_ADMIN_TOKEN, DEMO_SECRET

    logging_setup.configure()
    tenant = SimTenant(
        tenant_id=tenant_id, app_key=app_key,
        app_secret=app_secret_file.read_text().strip() if app_secret_file else DEMO_SECRET,
        root_code=root_code, root_name=root_name,
        admin_token=admin_token_file.read_text().strip() if admin_token_file else DEMO_ADMIN_TOKEN,
        state_file=state_file,
        faults=Faults(latency=latency, error_share=error_share, throttle_share=throttle_share,
                      per_second_limit=per_second_limit, drop_after_commit=drop_after_commit,
                      clock_skew=clock_skew, seed=seed),
    )
    click.echo(f"simulator for tenant {tenant_id} on http://{host}:{port} (root {root_code})", err=True)
    serve(tenant, host, port)


@main.command()
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the review workbook (departments, people) here; reads only.")
@click.option("--accept", "accepted", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Store the matches confirmed in this review workbook as links; writes nothing to the directory.")
@click.pass_context
def onboard(ctx: click.Context, output: Path | None, accepted: Path | None) -> None:
    """First sync at a unit whose directory was built by hand: review, then accept the matches."""
    from syncd.engine.cycle import read
    from syncd.engine.onboard import accept, build_review
    from syncd.reporting.messages import onboard_refusal
    from syncd.reporting.onboard_workbook import WorkbookError, read_confirmed, write_review
    from syncd.state.store import Busy, StateStore
    from syncd.wiring import build_source, build_target

    if (output is None) == (accepted is None):
        raise click.UsageError("give exactly one of --output FILE.xlsx and --accept FILE.xlsx")
    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        target = build_target(config)
        if output is not None:
            snapshot = read(config, build_source(config))
            review = build_review(config, snapshot, target, store)
            write_review(review, output)
            click.echo(f"review written to {output}")
            for key, value in review.summary().items():
                click.echo(f"  {key:<28} {value}")
            if not snapshot.complete:
                click.echo("syncd: the HR source broke off: the review is incomplete", err=True)
                ctx.exit(EXIT_FAILED)
            return
        assert accepted is not None
        try:
            rows = read_confirmed(accepted)
        except (WorkbookError, OSError, ValueError, KeyError) as exc:
            click.echo(f"syncd: {accepted} is not an onboarding review workbook: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
        snapshot = read(config, build_source(config))
        if not snapshot.complete:
            click.echo("syncd: the HR source broke off; nothing was stored", err=True)
            ctx.exit(EXIT_FAILED)
        with store.exclusive():
            stored, refusals, run_id = accept(rows, snapshot, store, target, config.unit.root_department,
                                              config.unit.root_organization_code)
    except Busy as exc:
        click.echo(f"syncd: {exc}; try again when it has finished", err=True)
        ctx.exit(EXIT_FAILED)
    finally:
        store.close()
    if refusals:
        for refusal in refusals:
            click.echo(onboard_refusal(refusal.sheet, refusal.row, refusal.reason, refusal.params), err=True)
        click.echo(f"syncd: {len(refusals)} confirmed rows refused; nothing was stored", err=True)
        ctx.exit(EXIT_FAILED)
    click.echo(f"stored {len(stored.departments)} department and {len(stored.people)} person links "
               f"(run {run_id}; {stored.unchanged} already linked). Next: syncd sync --full")


@main.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo's files (configuration, exports, state, daemon log) in this directory.")
@click.option("--serve", is_flag=True, help="Keep the daemon and its console running until Ctrl-C.")
def demo(keep: Path | None, serve: bool) -> None:
    """The whole job on bundled synthetic data against the bundled simulator."""
    from syncd.demo import run_demo

    sys.exit(run_demo(keep, serve))


main.add_command(state_commands)


if __name__ == "__main__":  # pragma: no cover
    main()

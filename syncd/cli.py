"""The `syncd` command (DESIGN.md §9). Exit codes: 0 success, 1 run failed, 2 usage or configuration, 3 held."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from syncd import log as logging_setup
from syncd.config import DEFAULT_PATH, Config, ConfigError, load
from syncd.cycle import CycleResult
from syncd.drift import Drift
from syncd.guard import Held
from syncd.model import FieldIssue, Plan, Rejection

EXIT_FAILED = 1
EXIT_CONFIG = 2


def _load_config(ctx: click.Context) -> Config:
    path: Path = ctx.obj["config_path"]
    try:
        config = load(path)
    except ConfigError as exc:
        click.echo(f"syncd: configuration {path} is not valid:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        ctx.exit(EXIT_CONFIG)
    logging_setup.configure(config.logging.format, config.logging.level, config.logging.show_personal_data)
    return config


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="SYNCD_CONFIG",
              default=DEFAULT_PATH, show_default=True, help="Configuration file.")
@click.pass_context
def main(ctx: click.Context, config_path: Path) -> None:
    """syncd keeps a unit's part of the Zhengzhengding directory equal to its HR records."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command("check-config")
@click.option("--offline", is_flag=True, help="Only validate; do not reach the source and the directory.")
@click.pass_context
def check_config(ctx: click.Context, offline: bool) -> None:
    """Validate the configuration and reach every configured system.

    Exit 2 when the configuration is wrong (with every problem and its key), 1 when a system is
    out of reach."""
    config = _load_config(ctx)
    problems = []
    for key in ("people", "departments"):
        path = getattr(config.source, key)
        if config.source.kind in ("csv", "xlsx") and path is not None and not path.is_file():
            problems.append(f"source.{key}: got {str(path)!r}; expected an existing file")
    if problems:
        _print_problems(ctx, problems)
        ctx.exit(EXIT_CONFIG)
    click.echo(f"configuration {ctx.obj['config_path']} is valid (unit {config.unit.name}, "
               f"source {config.source.kind}, target {config.target.base_url})")
    if offline:
        return
    problems, unreachable = _reach(config)
    if problems or unreachable:
        _print_problems(ctx, problems + unreachable)
        ctx.exit(EXIT_CONFIG if problems else EXIT_FAILED)
    click.echo("reached the HR source and the directory; the unit's root is in the app's scope")


def _print_problems(ctx: click.Context, problems: list[str]) -> None:
    click.echo(f"syncd: configuration {ctx.obj['config_path']} has problems:", err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)


def _reach(config: Config) -> tuple[list[str], list[str]]:
    """Reach every configured system: (configuration problems, systems out of reach)."""
    from syncd.source import SourceError
    from syncd.target import TargetError
    from syncd.wiring import build_source, build_target

    problems: list[str] = []
    unreachable: list[str] = []
    try:
        next(iter(build_source(config).departments()), None)
    except SourceError as exc:
        unreachable.append(f"source ({config.source.kind}): cannot be read: {exc}")
    try:
        scope = build_target(config, retry_attempts=2).visible_scope()
    except TargetError as exc:
        if exc.category == "auth":
            problems.append(f"target.app_key / target.app_secret: the gateway refused them ({exc})")
        else:
            unreachable.append(f"target.base_url: the gateway did not answer ({exc.category}: {exc})")
    else:
        if config.unit.root_organization_code not in scope:
            problems.append(f"unit.root_organization_code: got {config.unit.root_organization_code!r}; expected an "
                            f"organisation in the app's scope ({', '.join(scope) or 'empty'})")
    return problems, unreachable


@main.command()
@click.option("--full", is_flag=True, help="Also read the directory and repair what was changed by hand.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def sync(ctx: click.Context, full: bool, dry_run: bool, fmt: str) -> None:
    """Run one cycle now, then exit."""
    from syncd.cycle import run_cycle
    from syncd.state.store import Busy, StateStore
    from syncd.wiring import build_source, build_target

    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        target = build_target(config, dry_run=dry_run)
        result = run_cycle(config, build_source(config), target, store, trigger="manual", dry_run=dry_run, full=full)
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


def print_issues(issues: list[FieldIssue]) -> None:
    """Article 9 problems of accepted people: synced without the field (count here; details in the report)."""
    if not issues:
        return
    people = len({i.key for i in issues})
    uncreatable = sorted({i.key for i in issues if i.field == "mobile"})
    click.echo(f"Incomplete records: {people} person(s) with missing or invalid fields "
               f"(see `syncd report completeness`)")
    for issue in issues:
        if issue.field == "mobile":
            click.echo(f"  {issue.location()}  person {issue.key}  mobile: {issue.reason}")
    if uncreatable:
        click.echo(f"  not created or adopted until their mobile is fixed: {', '.join(uncreatable)}")


def print_recorded_writes(target: object) -> None:
    """The API writes a dry run recorded instead of sending, counted by call, with their parameters."""
    recorded = getattr(target, "recorded_writes", None)
    if recorded is None:
        return
    by_call: dict[str, tuple[int, set[str]]] = {}
    for path, names in recorded():
        count, params = by_call.get(path, (0, set()))
        by_call[path] = (count + 1, params | set(names))
    total = sum(count for count, _ in by_call.values())
    click.echo(f"API writes this plan would send ({total}; none was sent):")
    for path, (count, params) in sorted(by_call.items()):
        click.echo(f"  {count:>6} × {path}  ({', '.join(sorted(params))})")


def print_drift(drift: Drift) -> None:
    """What the directory read showed that syncd did not push."""
    if not drift.found:
        click.echo("Drift check: the directory holds exactly what syncd pushed.")
        return
    click.echo("Drift check: the directory differs from what syncd pushed (repairs are in the plan):")
    for employee_id, changed in sorted(drift.changed_fields.items()):
        click.echo(f"  {employee_id}: changed by hand: {', '.join(changed)}")
    for label, ids in (("moved by hand", drift.moved), ("deactivated by hand", drift.deactivated),
                       ("not found in the unit's organisations", drift.missing)):
        if ids:
            click.echo(f"  {label}: {', '.join(sorted(ids))}")
    if drift.unknown:
        click.echo(f"  in the directory but unknown to HR ({len(drift.unknown)}): "
                   + ", ".join(sorted(e.employee_code for e in drift.unknown)))


def print_held(held: list[Held]) -> None:
    """What the guard held, and why; approve or reject the run to decide."""
    if not held:
        return
    click.echo(f"Held ({len(held)}):")
    for hold in held:
        click.echo(f"    {hold.change.describe()} — {hold.reason}: {hold.detail}")


def print_rejections(rejections: list[Rejection]) -> None:
    """Rejected records as HR reads them: where, which field, why."""
    if not rejections:
        return
    click.echo(f"Rejected records ({len(rejections)}):")
    for r in rejections:
        click.echo(f"  {r.location()}  {r.kind} {r.key or '?'}  {r.field}: {r.reason}")


def print_plan(plan: Plan, title: str = "Plan") -> None:
    """The plan grouped by change kind, with counts."""
    groups = plan.by_kind()
    click.echo(f"{title}: {len(plan)} change(s)" + ("" if plan.changes else " — the directory is up to date"))
    for kind, changes in groups.items():
        click.echo(f"  {kind.value} ({len(changes)})")
        for change in changes:
            click.echo(f"    {change.describe()}")


def print_outcomes(result: CycleResult) -> None:
    """Per failed change what went wrong, then the run's counts."""
    failed = [o for o in result.report.outcomes if o.state != "done"]
    for outcome in failed:
        click.echo(f"  FAILED {outcome.change.describe()}: {outcome.category}: {outcome.message}")
    done = len(result.report.outcomes) - len(failed)
    click.echo(f"Run {result.run_id}: {result.outcome}; {done} done, {len(failed)} failed, {len(result.held)} held, "
               f"{len(result.snapshot.rejections)} record(s) rejected")
    for run_id in result.decide_runs:
        click.echo(f"Decide with `syncd approve {run_id}` or `syncd reject {run_id}`.")


def result_json(result: CycleResult) -> dict[str, Any]:
    """The plan and outcomes for machines (field names, never personal values)."""
    return {
        "run_id": result.run_id,
        "outcome": result.outcome,
        "complete": result.snapshot.complete,
        "counts": {kind.value: len(changes) for kind, changes in result.plan.by_kind().items()},
        "changes": [
            {"kind": c.kind.value, "subject": c.subject, "fields": sorted(c.fields),
             "department": c.department, "from_department": c.from_department, "reason": c.reason}
            for c in result.plan.changes
        ],
        "drift": None if result.drift is None else {
            "changed_fields": result.drift.changed_fields, "moved": result.drift.moved,
            "deactivated": result.drift.deactivated, "missing": result.drift.missing,
            "unknown": [e.employee_code for e in result.drift.unknown],
        },
        "held": [
            {"kind": h.change.kind.value, "subject": h.change.subject, "reason": h.reason, "detail": h.detail}
            for h in result.held
        ],
        "failed": [
            {"kind": o.change.kind.value, "subject": o.change.subject, "category": o.category, "message": o.message}
            for o in result.report.outcomes if o.state != "done"
        ],
        "rejections": [
            {"location": r.location(), "kind": r.kind, "key": r.key, "field": r.field, "reason": r.reason}
            for r in result.snapshot.rejections
        ],
    }


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
@click.pass_context
def status(ctx: click.Context) -> None:
    """Last runs and the runs waiting for a decision."""
    from syncd.state.store import StateStore

    config = _load_config(ctx)
    store = StateStore(config.state.url)
    try:
        runs = store.runs(10)
        held = store.held_runs()
    finally:
        store.close()
    click.echo("Last runs:" if runs else "No runs yet.")
    for run in runs:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
        click.echo(f"  {run.id}  {run.started_at:%Y-%m-%d %H:%M:%S}  {run.trigger:<8} {run.outcome or 'running':<8} "
                   f"{counts}")
    for run_id, started, count in held:
        click.echo(f"Waiting for a decision: run {run_id} ({started:%Y-%m-%d %H:%M}) holds {count} change(s): "
                   f"`syncd approve {run_id}` or `syncd reject {run_id}`")


def _freeze(ctx: click.Context, employee_id: str, frozen: bool, by: str | None) -> None:
    from syncd.freeze import NotLinked, set_frozen
    from syncd.state.store import StateStore
    from syncd.target import TargetError
    from syncd.wiring import build_target

    config = _load_config(ctx)
    requested_by = by or os.environ.get("SUDO_USER") or getpass.getuser()
    store = StateStore(config.state.url)
    try:
        run_id = set_frozen(build_target(config), store, employee_id, frozen, requested_by)
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
    from syncd import report as reports
    from syncd.validate import CodeTables, build_snapshot
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
        text = reports.format_table(result)
        if output is None:
            click.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
    if not snapshot.complete:
        click.echo("warning: the HR source could not be read to the end; the report is partial", err=True)
        ctx.exit(EXIT_FAILED)


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


DEMO_SECRET = "demo-secret-not-for-production"
DEMO_ADMIN_TOKEN = "demo-admin-token"


@main.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo's files (configuration, exports, state) in this directory.")
def demo(keep: Path | None) -> None:
    """The whole job on bundled synthetic data against the bundled simulator."""
    from syncd.demo import run_demo

    sys.exit(run_demo(keep))


if __name__ == "__main__":  # pragma: no cover
    main()

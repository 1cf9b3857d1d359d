"""What a cycle did, printed for an operator's terminal or as JSON for machines (no personal values)."""

from __future__ import annotations

from typing import Any

import click

from syncd.domain.drift import Drift
from syncd.domain.guard import Held
from syncd.domain.model import FieldIssue, Plan, Rejection
from syncd.engine.cycle import CycleResult


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

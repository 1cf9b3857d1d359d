"""The console's pages: a Flask blueprint of server-rendered Chinese pages beside the JSON API.

Reads come from `ConsoleData`; every action calls the same `Control` method, with the same input
checks (`parse_resync`) and the same role grants, as the API route that does it. No URL carries a
name or a mobile: people are addressed by 工号, and a search by name is a POST.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from syncd.console.auth import add_signin_views, console_requires
from syncd.console.data import ChangeFilter, ConsoleData, Finding, RunFilter, RunLine, page_of
from syncd.domain.model import ARTICLE9_FIELDS
from syncd.domain.scope import ResyncRequest
from syncd.domain.target import TargetError
from syncd.reporting import messages
from syncd.reporting.report import REJECTED, ReportRow, place, summary_lines
from syncd.reporting.spreadsheet import safe_cell
from syncd.service.api import EXTENSION, ApiServices, parse_resync
from syncd.state.store import aware
from syncd.version import __version__

log = structlog.get_logger(__name__)

DATA_EXTENSION = "syncd.console.data"
EXPORT_RUNS = 10000  # runs one download holds
REQUESTED_BY = "requested by "  # the reason `syncd.engine.freeze` journals
ZONE_EXTENSION = "syncd.console.zone"
UNIT_EXTENSION = "syncd.console.unit"
console = Blueprint("console", __name__, template_folder="templates", static_folder="static",
                    static_url_path="/static/console")


def _data() -> ConsoleData:
    data: ConsoleData = current_app.extensions[DATA_EXTENSION]
    return data


def _services() -> ApiServices:
    services: ApiServices = current_app.extensions[EXTENSION]
    return services


def _page_number(name: str = "page") -> int:
    value = request.args.get(name, "1")
    return int(value) if value.isdigit() and 0 < len(value) < 7 else 1


@console.app_context_processor
def _globals() -> dict[str, Any]:
    token = g.get("token")
    data: ConsoleData | None = current_app.extensions.get(DATA_EXTENSION)
    return {"m": messages, "me": token, "home": "console", "signin_hint": messages.console_text("signin.hint"),
            "is_operator": token is not None and token.role == "operator",
            "version": __version__, "unit_name": current_app.extensions.get(UNIT_EXTENSION, ""),
            "code_label": data.code_label if data is not None else str, "page_url": _page_url,
            "finding_text": _finding_text, "run_label": _run_label, "department_label": _department_label,
            "masked": _masked, "mask": mask_mobile, "person_label": _person_label, "run_name": _run_name,
            "department_by_code": _department_by_code}


def _person_label(employee_id: str) -> str:
    """A person by name and 工号 (`李华（A000002）`), or the 工号 alone when HR no longer has them."""
    person = _data().index().snapshot.people.get(employee_id)
    return messages.console_text("person.label", name=person.name, id=employee_id) if person else employee_id


def _run_name(run_id: str) -> str:
    """A run by its time and trigger, looked up once per page."""
    names: dict[str, str] = g.setdefault("run_names", {})
    if run_id not in names:
        run = _data().runs_by_id([run_id]).get(run_id)
        names[run_id] = _run_label(run) if run is not None else run_id
    return names[run_id]


def _department_by_code(organization_code: str | None) -> str:
    """The department syncd linked to a directory organisation, by path and id; the code when none."""
    if not organization_code:
        return "—"
    department = _data().department_of_code(organization_code)
    return _department_label(department) if department else organization_code


def _masked(employee_id: str) -> bool:
    """Whether this page shows the person's mobile masked: for the HR role, unless revealed by a logged click."""
    token = g.get("token")
    return token is not None and token.role == "hr" and employee_id not in g.get("revealed", ())


def mask_mobile(value: str) -> str:
    """A mobile as HR sees it before revealing it: `138****0001`."""
    return f"{value[:3]}****{value[-4:]}" if len(value) >= 8 else "*" * len(value)


def _reveal(employee_id: str, where: str) -> None:
    """Show this person's mobile on the page being rendered, and log who saw whose, and where (art. 15)."""
    g.revealed = {employee_id}
    log.info("console.personal_data_viewed", token_name=g.token.name, role=g.token.role, employee_id=employee_id,
             field="mobile", page=where)


def _run_label(run: RunLine) -> str:
    """A run as HR names it: when it started and what started it (`2026-12-04 10:31 定时（增量）`)."""
    started = run.started_at.astimezone(_zone()).strftime("%Y-%m-%d %H:%M")
    return messages.console_text("run.label", started=started, trigger=messages.label(messages.RUN_TRIGGERS,
                                                                                      run.trigger))


def _department_label(department_id: str | None) -> str:
    """A department by its path of names and its id (`郑州市审计局 / 办公室（D0002）`)."""
    if not department_id:
        return "—"
    path = _data().index().paths.get(department_id)
    return messages.console_text("department.label", path=path, id=department_id) if path else department_id


def _next_sync() -> str:
    """When the next scheduled sync starts (`10:32`), or that it is scheduled."""
    moment = _data().next_cycle()
    return moment.astimezone(_zone()).strftime("%H:%M") if moment else messages.console_text("next_sync.unknown")


def _finding_text(finding: Finding) -> str:
    """Why the directory differs from HR for a subject, and what syncd does about it, in Chinese."""
    params = dict(finding.params)
    params["to"] = _department_label(params.get("to"))
    params["from_"] = _department_label(params.get("from_"))
    params["status"] = params.get("status", "")
    kind = "department" if finding.what.startswith("dept_") else "person"
    params["fields"] = messages.LIST_SEPARATOR.join(messages.field_label(name, kind) for name in sorted(finding.fields))
    what = messages.DIFFERENCES[finding.what].format(**params)
    standing = messages.STANDINGS[finding.standing].format(
        run=_run_label(finding.run) if finding.run is not None else "—", next=_next_sync(),
        category=messages.label(messages.ERROR_CATEGORIES, finding.category))
    return messages.console_text("finding", what=what, standing=standing)


def _page_url(name: str, number: int) -> str:
    """This page's URL with page `name` set to `number` (the other query arguments kept)."""
    args = {**request.args.to_dict(), name: number}
    return url_for(request.endpoint or "console.overview", **(request.view_args or {}), **args)


# -- sign-in: the shared views (syncd.console.auth) -------------------------------------------------


add_signin_views(console)


# -- 总览 ---------------------------------------------------------------------------------------------


@console.get("/")
@console_requires("hr")
def overview() -> ResponseReturnValue:
    """Health, the last runs, holds, overdue changes, open escalations, the HR data's completeness."""
    health = _services().control.health()
    view = _data().overview()
    summary = dict(summary_lines(view.index.report))
    return render_template("overview.html", health=health, view=view, summary=summary)


# -- 信息完整性 --------------------------------------------------------------------------------------------


def _department_filter() -> str | None:
    department = request.args.get("d", "").strip()
    if not department:
        return None
    if department not in _data().index().snapshot.departments:
        abort(404)
    return department


@console.get("/completeness")
@console_requires("hr")
def completeness() -> ResponseReturnValue:
    """The Article 9 report by department, filterable, with its downloads."""
    data = _data()
    index = data.index()
    department = _department_filter()
    report = data.completeness_for(department)
    query = request.args.get("q", "").strip()[:40]
    show_all = request.args.get("all") == "1"
    scope = index.subtree(department) if department else list(index.paths)
    departments = []
    for dept in scope:
        in_post, incomplete = index.in_post[dept], index.incomplete[dept]
        if not in_post or (not incomplete and not show_all):
            continue
        path = index.paths.get(dept, dept)
        if query and query not in path and query != dept:
            continue
        departments.append((dept, path, in_post, incomplete))
    if not department:
        departments.sort(key=lambda d: (-d[3], d[1]))
    rejected = [row for row in report.rows if row.status == REJECTED]
    incomplete_rows = [row for row in report.rows if row.status != REJECTED]
    by_field = Counter(issue.field for row in incomplete_rows for issue in index.issues.get(row.employee_id, ()))
    field = request.args.get("f", "")
    if field:
        if field not in ARTICLE9_FIELDS:
            abort(404)
        having = index.by_field.get(field, set())
        incomplete_rows = [row for row in incomplete_rows if row.employee_id in having]
    sort = request.args.get("sort", "")
    if sort not in _SORTS:
        sort = ""
    descending = request.args.get("desc") == "1"
    if sort or descending:
        incomplete_rows.sort(key=_SORTS[sort], reverse=descending)
    return render_template(
        "completeness.html", index=index, department=department, report=report,
        summary=dict(summary_lines(report)), query=query, show_all=show_all, field=field, sort=sort,
        descending=descending, fields=ARTICLE9_FIELDS, by_field=by_field, sort_url=_sort_url,
        departments=page_of(departments, _page_number("dpage"), 50),
        rows=page_of(incomplete_rows, _page_number(), 100), rejected=rejected[:200], rejected_count=len(rejected))


# How the incomplete people may be sorted (`sort=`; `desc=1` reverses): by department (HR's report order), 工号, name.
_SORTS: dict[str, Callable[[ReportRow], Any]] = {
    "": lambda row: (row.department_path, row.employee_id),
    "employee_id": lambda row: row.employee_id,
    "name": lambda row: row.name,
}


def _sort_url(sort: str) -> str:
    """This page sorted by `sort` (again: the other way round), from the first page, other filters kept."""
    args = {k: v for k, v in request.args.to_dict().items() if k not in ("sort", "desc", "page")}
    current = request.args.get("sort", "")
    if sort:
        args["sort"] = sort
    if current == sort and request.args.get("desc") != "1":
        args["desc"] = "1"
    return url_for("console.completeness", **args)


@console.get("/completeness/report.<fmt>")
@console_requires("hr")
def completeness_download(fmt: str) -> ResponseReturnValue:
    """The report (whole unit or one department) as XLSX or CSV, the same files `syncd report completeness` writes."""
    if fmt not in ("xlsx", "csv"):
        abort(404)
    department = _department_filter()
    body = _data().report_file(department, fmt)
    stamp = datetime.now(_zone()).strftime("%Y%m%d-%H%M")
    name = messages.console_text("report.file_name", scope=department or messages.SCOPES["all"], stamp=stamp, fmt=fmt)
    log.info("console.report_downloaded", token_name=g.token.name, format=fmt, department=department)
    # Flask adds the charset to a text type itself: `text/csv; charset=utf-8`, once.
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx" else "text/csv"
    return send_file(io.BytesIO(body), as_attachment=True, download_name=name, mimetype=mimetype)


# -- 人员查询 -----------------------------------------------------------------------------------------------


@console.get("/people")
@console_requires("hr")
def people() -> ResponseReturnValue:
    """The search form."""
    return render_template("people.html", query="", hits=None)


@console.post("/people/search")
@console_requires("hr")
def people_search() -> ResponseReturnValue:
    """Find a person by 工号 (straight to their page) or by name (a list; the name is never in a URL)."""
    query = request.form.get("q", "").strip()[:80]
    data = _data()
    if not query:
        flash(messages.console_text("person.query_empty"))
        return redirect(url_for("console.people"), code=303)
    if data.knows_person(query):
        log.info("console.person_search", by="employee_id", employee_id=query, token_name=g.token.name)
        return redirect(url_for("console.person", employee_id=query), code=303)
    hits = data.find_by_name(query)
    log.info("console.person_search", by="name", hits=len(hits), token_name=g.token.name)  # never the name
    index = data.index()
    return render_template("people.html", query=query, hits=hits, paths=index.paths)


def _resync_progress(kind: str, subject: str | None) -> ResyncRequest | None:
    request_id = request.args.get("resync", "")
    if not request_id:
        return None
    resync = _services().control.resync(request_id[:32])
    if resync is None or resync.scope.kind != kind or resync.scope.value != subject:
        return None
    return resync


def _resync_failure(resync: ResyncRequest) -> str | None:
    """Why a finished resync did not sync its subject, in Chinese; None when it did."""
    if resync.status == "failed":
        if resync.outcome == "rejected":
            rejections = _data().index().rejections.get(resync.scope.value or "", [])
            reason = messages.GROUP_SEPARATOR.join(messages.problem_text(r) for r in rejections) or "—"
            return messages.RESYNC_FAILURES["rejected"].format(reason=reason)
        if resync.outcome == "not_found":
            return messages.RESYNC_FAILURES["not_found"].format(subject=resync.scope.value)
        return messages.ERROR_CATEGORIES.get(resync.outcome or "", messages.RESYNC_FAILURES["*"])
    if resync.status == "done" and resync.outcome not in ("success", "skipped"):
        return messages.RESYNC_OUTCOMES.get(resync.outcome or "", messages.RESYNC_OUTCOMES["*"])
    return None


def _resync_result(resync: ResyncRequest) -> list[tuple[str, str]]:
    """(tone, sentence) of what a finished resync did to its subject: the fields it updated, unchanged,
    could not create and why, waiting for a decision — from the run's journal, never a blanket success."""
    if resync.status != "done" or resync.run_id is None:
        return []
    data = _data()
    subject = resync.scope.value or ""
    if resync.scope.kind != "employee":
        lines = data.run_changes(resync.run_id)
        states = Counter(line.state for line in lines)
        failed = len(lines) - states["done"] - states["held"]
        return [("ok" if states["done"] == len(lines) else "warn", messages.RESYNC_RESULTS["department"].format(
            total=len(lines), done=states["done"], held=states["held"], failed=failed))]
    found = []
    for line in data.run_changes(resync.run_id, [subject]):
        kind = messages.label(messages.CHANGE_KINDS, line.kind)
        if line.state == "done":
            template = messages.RESYNC_RESULTS.get(f"done.{line.kind}", messages.RESYNC_RESULTS["done.*"])
            fields = messages.LIST_SEPARATOR.join(messages.field_label(name) for name in sorted(line.fields))
            found.append(("ok", template.format(fields=fields, to=_department_label(line.department), kind=kind)))
        elif line.state in ("held", "failed"):
            run = data.runs_by_id([line.run_id]).get(line.run_id)
            found.append(("warn" if line.state == "held" else "bad", messages.RESYNC_RESULTS[line.state].format(
                kind=kind, run=_run_label(run) if run else line.run_id,
                category=messages.label(messages.ERROR_CATEGORIES, line.category))))
        else:
            found.append(("warn", messages.RESYNC_RESULTS["*"].format(
                kind=kind, state=messages.label(messages.CHANGE_STATES, line.state))))
    if found:
        return found
    blocked = [f for f in data.compare([subject]).get(subject, []) if f.what == "uncreatable"]
    if blocked:
        return [("bad", messages.RESYNC_RESULTS["uncreatable"].format(reason=blocked[0].params["reason"]))]
    return [("ok", messages.RESYNC_RESULTS["unchanged"])]


def _person_page(employee_id: str, live: dict[str, Any] | None = None) -> ResponseReturnValue:
    view = _data().person(employee_id)
    if view is None:
        abort(404)
    resync = _resync_progress("employee", employee_id)
    return render_template("person.html", view=view, resync=resync,
                           resync_failure=_resync_failure(resync) if resync else None,
                           resync_result=_resync_result(resync) if resync else [], live=live,
                           reveal_action=url_for("console.person_reveal", employee_id=employee_id),
                           today=_data().today())


@console.get("/people/<employee_id>")
@console_requires("hr")
def person(employee_id: str) -> ResponseReturnValue:
    """HR's record, the directory's link, the journal, and 立即同步."""
    log.info("console.person_viewed", employee_id=employee_id, token_name=g.token.name)
    return _person_page(employee_id)


@console.post("/people/<employee_id>/reveal")
@console_requires("hr")
def person_reveal(employee_id: str) -> ResponseReturnValue:
    """The person's page with their mobile shown in full (the click is logged)."""
    _reveal(employee_id, "person")
    return _person_page(employee_id)


@console.post("/people/<employee_id>/directory")
@console_requires("hr")
def person_directory(employee_id: str) -> ResponseReturnValue:
    """The person's page with what the directory holds for them now (a live read)."""
    control = _services().control
    try:
        entry = control.directory_person(employee_id)
    except LookupError:
        live = {"error": messages.console_text("directory.not_linked")}
    except TargetError as exc:
        log.warning("console.directory_refused", category=exc.category, error=type(exc).__name__)
        live = {"error": messages.console_text("directory.refused",
                                               category=messages.label(messages.ERROR_CATEGORIES, exc.category))}
    else:
        live = {"entry": entry}
    log.info("console.directory_read", employee_id=employee_id, token_name=g.token.name,
             found=bool(live.get("entry")))
    return _person_page(employee_id, live)


def _queue_resync(body: dict[str, Any]) -> ResyncRequest:
    """Queue a resync as `POST /api/v1/resync` does: the same checks, the same Control call."""
    scope, full = parse_resync(body)
    resync = _services().control.request_resync(scope, full, requested_by=g.token.name)
    log.info("console.resync_requested", resync_id=resync.id, scope=scope.describe(), token_name=g.token.name)
    return resync


@console.post("/people/<employee_id>/resync")
@console_requires("hr")
def person_resync(employee_id: str) -> ResponseReturnValue:
    """立即同步: queue a resync of this person and show its progress on their page."""
    resync = _queue_resync({"employee_id": employee_id})
    return redirect(url_for("console.person", employee_id=employee_id, resync=resync.id), code=303)


# -- 部门 ---------------------------------------------------------------------------------------------------


@console.get("/departments")
@console_requires("hr")
def departments() -> ResponseReturnValue:
    """The unit's root department."""
    return redirect(url_for("console.department", department_id=_data().root_department), code=303)


@console.get("/departments/<department_id>")
@console_requires("hr")
def department(department_id: str) -> ResponseReturnValue:
    """A department as HR has it and as the directory has it, its children, the differences below it."""
    view = _data().department(department_id)
    if view is None:
        abort(404)
    resync = _resync_progress("department", department_id)
    return render_template("department.html", view=view, resync=resync,
                           resync_failure=_resync_failure(resync) if resync else None,
                           resync_result=_resync_result(resync) if resync else [])


@console.get("/departments/<department_id>/roster.csv")
@console_requires("hr")
def department_roster(department_id: str) -> ResponseReturnValue:
    """花名册: the department's in-post people (its own, then each department under it) as CSV, without mobiles."""
    data = _data()
    index = data.index()
    if department_id not in index.snapshot.departments:
        abort(404)
    people = index.snapshot.people
    gender = data.code_labels.get("gender", {})
    rows = [[index.paths.get(dept, dept), dept, p.employee_id, p.name, gender.get(p.gender, p.gender),
             p.post, p.post_level, p.office_phone, "" if p.order is None else p.order]
            for dept in index.subtree(department_id) for p in (people[i] for i in index.people_in.get(dept, ()))]
    log.info("console.roster_exported", token_name=g.token.name, department=department_id, rows=len(rows))
    return _csv("roster", messages.ROSTER_COLUMNS, rows)


@console.post("/departments/<department_id>/resync")
@console_requires("hr")
def department_resync(department_id: str) -> ResponseReturnValue:
    """同步本部门: queue a resync of the department and everything under it."""
    resync = _queue_resync({"department_id": department_id})
    return redirect(url_for("console.department", department_id=department_id, resync=resync.id), code=303)


# -- 待审批 ---------------------------------------------------------------------------------------------------


@console.get("/held")
@console_requires("operator")
def held() -> ResponseReturnValue:
    """Runs whose changes wait for an operator's decision, with the exact changes."""
    resync = _resync_progress("all", None)
    approved = request.args.get("approved", "")[:32]
    return render_template("held.html", runs=_data().held(), resync=resync,
                           resync_failure=_resync_failure(resync) if resync else None,
                           resync_result=_resync_result(resync) if resync else [],
                           approved=approved if _data().runs_by_id([approved]) else None, next_sync=_next_sync(),
                           limits=_data().deactivation_limits())


@console.get("/held/<run_id>/<decision>")
@console_requires("operator")
def held_confirm(run_id: str, decision: str) -> ResponseReturnValue:
    """The confirmation page of 批准 or 驳回."""
    if decision not in ("approve", "reject"):
        abort(404)
    view = _data().held_run(run_id)
    if view is None:
        abort(404)
    return render_template("held_confirm.html", view=view, approve=decision == "approve")


@console.post("/held/<run_id>/<decision>")
@console_requires("operator")
def held_decide(run_id: str, decision: str) -> ResponseReturnValue:
    """Approve or reject a held run, as `POST /api/v1/runs/<id>/approve|reject` does."""
    if decision not in ("approve", "reject"):
        abort(404)
    approve = decision == "approve"
    try:
        decided = _services().control.decide(run_id, approve, by=g.token.name)
    except LookupError:
        abort(404)
    if decided:
        flash(messages.console_text("decided.approved" if approve else "decided.rejected", run_id=_run_name(run_id),
                                    count=decided, next=_next_sync()))
    else:
        flash(messages.console_text("decided.none", run_id=_run_name(run_id)))
    if decided and approve:
        return redirect(url_for("console.held", approved=run_id), code=303)
    return redirect(url_for("console.held"), code=303)


@console.post("/held/run-now")
@console_requires("operator")
def held_run_now() -> ResponseReturnValue:
    """立即执行: after an approval, sync the whole unit now rather than at the next scheduled cycle
    (a resync queued as `POST /api/v1/resync {"all": true}` queues it)."""
    resync = _queue_resync({"all": True})
    return redirect(url_for("console.held", resync=resync.id), code=303)


# -- 运行记录 --------------------------------------------------------------------------------------------------


def _day_range() -> tuple[datetime | None, datetime | None, str, str]:
    """`from` and `to` (days in the unit's zone, both included) as UTC bounds, and as given."""
    bounds: list[datetime | None] = []
    given = []
    for name, extra in (("from", 0), ("to", 1)):
        text = request.args.get(name, "").strip()[:10]
        try:
            day = date.fromisoformat(text) if text else None
        except ValueError:
            day, text = None, ""
        given.append(text)
        bounds.append(None if day is None else
                      datetime.combine(day + timedelta(days=extra), time(), _zone()).astimezone(UTC))
    return bounds[0], bounds[1], given[0], given[1]


def _run_filter() -> RunFilter:
    since, until, _, _ = _day_range()
    trigger = request.args.get("trigger", "")
    outcome = request.args.get("outcome", "")
    return RunFilter(trigger if trigger in messages.RUN_TRIGGERS else "",
                     outcome if outcome in messages.RUN_OUTCOMES else "", since, until)


@console.get("/runs")
@console_requires("hr")
def runs() -> ResponseReturnValue:
    """The runs, newest first, with outcomes and counts, filtered by trigger, outcome and date."""
    page = _data().runs(_page_number(), filters=_run_filter())
    _, _, since, until = _day_range()
    return render_template("runs.html", runs=page, since=since, until=until, trigger=request.args.get("trigger", ""),
                           outcome=request.args.get("outcome", ""), beyond=page.number > page.pages)


@console.get("/runs.csv")
@console_requires("hr")
def runs_download() -> ResponseReturnValue:
    """The run history as filtered, as CSV for Excel."""
    page = _data().runs(1, EXPORT_RUNS, _run_filter())
    rows = [[_when(run.started_at), _when(run.finished_at), messages.label(messages.RUN_TRIGGERS, run.trigger),
             _scope(run.scope), messages.label(messages.RUN_OUTCOMES, run.outcome), run.done, run.failed, run.held]
            for run in page.items]
    log.info("console.runs_exported", token_name=g.token.name, rows=len(rows))
    return _csv("runs", messages.RUNS_COLUMNS, rows)


def _change_filter() -> ChangeFilter:
    since, until, _, _ = _day_range()
    department = request.args.get("d", "").strip()[:64]
    if department and department not in _data().index().snapshot.departments:
        abort(404)
    kind = request.args.get("kind", "")
    state = request.args.get("state", "")
    return ChangeFilter(request.args.get("e", "").strip()[:64], department,
                        kind if kind in messages.CHANGE_KINDS else "", state if state in messages.CHANGE_STATES else "",
                        RunFilter(since=since, until=until))


@console.get("/changes")
@console_requires("hr")
def changes() -> ResponseReturnValue:
    """The change log: every change journaled, filtered by person, department, kind, state and date."""
    filters = _change_filter()
    if filters.employee_id:
        log.info("console.person_viewed", employee_id=filters.employee_id, token_name=g.token.name, page="changes")
    _, _, since, until = _day_range()
    page = _data().changes(filters, _page_number())
    return render_template("changes.html", changes=page, filters=filters, since=since, until=until,
                           reveal_action=None)


@console.get("/changes.csv")
@console_requires("hr")
def changes_download() -> ResponseReturnValue:
    """The change log as filtered, as CSV for Excel (field names, never their values)."""
    lines = _data().change_export(_change_filter())
    rows = [[_when(line.detected_at), _run_name(line.run_id), messages.label(messages.CHANGE_KINDS, line.kind),
             line.subject, _department_label(line.subject) if line.is_department else _person_name(line.subject),
             messages.LIST_SEPARATOR.join(messages.field_label(name, "department" if line.is_department else "person")
                                          for name in line.fields),
             messages.label(messages.CHANGE_STATES, line.state), messages.label(messages.ERROR_CATEGORIES,
                                                                                line.category, ""),
             str(line.due)] for line in lines]
    log.info("console.changes_exported", token_name=g.token.name, rows=len(rows))
    return _csv("changes", messages.CHANGES_COLUMNS, rows)


def _person_name(employee_id: str) -> str:
    person = _data().index().snapshot.people.get(employee_id)
    return person.name if person is not None else ""


def _csv(what: str, header: tuple[str, ...], rows: list[list[Any]]) -> ResponseReturnValue:
    """A CSV download Excel opens as Chinese text (UTF-8 with BOM); a cell never starts a formula."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    stamp = datetime.now(_zone()).strftime("%Y%m%d-%H%M")
    name = messages.console_text(f"export.{what}", stamp=stamp)
    return send_file(io.BytesIO(text.getvalue().encode("utf-8-sig")), as_attachment=True, download_name=name,
                     mimetype="text/csv")


@console.get("/runs/<run_id>")
@console_requires("hr")
def run(run_id: str) -> ResponseReturnValue:
    """One run: every change and its outcome, a page at a time."""
    view = _data().run(run_id, _page_number())
    if view is None:
        abort(404)
    return render_template("run.html", view=view, reveal_action=url_for(
        "console.run_reveal", run_id=run_id, page=_page_number()))


@console.post("/runs/<run_id>/reveal")
@console_requires("hr")
def run_reveal(run_id: str) -> ResponseReturnValue:
    """The run's page with one person's mobile shown in full (the click is logged)."""
    employee_id = request.form.get("employee_id", "").strip()[:64]
    if not employee_id:
        abort(400)
    _reveal(employee_id, "run")
    return run(run_id)


# -- helpers for the templates --------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    zone: ZoneInfo = current_app.extensions[ZONE_EXTENSION]
    return zone


@console.app_template_filter("when")
def _when(moment: datetime | None) -> str:
    """A time in the unit's zone, to the second."""
    return "—" if moment is None else moment.astimezone(_zone()).strftime("%Y-%m-%d %H:%M:%S")


@console.app_template_filter("aware")
def _aware(moment: datetime | None) -> datetime | None:
    """A stored time with its zone (SQLite hands back naive UTC)."""
    return None if moment is None else aware(moment)


@console.app_template_filter("scope")
def _scope(scope: str) -> str:
    """A run's scope as HR reads it."""
    kind, _, subject = scope.partition(" ")
    template = messages.SCOPES.get(kind)
    if template is None:
        return scope
    named = {"department": _department_label, "employee": _person_label}.get(kind)
    return template.format(subject=named(subject) if named and subject else subject)


@console.app_template_filter("seconds")
def _seconds(value: float | None) -> str:
    """A duration."""
    if value is None:
        return "—"
    if value < 120:
        return messages.console_text("duration.seconds", seconds=f"{value:.1f}")
    return messages.console_text("duration.minutes", minutes=f"{value / 60:.1f}")


@console.app_template_filter("reason")
def _reason(reason: str) -> str:
    """A change's reason as HR reads it (`requested by ops-li` → `由 ops-li 操作`)."""
    if reason.startswith(REQUESTED_BY):
        return messages.console_text("reason.requested_by", who=reason[len(REQUESTED_BY):])
    return messages.label(messages.CHANGE_REASONS, reason, "")


console.add_app_template_filter(place, "place")  # the same words as the downloaded report

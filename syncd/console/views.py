"""The console's pages: a Flask blueprint of server-rendered Chinese pages beside the JSON API.

Reads come from `ConsoleData`; every action calls the same `Control` method, with the same input
checks (`parse_resync`) and the same role grants, as the API route that does it. No URL carries a
name or a mobile: people are addressed by 工号, and a search by name is a POST.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from syncd import messages
from syncd.console.auth import (
    CONSOLE_EXTENSION,
    ConsoleAuth,
    console_requires,
    next_path,
    sign_in,
    sign_out,
    signed_in_token,
)
from syncd.console.data import ConsoleData, page_of
from syncd.report import REJECTED, summary_lines
from syncd.scope import ResyncRequest
from syncd.service.api import EXTENSION, ApiServices, parse_resync
from syncd.state.store import aware
from syncd.target import TargetError
from syncd.version import __version__

log = structlog.get_logger(__name__)

DATA_EXTENSION = "syncd.console.data"
ZONE_EXTENSION = "syncd.console.zone"
UNIT_EXTENSION = "syncd.console.unit"
console = Blueprint("console", __name__, template_folder="templates", static_folder="static",
                    static_url_path="/static/console")


@console.before_request
def _check_csrf() -> None:
    """Every form post carries the session's CSRF token (Flask-WTF), the sign-in form too."""
    if request.method == "POST":
        current_app.extensions["csrf"].protect()


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
    return {"m": messages, "me": token, "is_operator": token is not None and token.role == "operator",
            "version": __version__, "unit_name": current_app.extensions.get(UNIT_EXTENSION, ""),
            "code_label": data.code_label if data is not None else str, "page_url": _page_url}


def _page_url(name: str, number: int) -> str:
    """This page's URL with page `name` set to `number` (the other query arguments kept)."""
    args = {**request.args.to_dict(), name: number}
    return url_for(request.endpoint or "console.overview", **(request.view_args or {}), **args)


# -- sign-in ----------------------------------------------------------------------------------------


@console.get("/signin")
def signin() -> ResponseReturnValue:
    """The sign-in form (already signed in: on to the overview)."""
    if signed_in_token() is not None:
        return redirect(next_path() or url_for("console.overview"), code=303)
    why = request.args.get("why")
    notice = messages.console_text("signin.expired") if why == "expired" else None
    return render_template("signin.html", notice=notice, next=next_path())


@console.post("/signin")
def signin_post() -> ResponseReturnValue:
    """Exchange a token for a session; wrong tokens from an address past its limit are answered 429."""
    auth: ConsoleAuth = current_app.extensions[CONSOLE_EXTENSION]
    limited = auth.limiter.retry_after(request.remote_addr or "-") > 0
    presented = request.form.get("token", "").strip()
    token = sign_in(presented)  # a right token signs in even while the address is limited
    if token is not None:
        return redirect(next_path() or url_for("console.overview"), code=303)
    if limited:
        wait = auth.limiter.retry_after(request.remote_addr or "-")
        minutes = max(1, -(-int(wait) // 60))
        body = render_template("signin.html", error=messages.console_text("signin.limited", minutes=minutes),
                               next=next_path())
        return body, 429, {"Retry-After": str(int(wait) + 1)}
    key = "signin.empty" if not presented else "signin.failed"
    return render_template("signin.html", error=messages.console_text(key), next=next_path()), 401


@console.post("/signout")
def signout() -> ResponseReturnValue:
    """End the session."""
    sign_out()
    flash(messages.console_text("signed_out"))
    return redirect(url_for("console.signin"), code=303)


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
    return render_template(
        "completeness.html", index=index, department=department, report=report,
        summary=dict(summary_lines(report)), query=query, show_all=show_all,
        departments=page_of(departments, _page_number("dpage"), 50),
        rows=page_of(incomplete_rows, _page_number(), 100), rejected=rejected[:200], rejected_count=len(rejected))


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
    mimetype = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx"
                else "text/csv; charset=utf-8")
    return send_file(io.BytesIO(body), as_attachment=True, download_name=name, mimetype=mimetype)


# -- 人员查询 -----------------------------------------------------------------------------------------------


def _mask(name: str) -> str:
    """A name as the log may hold it: its first character."""
    return name[:1] + "*" * max(1, len(name) - 1)


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
    log.info("console.person_search", by="name", query=_mask(query), hits=len(hits), token_name=g.token.name)
    index = data.index()
    return render_template("people.html", query=query, hits=hits, paths=index.paths)


def _resync_progress(kind: str, subject: str) -> ResyncRequest | None:
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


def _person_page(employee_id: str, live: dict[str, Any] | None = None) -> ResponseReturnValue:
    view = _data().person(employee_id)
    if view is None:
        abort(404)
    resync = _resync_progress("employee", employee_id)
    return render_template("person.html", view=view, resync=resync,
                           resync_failure=_resync_failure(resync) if resync else None, live=live,
                           today=_data().today())


@console.get("/people/<employee_id>")
@console_requires("hr")
def person(employee_id: str) -> ResponseReturnValue:
    """HR's record, the directory's link, the journal, and 立即同步."""
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
                           resync_failure=_resync_failure(resync) if resync else None)


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
    return render_template("held.html", runs=_data().held())


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
        flash(messages.console_text("decided.approved" if approve else "decided.rejected", run_id=run_id,
                                    count=decided))
    else:
        flash(messages.console_text("decided.none", run_id=run_id))
    return redirect(url_for("console.held"), code=303)


# -- 运行记录 --------------------------------------------------------------------------------------------------


@console.get("/runs")
@console_requires("hr")
def runs() -> ResponseReturnValue:
    """The runs, newest first, with outcomes and counts."""
    return render_template("runs.html", runs=_data().runs(_page_number()))


@console.get("/runs/<run_id>")
@console_requires("hr")
def run(run_id: str) -> ResponseReturnValue:
    """One run: every change and its outcome, a page at a time."""
    view = _data().run(run_id, _page_number())
    if view is None:
        abort(404)
    return render_template("run.html", view=view)


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
    return scope if template is None else template.format(subject=subject)


@console.app_template_filter("seconds")
def _seconds(value: float | None) -> str:
    """A duration."""
    if value is None:
        return "—"
    if value < 120:
        return messages.console_text("duration.seconds", seconds=f"{value:.1f}")
    return messages.console_text("duration.minutes", minutes=f"{value / 60:.1f}")

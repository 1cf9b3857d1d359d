"""The city bureau's console (`syncd city`): every unit's Article 9 standing, a unit's detail, the annual assessment.

Each unit is read through its own control API with an auditor token (`syncd.city`); the console
never writes to a unit, and its only forms are signing in and out. The look, the sign-in and the
security are the unit console's (`syncd.console.web`, `syncd.console.auth`); the tokens that may
sign in are the city's own (`tokens_file` in city.toml, `syncd city token add NAME`).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from flask import Blueprint, Flask, abort, current_app, g, render_template, request, send_file
from flask.typing import ResponseReturnValue

from syncd.city import CityConfig, CityReader, Standing, local_time, read_unit_detail, row, status_text, write_xlsx
from syncd.console.auth import SESSION_LIFETIME, SignInLimiter, add_signin_views, console_requires, new_auth
from syncd.console.web import error_page, page_errors, secure_pages
from syncd.domain.compliance import figure_lines
from syncd.reporting import messages
from syncd.service.http import MAX_BODY_BYTES
from syncd.version import __version__

log = structlog.get_logger(__name__)

CITY_EXTENSION = "syncd.city"
CITY_COOKIE = "syncd_city"  # not the unit console's: cookies ignore the port, and both may share a host
FIRST_YEAR = 2021  # the rules (郑审〔2021〕44号) apply from 2021: no assessment before
LONGEST_PERIOD = timedelta(days=3 * 366)  # a period longer than this is a typing error, not a question
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits: `\d` also takes ² and ١
_YEAR = re.compile(r"[0-9]{4}")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

city = Blueprint("city", __name__, template_folder="templates", static_folder="static",
                 static_url_path="/static/console")


@dataclass(frozen=True)
class CityPages:
    """What the city's pages read: the configuration, the units' readings and today's date."""

    config: CityConfig
    reader: CityReader
    today: Callable[[], date]


def create_city_app(config: CityConfig, secret_key: bytes, *, reader: CityReader | None = None,
                    clock: Callable[[], float] = time.time, lifetime: timedelta = SESSION_LIFETIME,
                    limiter: SignInLimiter | None = None, warm: bool = False) -> Flask:
    """The city console's Flask app, ready for waitress (`clock`, `lifetime`, `limiter`: for tests).

    `warm`: start reading every unit for the default period now, so the first visitor need not wait.
    """
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    auth = new_auth(config.tokens_file, clock, lifetime, limiter, home="city", least_role="auditor",
                    cookie=CITY_COOKIE)
    secure_pages(app, secret_key, config.secure_cookies, auth, lambda path: path == "/healthz")
    zone = config.zone
    pages = CityPages(config, reader or CityReader(config), lambda: datetime.now(zone).date())
    app.extensions[CITY_EXTENSION] = pages
    if warm:
        today = pages.today()
        threading.Thread(target=pages.reader.overview, args=(date(today.year, 1, 1), today), name="city-warm",
                         daemon=True).start()
    app.register_blueprint(city)
    app.register_error_handler(404, error_page)
    app.register_error_handler(405, error_page)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """The city console itself is up (it says nothing of the units: the overview does)."""
        return {"status": "ok", "units": len(config.units), "version": __version__}

    return app


def _pages() -> CityPages:
    pages: CityPages = current_app.extensions[CITY_EXTENSION]
    return pages


@city.app_context_processor
def _globals() -> dict[str, Any]:
    pages: CityPages | None = current_app.extensions.get(CITY_EXTENSION)
    return {"m": messages, "me": g.get("token"), "home": "city", "brand": messages.CITY_BRAND,
            "unit_name": pages.config.title if pages else "", "version": __version__, "is_operator": False,
            "signin_hint": messages.console_text("city.signin.hint"),
            "signin_title": messages.console_text("city.signin.title")}


add_signin_views(city)
page_errors(city)


def _day(name: str, default: date) -> date:
    """A `YYYY-MM-DD` query argument (400 when malformed), `default` when absent."""
    value = request.args.get(name, "")
    if not value:
        return default
    if not _DAY.fullmatch(value):
        abort(400)
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400)


def _period() -> tuple[date, date]:
    """The period of the page: `from`/`to`, by default this year up to today."""
    today = _pages().today()
    start, end = _day("from", date(today.year, 1, 1)), _day("to", today)
    if end < start or end - start > LONGEST_PERIOD or start.year < FIRST_YEAR:
        abort(400)
    return start, end


def _numbers() -> dict[str, int]:
    """Each unit's number in the configuration (its page is `/unit/NUMBER`), by name."""
    return {unit.name: number for number, unit in enumerate(_pages().config.units, 1)}


def _counts(standings: list[Standing]) -> dict[str, int]:
    """The city at a glance: units, healthy, failing, not readable, overdue changes, undecided holds."""
    figures = [s.figures or {} for s in standings]
    return {"units": len(standings), "healthy": sum(1 for s in standings if s.error is None and s.healthy),
            "failing": sum(1 for s in standings if s.error is None and not s.healthy),
            "unreadable": sum(1 for s in standings if s.error is not None),
            "overdue": sum(int(f.get("overdue", 0)) for f in figures),
            "held": sum(int(f.get("held", 0)) for f in figures),
            "level_2": sum(s.open_level_2 for s in standings)}


def _table(standings: list[Standing]) -> list[tuple[int, Standing, list[str]]]:
    numbers, zone = _numbers(), _pages().config.zone
    return [(numbers[s.name], s, row(s, zone)) for s in standings]


@city.get("/")
@console_requires("auditor")
def overview() -> ResponseReturnValue:
    """全市概览: a row per unit, worst first; a unit that does not answer is shown as such."""
    start, end = _period()
    reading = _pages().reader.overview(start, end)
    return render_template("city_overview.html", active="overview", start=start, end=end,
                           read_at=local_time(reading.read_at.isoformat(), _pages().config.zone),
                           rows=_table(reading.standings), counts=_counts(reading.standings),
                           refresh=int(_pages().config.refresh_seconds))


@city.get("/unit/<int:number>")
@console_requires("auditor")
def unit(number: int) -> ResponseReturnValue:
    """One unit: its figures, its health, its recent runs, holds, overdue changes and open problems (read now)."""
    pages = _pages()
    if not 1 <= number <= len(pages.config.units):
        abort(404)
    start, end = _period()
    configured = pages.config.units[number - 1]
    standing, status = read_unit_detail(configured, start, end, pages.config.timeout)
    zone = pages.config.zone
    status = status or {}
    # status_view (syncd.city) kept only entries shaped as syncd writes them: strings where strings are due.
    overdue = Counter((entry["kind"], entry["due"], entry["error"]) for entry in status.get("overdue", []))
    return render_template(
        "city_unit.html", active="overview", number=number, unit=configured, standing=standing,
        status_text=status_text(standing), start=start, end=end,
        read_at=local_time(datetime.now(UTC).isoformat(), zone),
        figures=figure_lines(standing.figures) if standing.figures else [],
        last_success=local_time(standing.last_success, zone),
        runs=[_run(run, zone) for run in status.get("runs", [])],
        held=[(local_time(held["started_at"], zone), held["changes"]) for held in status.get("held", [])],
        overdue=sorted(overdue.items(), key=lambda item: (item[0][1], item[0][0])),
        problems=[_problem(problem, zone) for problem in status.get("escalations", [])], has_status=bool(status))


def _run(run: dict[str, Any], zone: Any) -> dict[str, Any]:
    counts = run["counts"]
    return {"started": local_time(run.get("started_at"), zone), "trigger": run.get("trigger"),
            "mode": run.get("mode"), "outcome": run.get("outcome"), "done": counts.get("done", 0),
            "failed": counts.get("failed", 0), "held": counts.get("held", 0)}


def _problem(problem: dict[str, Any], zone: Any) -> dict[str, Any]:
    kind = problem.get("kind", "")
    return {"level": problem.get("level"), "title": messages.PROBLEM_TITLES.get(kind) or problem.get("title", ""),
            "opened": local_time(problem.get("opened_at"), zone),
            "acknowledged": bool(problem.get("acknowledged_at")), "escalated": bool(problem.get("escalated_at"))}


def _year() -> int:
    """The assessment's year: `year`, by default this one; 404 outside the years the rules applied."""
    this_year = _pages().today().year
    value = request.args.get("year", "")
    if not value:
        return this_year
    if not _YEAR.fullmatch(value) or not FIRST_YEAR <= int(value) <= this_year:
        abort(404)
    return int(value)


def _year_period(year: int) -> tuple[date, date]:
    """The year, up to today while it is the current one."""
    return date(year, 1, 1), min(date(year, 12, 31), _pages().today())


@city.get("/assessment")
@console_requires("auditor")
def assessment() -> ResponseReturnValue:
    """年度考核: the year's figures of every unit, and the workbook to hand in."""
    year = _year()
    start, end = _year_period(year)
    reading = _pages().reader.overview(start, end)
    this_year = _pages().today().year
    return render_template("city_assessment.html", active="assessment", year=year, start=start, end=end,
                           years=list(range(this_year, FIRST_YEAR - 1, -1)), rows=_table(reading.standings),
                           counts=_counts(reading.standings),
                           read_at=local_time(reading.read_at.isoformat(), _pages().config.zone))


@city.get("/assessment.xlsx")
@console_requires("auditor")
def assessment_download() -> ResponseReturnValue:
    """The year's figures of every unit as the XLSX workbook the office hands in."""
    year = _year()
    start, end = _year_period(year)
    reading = _pages().reader.overview(start, end, fresh=True)  # what is handed in is read now, not kept
    buffer = io.BytesIO()
    write_xlsx(reading.standings, start, end, buffer, _pages().config.zone, reading.read_at)
    buffer.seek(0)
    log.info("city.assessment_downloaded", year=year, units=len(reading.standings), token_name=g.token.name,
             unreadable=sum(1 for s in reading.standings if s.error is not None))
    stamp = datetime.now(UTC).astimezone(_pages().config.zone).strftime("%Y%m%d")
    return send_file(buffer, mimetype=XLSX, as_attachment=True,
                     download_name=messages.CITY_ASSESSMENT_FILE.format(year=year, stamp=stamp))

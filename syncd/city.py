"""The city bureau's view over its units: each unit's Article 9 figures, read through its own control API.

A unit may run on another server: it is reached at its `url` with an `auditor` token (read-only:
status and compliance). A unit that does not answer is listed as such, first, never left out.
`syncd city report` prints the figures; `syncd city` serves them as the city console
(`syncd.console.city`). The configuration (`city.toml`; relative paths are from its directory):

```toml
timeout = 10                 # seconds per request to a unit
listen = "127.0.0.1:8490"    # the city console (put TLS in front when it is not loopback)
tokens_file = "tokens.toml"  # who may sign in to the city console: `syncd city token add NAME`
refresh_seconds = 60         # a reading of every unit serves the pages this long
[[unit]]
name = "金水区人社局"
url = "https://syncd.jinshui.example.gov.cn"
token_file = "/etc/syncd/city/jinshui.token"   # `syncd token add city-bureau --role auditor` on that unit
```
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
import structlog
from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from syncd.config import ConfigError, Problem, problems_of, read_toml
from syncd.domain.compliance import share_text
from syncd.reporting.messages import (
    CITY_ABOUT,
    CITY_ABOUT_SHEET,
    CITY_COLUMNS,
    CITY_ERRORS,
    CITY_HEALTH,
    CITY_SHEET,
    CITY_TITLE,
    COMPLIANCE_NONE,
    COMPLIANCE_PERIOD,
)
from syncd.reporting.spreadsheet import text_row

log = structlog.get_logger(__name__)
T = TypeVar("T")

CHINA = ZoneInfo("Asia/Shanghai")  # the default of `timezone`, as in every unit's schedule
CONNECT_TIMEOUT = 3.0  # seconds to reach a unit: a government network answers a SYN well within this
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # larger than any answer syncd writes: not read further
MAX_UNITS_AT_ONCE = 32  # units read at once: I/O-bound, so a city of 50 takes two rounds, not seven


class CityUnit(BaseModel):
    """One unit: its name, its control API's address and the file holding its auditor token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    token_file: Path
    ca_file: Path | None = None  # the CA that signed the unit's certificate, when not one the system trusts


class CityConfig(BaseModel):
    """`city.toml`: the units and how long to wait for each; the console's address, sign-in tokens and zone."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    units: list[CityUnit] = Field(alias="unit", min_length=1)
    timeout: float = Field(default=10, gt=0, le=120)
    title: str = Field(default=CITY_TITLE, min_length=1, max_length=64)  # beside the brand on every page
    listen: str = Field(default="127.0.0.1:8490", pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")
    tokens_file: Path | None = None
    secure_cookies: bool = False
    timezone: str = "Asia/Shanghai"
    refresh_seconds: float = Field(default=60, ge=0, le=3600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone such as Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone the city's pages and figures are read in."""
        return ZoneInfo(self.timezone)


def load_city(path: Path) -> CityConfig:
    """Read and check `city.toml`; ConfigError naming every bad key (a token file that cannot be read too)."""
    raw = read_toml(path)
    for unit in raw.get("unit", []) if isinstance(raw.get("unit"), list) else []:
        for key in ("token_file", "ca_file"):
            if isinstance(unit, dict) and isinstance(unit.get(key), str):
                unit[key] = str(path.parent / unit[key])  # relative to city.toml
    if isinstance(raw.get("tokens_file"), str):
        raw["tokens_file"] = str(path.parent / raw["tokens_file"])
    try:
        config = CityConfig.model_validate(raw)
    except ValidationError as exc:
        raise problems_of(exc) from exc
    problems = [Problem(f"unit.{number}.token_file", str(unit.token_file), "a readable file holding the "
                        "unit's auditor token") for number, unit in enumerate(config.units) if not _token(unit)]
    problems += [Problem(f"unit.{number}.ca_file", str(unit.ca_file), "a readable PEM file of the CA that signed "
                         "the unit's certificate") for number, unit in enumerate(config.units)
                 if unit.ca_file is not None and not _pem(unit.ca_file)]
    names = [unit.name for unit in config.units]
    problems += [Problem(f"unit.{number}.name", name, "a name no other unit has")
                 for number, name in enumerate(names) if names.index(name) != number]
    if problems:
        raise ConfigError(problems)
    return config


def _pem(path: Path) -> bool:
    try:
        return "-----BEGIN CERTIFICATE-----" in path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False


def _token(unit: CityUnit) -> str:
    """The unit's token, read at each use (a replaced token file takes effect at once); "" when unreadable."""
    try:
        return unit.token_file.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Standing:
    """One unit as the city sees it: whether it answered, its health and its figures."""

    name: str
    error: str | None  # a CITY_ERRORS key when the unit could not be read
    status: int | None = None  # the HTTP status of a refused or odd answer
    healthy: bool | None = None
    last_success: str | None = None
    figures: dict[str, Any] | None = None

    @property
    def open_level_2(self) -> int:
        """Open level-2 problems."""
        return int((self.figures or {}).get("open_problems", {}).get("2", 0))

    def worst_first(self) -> tuple[Any, ...]:
        """The sort key of the overview: unreachable, then failing, overdue, level 2, late, incomplete."""
        figures = self.figures or {}
        on_time = figures.get("on_time_share")
        complete = figures.get("completeness_share")
        return (self.error is None, bool(self.healthy), -int(figures.get("overdue", 0)), -self.open_level_2,
                1.0 if on_time is None else on_time, 1.0 if complete is None else complete, self.name)

    def as_json(self) -> dict[str, Any]:
        """The unit's row as JSON."""
        return {"name": self.name, "reachable": self.error is None, "error": self.error, "status": self.status,
                "healthy": self.healthy, "last_success": self.last_success, "figures": self.figures}


def read_unit(unit: CityUnit, start: date, end: date, timeout: float) -> Standing:
    """One unit's standing, read through its control API (`/healthz`, `/api/v1/compliance`)."""
    return read_unit_detail(unit, start, end, timeout, status=False)[0]


def read_unit_detail(unit: CityUnit, start: date, end: date, timeout: float,
                     status: bool = True) -> tuple[Standing, dict[str, Any] | None]:
    """One unit's standing and (`status`) its `/api/v1/status`: runs, holds, overdue changes, open problems.

    Whatever the unit answers, the city's pages go on: an answer that is not syncd's (too large, not
    JSON, figures of the wrong type) is a `bad_answer`; one still arriving past `unit_deadline` is `slow`.
    """
    found = _bounded([lambda: _read(unit, start, end, timeout, status)], unit_deadline(timeout))[0]
    if found is None:
        log.warning("city.unit_slow", unit=unit.name, deadline_s=unit_deadline(timeout))
        return Standing(unit.name, "slow"), None
    return found


def unit_deadline(timeout: float) -> float:
    """How long one unit may take in all: connecting, then its three requests, each within `timeout`."""
    return 3 * timeout + min(CONNECT_TIMEOUT, timeout)


def _bounded(calls: Sequence[Callable[[], T]], deadline: float) -> list[T | None]:
    """Run `calls` at most MAX_UNITS_AT_ONCE at a time; each result, or None for a call not done by its turn's
    deadline (a unit trickling its answer byte by byte resets every socket timeout, never this one).

    The calls run on daemon threads: a reading still going when `syncd city` is told to stop does not
    hold the process (an executor's threads would be joined at exit), and it writes nothing.
    """
    slots = threading.BoundedSemaphore(MAX_UNITS_AT_ONCE)
    results: list[T | None] = [None] * len(calls)
    failures: list[BaseException] = []

    def run(number: int, call: Callable[[], T]) -> None:
        with slots:
            try:
                results[number] = call()
            except BaseException as exc:  # handed to the caller, as a future's result() would
                failures.append(exc)

    threads = [threading.Thread(target=run, args=(number, call), name="city-read", daemon=True)
               for number, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    ends = time.monotonic() + deadline * -(-len(calls) // MAX_UNITS_AT_ONCE)
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    if failures:
        raise failures[0]
    return list(results)  # a copy: a call finishing late writes into `results`, not into what was returned


def _read(unit: CityUnit, start: date, end: date, timeout: float,
          status: bool) -> tuple[Standing, dict[str, Any] | None]:
    headers = {"Authorization": f"Bearer {_token(unit)}", "Accept": "application/json"}
    base = unit.url.rstrip("/")
    state: dict[str, Any] | None = None
    deadline = time.monotonic() + unit_deadline(timeout)
    try:
        with requests.Session() as session:
            # Per request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`, not a request's.
            session.verify = str(unit.ca_file) if unit.ca_file is not None else True
            # A unit behind a firewall that drops packets costs the connect time, not the whole timeout.
            limits = (min(CONNECT_TIMEOUT, timeout), timeout)
            _, healthz = _get_json(session, f"{base}/healthz", limits, deadline)
            code, figures = _get_json(session, f"{base}/api/v1/compliance", limits, deadline, headers,
                                      {"from": start.isoformat(), "to": end.isoformat()})
            if status and code == 200:
                state = status_view(_get_json(session, f"{base}/api/v1/status", limits, deadline, headers)[1])
    except (requests.ReadTimeout, ReadTimeoutError, _Late) as exc:  # connected, and no answer in time
        log.warning("city.unit_slow", unit=unit.name, error=type(exc).__name__)
        return Standing(unit.name, "slow"), None
    except requests.exceptions.SSLError as exc:  # reached, but its certificate is not one the city trusts
        log.warning("city.unit_untrusted", unit=unit.name, error=type(exc).__name__)
        return Standing(unit.name, "untrusted"), None
    except (requests.RequestException, Urllib3Error) as exc:  # the body is read from urllib3 directly
        log.warning("city.unit_unreachable", unit=unit.name, error=type(exc).__name__)
        return Standing(unit.name, "unreachable"), None
    if code in (401, 403):
        log.warning("city.unit_refused", unit=unit.name, status=code)
        return Standing(unit.name, "refused", code), None
    if code != 200 or figures is None or healthz is None or not _well_formed(figures):
        log.warning("city.unit_bad_answer", unit=unit.name, status=code)
        return Standing(unit.name, "bad_answer", code), None
    return Standing(unit.name, None, None, healthz.get("status") == "ok", _text(healthz.get("last_success")),
                    figures), state


class _Late(Exception):
    """A unit's answer was still arriving at its deadline."""


def _get_json(session: requests.Session, url: str, limits: tuple[float, float], deadline: float,
              headers: dict[str, str] | None = None,
              params: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | None]:
    """GET `url`: the status and the JSON object answered, None when it is not one or is larger than syncd writes.

    The body is read in pieces against `deadline` (_Late past it): a unit trickling a byte at a time
    resets every socket timeout, never this one, so no reading thread outlives its unit's deadline.
    """
    with session.get(url, params=params, headers=headers, timeout=limits, stream=True,
                     verify=session.verify) as answer:
        code = answer.status_code
        body = bytearray()
        for piece in answer.raw.stream(64 * 1024, decode_content=True):
            body += piece
            if len(body) > MAX_ANSWER_BYTES:
                return code, None
            if time.monotonic() > deadline:
                raise _Late(url)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
        return code, None
    return code, parsed if isinstance(parsed, dict) else None


def status_view(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    """A unit's `/api/v1/status`, keeping only entries shaped as syncd writes them (the unit page shows these)."""
    if answer is None:
        return None

    def entries(key: str) -> list[dict[str, Any]]:
        found = answer.get(key)
        return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []

    def counts(run: dict[str, Any]) -> dict[str, int]:
        found = run.get("counts")
        return {key: found[key] for key in ("done", "failed", "held")
                if isinstance(found, dict) and _is_count(found.get(key))}

    runs = [{"started_at": _text(run.get("started_at")), "trigger": _text(run.get("trigger")),
             "mode": _text(run.get("mode")), "outcome": _text(run.get("outcome")), "counts": counts(run)}
            for run in entries("runs")]
    held = [{"started_at": _text(hold.get("started_at")), "changes": hold.get("changes")}
            for hold in entries("held") if _is_count(hold.get("changes"))]
    overdue = [{"kind": _text(change.get("kind")) or "", "due": _text(change.get("due")) or "",
                "error": _text(change.get("error")) or ""} for change in entries("overdue")]
    problems = [{"level": problem.get("level"), "kind": _text(problem.get("kind")) or "",
                 "title": _text(problem.get("title")) or "", "opened_at": _text(problem.get("opened_at")),
                 "acknowledged_at": _text(problem.get("acknowledged_at")),
                 "escalated_at": _text(problem.get("escalated_at"))}
                for problem in entries("escalations") if problem.get("level") in (1, 2)]
    return {"runs": runs, "held": held, "overdue": overdue, "escalations": problems}


_COUNTS = ("changes", "on_time", "pending", "overdue", "in_post", "held")
_SHARES = ("on_time_share", "completeness_share")
_DELAYS = ("median_workdays", "max_workdays")


def _well_formed(figures: dict[str, Any]) -> bool:
    """Whether the figures are shaped as `GET /api/v1/compliance` answers them: every count there and a count,
    every share a finite number from 0 to 1 or null (a figure missing would read as a clean 0)."""
    problems = figures.get("open_problems")
    return (all(_is_count(figures.get(key)) for key in _COUNTS)
            and all(figures.get(key) is None or (_is_number(figures[key]) and 0 <= figures[key] <= 1)
                    for key in _SHARES)
            and all(figures.get(key) is None or (_is_number(figures[key]) and figures[key] >= 0) for key in _DELAYS)
            and isinstance(problems, dict) and all(_is_count(value) for value in problems.values()))


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def overview(config: CityConfig, start: date, end: date) -> list[Standing]:
    """Every unit's standing for the period, read at once, worst first."""
    found = _bounded([functools.partial(read_unit, unit, start, end, config.timeout) for unit in config.units],
                     unit_deadline(config.timeout))
    standings = []
    for unit, standing in zip(config.units, found, strict=True):
        if standing is None:
            log.warning("city.unit_slow", unit=unit.name, deadline_s=unit_deadline(config.timeout))
        standings.append(standing or Standing(unit.name, "slow"))
    return sorted(standings, key=Standing.worst_first)


@dataclass(frozen=True, slots=True)
class Reading:
    """Every unit's standing for a period, worst first, and when it was read."""

    standings: list[Standing]
    read_at: datetime


class CityReader:
    """The units' standings per period, shared by page views: read once, then served and refreshed behind them.

    Fifty units at a request or two each would otherwise be read again at every click, and a unit
    that does not answer would cost each click its timeout. So a period's reading is reused while it
    is younger than `refresh_seconds`; after that the page gets it at once and a new reading starts
    behind it (stale while it revalidates). Only the first view of a period waits for the units, and
    concurrent first views wait for one reading instead of starting their own. `refresh_seconds = 0`
    reads every time.
    """

    KEPT_PERIODS = 8  # the latest periods asked for; older ones are forgotten

    def __init__(self, config: CityConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._readings: dict[tuple[date, date], tuple[float, Reading]] = {}
        self._reading: dict[tuple[date, date], threading.Event] = {}  # periods being read now

    def overview(self, start: date, end: date, fresh: bool = False) -> Reading:
        """The standings of `start`–`end`: the last reading (a new one started behind it when it is old).

        `fresh`: never an old reading; wait for a new one instead (what is handed in must be current).
        """
        key = (start, end)
        with self._lock:
            kept = self._readings.get(key)
            if fresh and kept is not None and self._clock() - kept[0] >= self.config.refresh_seconds:
                kept = None
            if kept is not None and self.config.refresh_seconds > 0:
                if self._clock() - kept[0] >= self.config.refresh_seconds and key not in self._reading:
                    self._reading[key] = threading.Event()
                    threading.Thread(target=self._read, args=(key,), name="city-refresh", daemon=True).start()
                return kept[1]
            waiting = self._reading.get(key)
            if waiting is None:
                waiting = self._reading[key] = threading.Event()
                mine = True
            else:
                mine = False
        if mine:
            return self._read(key)
        waiting.wait()
        with self._lock:
            kept = self._readings.get(key)
        return kept[1] if kept is not None else self._read(key)  # the reading it waited for failed: its own

    def _read(self, key: tuple[date, date]) -> Reading:
        """Read every unit for the period, keep the reading, wake whoever waits for it."""
        try:
            reading = self._read_unshared(key)
            with self._lock:
                self._readings.pop(key, None)
                while len(self._readings) >= self.KEPT_PERIODS:
                    self._readings.pop(next(iter(self._readings)))
                self._readings[key] = (self._clock(), reading)
            return reading
        finally:
            with self._lock:
                event = self._reading.pop(key, None)
            if event is not None:
                event.set()

    def _read_unshared(self, key: tuple[date, date]) -> Reading:
        return Reading(overview(self.config, *key), datetime.now(UTC))


def local_time(moment: str | None, zone: ZoneInfo) -> str:
    """An ISO 8601 time a unit answered, as the city reads it (`2026-12-04 10:31`); 无 when none or unreadable."""
    try:
        parsed = datetime.fromisoformat(moment) if isinstance(moment, str) and moment else None
        if parsed is None:
            return COMPLIANCE_NONE
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError):  # a unit's odd time (year 1 at +14:00 overflows)
        return COMPLIANCE_NONE


def status_text(standing: Standing) -> str:
    """The unit's state in a word or two: 正常, 异常, or why it could not be read."""
    if standing.error is not None:
        return CITY_ERRORS[standing.error].format(status=standing.status)
    return CITY_HEALTH[bool(standing.healthy)]


def row(standing: Standing, zone: ZoneInfo = CHINA) -> list[str]:
    """The unit's cells, as CITY_COLUMNS names them."""
    if standing.error is not None:
        return [standing.name, status_text(standing), *[COMPLIANCE_NONE] * (len(CITY_COLUMNS) - 2)]
    figures = standing.figures or {}
    return [standing.name, status_text(standing), local_time(standing.last_success, zone),
            str(figures.get("changes", 0)), share_text(figures.get("on_time_share")), str(figures.get("overdue", 0)),
            share_text(figures.get("completeness_share")), str(standing.open_level_2), str(figures.get("held", 0))]


def format_table(standings: Sequence[Standing], zone: ZoneInfo = CHINA) -> str:
    """The overview for a terminal: a header and a line per unit, worst first, in columns two spaces apart."""
    lines = [list(CITY_COLUMNS), *(row(s, zone) for s in standings)]
    widths = [max(_width(line[column]) for line in lines) for column in range(len(CITY_COLUMNS))]
    return "\n".join("  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def _width(text: str) -> int:
    """Columns `text` takes on a terminal: a CJK (wide or full-width) character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def write_xlsx(standings: Sequence[Standing], start: date, end: date, path: Path | IO[bytes],
               zone: ZoneInfo = CHINA, read_at: datetime | None = None) -> None:
    """The period's figures of every unit as a sheet the office can hand in, and a sheet saying when they
    were read and how many units could not be; text cells only."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = CITY_SHEET.format(start=start, end=end)[:31]
    sheet.append(text_row(sheet, CITY_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for standing in standings:
        sheet.append(text_row(sheet, row(standing, zone)))
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHI", (24, 18, 26, 12, 12, 12, 16, 14, 12), strict=True):
        sheet.column_dimensions[column].width = width
    about = workbook.create_sheet(CITY_ABOUT_SHEET)
    moment = local_time((read_at or datetime.now(UTC)).isoformat(), zone)
    unreadable = sum(1 for standing in standings if standing.error is not None)
    for label, value in ((CITY_ABOUT["period"], COMPLIANCE_PERIOD.format(start=start, end=end)),
                         (CITY_ABOUT["read_at"], moment), (CITY_ABOUT["units"], str(len(standings))),
                         (CITY_ABOUT["unreadable"], str(unreadable))):
        about.append(text_row(about, (label, value)))
    about.column_dimensions["A"].width = 24
    about.column_dimensions["B"].width = 28
    workbook.save(path)

"""Chinese working days: the 3-working-day deadline of Article 9 counts holidays and make-up weekends."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import structlog

log = structlog.get_logger(__name__)
_warned_years: set[int] = set()


@functools.lru_cache(maxsize=8192)
def _official(day: date) -> bool | None:
    """The official calendar's word on `day`, None for a year it does not know; remembered, since
    chinese-calendar scans its tables on every call and a year's figures ask of each day many times."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def is_workday(day: date, overrides: Mapping[date, bool] | None = None) -> bool:
    """Whether `day` is a working day: configured overrides, then the official calendar, then Mon–Fri."""
    if overrides and day in overrides:
        return overrides[day]
    official = _official(day)
    if official is None:
        # chinese-calendar only knows years the State Council has published; beyond them, say so once.
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("workdays.calendar_unknown_year", year=day.year, fallback="monday_to_friday")
        return day.weekday() < 5
    return official


def add_workdays(start: date, days: int, overrides: Mapping[date, bool] | None = None) -> date:
    """The date `days` working days after `start` (the start day itself does not count)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_workday(current, overrides):
            remaining -= 1
    return current


def calendar_covers(year: int) -> bool:
    """Whether chinese-calendar knows the statutory holidays of `year`; never raises for an unknown year."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def local_date(moment: datetime, timezone: str) -> date:
    """The date of `moment` in `timezone` (`schedule.timezone`), never the host's zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time with a zone is needed")
    return moment.astimezone(ZoneInfo(timezone)).date()


def due_date(detected: datetime, days: int, timezone: str, overrides: Mapping[date, bool] | None = None) -> date:
    """The due date of a change detected at `detected`: `days` working days after its date in `timezone`."""
    return add_workdays(local_date(detected, timezone), days, overrides)


def uncovered_years(start: date, end: date, complete: Collection[int] = ()) -> tuple[int, ...]:
    """The years from `start` to `end` whose holidays neither chinese-calendar nor a complete override list knows."""
    return tuple(year for year in range(start.year, end.year + 1)
                 if not calendar_covers(year) and year not in complete)


def workdays_taken(start: date, end: date, overrides: Mapping[date, bool] | None = None) -> int:
    """Working days from `start` to `end` (the start day does not count; an `end` on a rest day counts as
    the next working day), so that `end <= add_workdays(start, n)` exactly when this is at most `n`."""
    if end <= start:
        return 0
    taken = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_workday(current, overrides):
            taken += 1
    return taken if is_workday(end, overrides) else taken + 1

"""Chinese working days: the 3-working-day deadline of Article 9 counts holidays and make-up weekends."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import structlog

log = structlog.get_logger(__name__)
_warned_years: set[int] = set()


def is_workday(day: date, overrides: dict[date, bool] | None = None) -> bool:
    """Whether `day` is a working day: configured overrides, then the official calendar, then Mon–Fri."""
    if overrides and day in overrides:
        return overrides[day]
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # chinese-calendar only knows years the State Council has published; beyond them, say so once.
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("workdays.calendar_unknown_year", year=day.year, fallback="monday_to_friday")
        return day.weekday() < 5


def add_workdays(start: date, days: int, overrides: dict[date, bool] | None = None) -> date:
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

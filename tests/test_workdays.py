"""Working days: Chinese statutory holidays and make-up weekends, overrides, a Mon–Fri fallback."""

from __future__ import annotations

from datetime import UTC, date, datetime

from syncd.domain.workdays import add_workdays, due_date, is_workday, local_date, uncovered_years


def test_the_national_day_holiday_is_skipped() -> None:
    # 2025-09-30 (Tue) + 3 working days: Oct 1–8 is the National Day / Mid-Autumn holiday, and
    # Saturday Oct 11 is a make-up working day: Thu 9, Fri 10, Sat 11.
    assert add_workdays(date(2025, 9, 30), 3) == date(2025, 10, 11)


def test_a_make_up_working_saturday_counts() -> None:
    assert is_workday(date(2025, 9, 28))  # Sunday, worked in exchange for the holiday


def test_overrides_win_over_the_calendar() -> None:
    assert not is_workday(date(2025, 9, 29), {date(2025, 9, 29): False})
    assert add_workdays(date(2025, 9, 26), 1, {date(2025, 9, 28): False, date(2025, 9, 29): False}) == date(2025, 9, 30)


def test_a_year_the_calendar_does_not_know_falls_back_to_monday_to_friday() -> None:
    assert add_workdays(date(2099, 1, 2), 3) == date(2099, 1, 7)  # Fri → Mon, Tue, Wed


def test_the_day_of_a_change_is_its_day_in_the_units_zone_not_utc() -> None:
    sunday_23_utc = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)  # Monday 07:00 in Zhengzhou
    assert local_date(sunday_23_utc, "Asia/Shanghai") == date(2026, 12, 7)
    assert due_date(sunday_23_utc, 3, "Asia/Shanghai") == date(2026, 12, 10)
    assert due_date(sunday_23_utc, 3, "UTC") == date(2026, 12, 9)


def test_a_year_is_uncovered_until_the_calendar_or_a_complete_override_list_knows_it() -> None:
    assert uncovered_years(date(2026, 12, 30), date(2027, 1, 5)) == (2027,)
    assert uncovered_years(date(2026, 12, 30), date(2027, 1, 5), complete=[2027]) == ()
    assert uncovered_years(date(2026, 3, 2), date(2026, 3, 5)) == ()

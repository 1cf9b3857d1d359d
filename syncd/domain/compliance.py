"""The Article 9 figures of a unit for a period: personnel changes on time, completeness, problems, holds.

A change is what HR changed of one person (a join, a transfer, an update, a leave …; never a
department's change, nor a freeze an operator asked for), counted once however many runs retried
it: a retry keeps the detection time it was first journaled with (`StateStore.journal_plan`). It
reached the directory on time when its journal entry was done by its due date, `escalation.
deadline_workdays` working days after the day it was detected in `schedule.timezone`: the same
rule (`syncd.domain.workdays.due_date`) the applier journals and the escalation chases. A change HR took
back, or an operator rejected, is withdrawn and counts nowhere.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font

from syncd.config import Config
from syncd.domain.escalation import open_counts
from syncd.domain.model import ChangeKind, Snapshot
from syncd.domain.workdays import due_date, local_date, workdays_taken
from syncd.reporting.messages import (
    COMPLIANCE_HEADER,
    COMPLIANCE_LABELS,
    COMPLIANCE_NONE,
    COMPLIANCE_PERIOD,
    COMPLIANCE_SHEET,
    FULL_WIDTH_SPACE,
)
from syncd.reporting.report import CompletenessReport, completeness
from syncd.reporting.spreadsheet import text_row
from syncd.state.store import JournaledChange, StateStore

# What HR changed of a person. A freeze or unfreeze is an operator's order, not a personnel change.
PERSON_KINDS: tuple[str, ...] = tuple(kind.value for kind in ChangeKind
                                      if not kind.value.startswith("dept_")
                                      and kind not in (ChangeKind.FREEZE, ChangeKind.UNFREEZE))


@dataclass(frozen=True, slots=True)
class Rules:
    """How deadlines count: `escalation.deadline_workdays`, `schedule.timezone`, `escalation.workday_overrides`."""

    deadline_workdays: int = 3
    timezone: str = "Asia/Shanghai"
    overrides: Mapping[date, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, config: Config) -> Rules:
        """The rules a unit's configuration sets, the ones its applier journals due dates by."""
        return cls(config.escalation.deadline_workdays, config.schedule.timezone, config.escalation.workday_overrides)


@dataclass(frozen=True, slots=True)
class ChangeFigures:
    """The period's personnel changes: how many, how many on time, the delays, what is still owed."""

    changes: int
    on_time: int
    pending: int  # still owed and not yet due: neither on time nor late so far
    overdue: int  # still owed and past due today
    delays: tuple[int, ...]  # working days each change that reached the directory took

    @property
    def on_time_share(self) -> float | None:
        """On time among the changes whose outcome is known (done, or past due); None when there are none."""
        decided = self.changes - self.pending
        return round(self.on_time / decided, 4) if decided else None

    @property
    def median_workdays(self) -> float | None:
        """The median working days a change took to reach the directory."""
        return statistics.median(self.delays) if self.delays else None

    @property
    def max_workdays(self) -> int | None:
        """The longest a change took to reach the directory, in working days."""
        return max(self.delays) if self.delays else None


@dataclass(frozen=True, slots=True)
class Compliance:
    """Everything `GET /api/v1/compliance` and `syncd report compliance` answer."""

    unit: str
    start: date
    end: date
    figures: ChangeFigures
    completeness_share: float | None
    in_post: int
    open_problems: dict[int, int]  # level → open problems
    held: int  # held changes nobody has decided

    def as_json(self) -> dict[str, Any]:
        """The JSON answer (ids and counts, never a name)."""
        figures = self.figures
        return {"unit": self.unit, "from": self.start.isoformat(), "to": self.end.isoformat(),
                "changes": figures.changes, "on_time": figures.on_time, "on_time_share": figures.on_time_share,
                "pending": figures.pending, "median_workdays": figures.median_workdays,
                "max_workdays": figures.max_workdays, "overdue": figures.overdue,
                "completeness_share": self.completeness_share, "in_post": self.in_post,
                "open_problems": {str(level): count for level, count in sorted(self.open_problems.items())},
                "held": self.held}


def _midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(timezone))


def change_figures(entries: Iterable[JournaledChange], today: date, rules: Rules) -> ChangeFigures:
    """The figures of the journal entries of one period's changes (`StateStore.journaled_changes`)."""
    # One change, however many runs journaled it: its retries carry its first detection time.
    changes: dict[tuple[str, str, datetime], list[JournaledChange]] = {}
    for entry in entries:
        changes.setdefault((entry.kind, entry.subject, entry.detected_at), []).append(entry)
    on_time = pending = overdue = 0
    delays: list[int] = []
    # Changes come in batches (a first load, a reorganisation): counted once per pair of days.
    taken_between: dict[tuple[date, date], int] = {}
    counted = 0
    for (_, _, detected), journaled in changes.items():
        detected_on = local_date(detected, rules.timezone)
        done = [entry.updated_at for entry in journaled if entry.state == "done"]
        if done:
            days = (detected_on, local_date(min(done), rules.timezone))
            taken = taken_between.get(days)
            if taken is None:
                taken = taken_between[days] = workdays_taken(*days, rules.overrides)
            delays.append(taken)
            on_time += taken <= rules.deadline_workdays
        elif any(entry.owed for entry in journaled):
            due = due_date(detected, rules.deadline_workdays, rules.timezone, rules.overrides)
            if due < today:
                overdue += 1
            else:
                pending += 1
        else:
            continue  # withdrawn: HR took it back, or an operator rejected it
        counted += 1
    return ChangeFigures(counted, on_time, pending, overdue, tuple(delays))


def compliance(store: StateStore, unit: str, start: date, end: date, today: date, rules: Rules,
               report: CompletenessReport | None) -> Compliance:
    """A unit's Article 9 figures for changes detected from `start` to `end` (dates in `rules.timezone`),
    as of `today`; `report` the latest HR read's completeness report (`syncd.reporting.report.completeness`)."""
    if end < start:
        raise ValueError("the period ends before it starts")
    entries = store.journaled_changes(PERSON_KINDS, _midnight(start, rules.timezone),
                                      _midnight(end + timedelta(days=1), rules.timezone))
    by_level = {1: 0, 2: 0}  # both levels always answered, so a reader never mistakes a missing key for none
    for (level, _), count in open_counts(store).items():
        by_level[level] = by_level.get(level, 0) + count
    share = None
    if report is not None and report.in_post:
        share = round(report.complete / report.in_post, 4)
    return Compliance(unit, start, end, change_figures(entries, today, rules), share,
                      report.in_post if report is not None else 0, by_level,
                      len(store.pending_holds()))


class LatestCompleteness:
    """The completeness report of a snapshot, made once per snapshot (the daemon's latest HR read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: tuple[Snapshot, CompletenessReport] | None = None

    def of(self, snapshot: Snapshot | None) -> CompletenessReport | None:
        """The report of `snapshot`; None for no snapshot, or a read that broke off (its share would be wrong)."""
        if snapshot is None or not snapshot.complete:
            return None
        with self._lock:
            if self._made is None or self._made[0] is not snapshot:
                self._made = (snapshot, completeness(snapshot))
            return self._made[1]


def share_text(value: object) -> str:
    """A share as HR reads it (`97.5%`), 无 when there is nothing to count."""
    return COMPLIANCE_NONE if not isinstance(value, int | float) else f"{value:.1%}"


def _number(value: object) -> str:
    return COMPLIANCE_NONE if not isinstance(value, int | float) else f"{value:g}"


def summary_lines(result: Compliance) -> list[tuple[str, str]]:
    """The figures as (Chinese label, value) rows, in the catalogue's order."""
    return figure_lines(result.as_json())


def figure_lines(answer: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The figures of a `GET /api/v1/compliance` answer as (Chinese label, value) rows, in the catalogue's order."""
    problems = answer.get("open_problems") or {}
    values = {
        "unit": str(answer.get("unit", "")), "period": COMPLIANCE_PERIOD.format(start=answer.get("from"),
                                                                               end=answer.get("to")),
        "changes": str(answer.get("changes", 0)), "on_time": str(answer.get("on_time", 0)),
        "on_time_share": share_text(answer.get("on_time_share")),
        "pending": str(answer.get("pending", 0)), "median_workdays": _number(answer.get("median_workdays")),
        "max_workdays": _number(answer.get("max_workdays")), "overdue": str(answer.get("overdue", 0)),
        "completeness_share": share_text(answer.get("completeness_share")), "in_post": str(answer.get("in_post", 0)),
        "open_problems_1": str(problems.get("1", 0)), "open_problems_2": str(problems.get("2", 0)),
        "held": str(answer.get("held", 0)),
    }
    return [(label, values[key]) for key, label in COMPLIANCE_LABELS.items()]


def format_table(result: Compliance) -> str:
    """The figures for a terminal: one line per figure."""
    lines = summary_lines(result)
    width = max(len(label) for label, _ in lines)
    # A CJK character takes two columns on a terminal: pad by display width, not by characters.
    return "\n".join(f"{label}{FULL_WIDTH_SPACE * (width - len(label))}  {value}" for label, value in lines)


def write_xlsx(result: Compliance, path: Path | IO[bytes]) -> None:
    """The figures as an XLSX workbook (file or stream) an office can hand in; text cells only."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = COMPLIANCE_SHEET
    sheet.append(text_row(sheet, COMPLIANCE_HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in summary_lines(result):
        sheet.append(text_row(sheet, row))
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 28
    workbook.save(path)

"""The Article 9 figures of a unit for a period: personnel changes on time, completeness, problems, holds.

A change is what HR changed of one person (a join, a transfer, an update, a leave …; never a
department's change, nor a freeze an operator asked for), counted once however many runs retried
it: a retry keeps the detection time it was first journaled with (`StateStore.journal_plan`). It
reached the directory on time when its journal entry was done by its due date, `escalation.
deadline_workdays` working days after the day it was detected in `schedule.timezone`: the same
rule (`syncd.workdays.due_date`) the applier journals and the escalation chases. A change HR took
back, or an operator rejected, is withdrawn and counts nowhere.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from syncd.escalation import open_counts
from syncd.model import ChangeKind
from syncd.report import CompletenessReport
from syncd.state.store import JournaledChange, StateStore
from syncd.workdays import due_date, local_date, workdays_taken

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
    counted = 0
    for (_, _, detected), journaled in changes.items():
        detected_on = local_date(detected, rules.timezone)
        done = [entry.updated_at for entry in journaled if entry.state == "done"]
        if done:
            taken = workdays_taken(detected_on, local_date(min(done), rules.timezone), rules.overrides)
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
               completeness: CompletenessReport | None) -> Compliance:
    """A unit's Article 9 figures for changes detected from `start` to `end` (dates in `rules.timezone`),
    as of `today`; `completeness` the latest HR read's report (`syncd.report.completeness`)."""
    if end < start:
        raise ValueError("the period ends before it starts")
    entries = store.journaled_changes(PERSON_KINDS, _midnight(start, rules.timezone),
                                      _midnight(end + timedelta(days=1), rules.timezone))
    by_level = {1: 0, 2: 0}  # both levels always answered, so a reader never mistakes a missing key for none
    for (level, _), count in open_counts(store).items():
        by_level[level] = by_level.get(level, 0) + count
    share = None
    if completeness is not None and completeness.in_post:
        share = round(completeness.complete / completeness.in_post, 4)
    return Compliance(unit, start, end, change_figures(entries, today, rules), share,
                      completeness.in_post if completeness is not None else 0, by_level,
                      len(store.pending_holds()))

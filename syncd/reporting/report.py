"""The Article 9 completeness report: per in-post person, which fields are missing or invalid.

Written for HR, not operators: Chinese headers and reasons (rendered from each problem's stable
code by `syncd.reporting.messages`), grouped by department (by the path from the unit's root), each problem
with the file and line to fix. Rejected records are listed too, since they are the worst case of
incomplete.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from openpyxl import Workbook
from openpyxl.styles import Font

from syncd.domain.model import FieldIssue, PersonStatus, Snapshot
from syncd.reporting.messages import (
    GROUP_SEPARATOR,
    LIST_SEPARATOR,
    REPORT,
    REPORT_COLUMNS,
    REPORT_SHEETS,
    REPORT_STATUSES,
    REPORT_SUMMARY,
    console_text,
    field_label,
    problem_text,
)
from syncd.reporting.spreadsheet import safe_cell, text_row

INCOMPLETE, REJECTED = REPORT_STATUSES["incomplete"], REPORT_STATUSES["rejected"]


def place(location: str, kind: str = "person") -> str:
    """Where HR finds a record: `people.csv:303` → `人员表第 303 行`; a DN or a name as it is."""
    source, _, line = location.rpartition(":")
    if source and line.isdigit():
        return console_text(f"place.{kind}", line=line)
    return location


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One person (or one rejected record) with what HR must fix."""

    department_path: str
    department: str
    employee_id: str
    name: str
    status: str  # INCOMPLETE | REJECTED
    missing: tuple[str, ...]
    invalid: tuple[str, ...]
    reasons: str
    location: str  # `people.csv:303`, as the source tells it (`place` words it for HR)

    def cells(self) -> list[str]:
        """The row as the report's columns, the location in the console's words."""
        return [self.department_path, self.department, self.employee_id, self.name, self.status,
                LIST_SEPARATOR.join(self.missing), LIST_SEPARATOR.join(self.invalid), self.reasons,
                place(self.location)]


@dataclass(frozen=True, slots=True)
class CompletenessReport:
    """The rows, and the counts an HR head reads first."""

    rows: list[ReportRow]
    in_post: int
    complete: int
    rejected: int


def _department_path(dept_id: str, snapshot: Snapshot) -> str:
    names = []
    seen = set()
    current: str | None = dept_id
    while current is not None and current in snapshot.departments and current not in seen:
        seen.add(current)
        names.append(snapshot.departments[current].name)
        current = snapshot.departments[current].parent
    return " / ".join(reversed(names)) or dept_id


def completeness(snapshot: Snapshot, departments: Collection[str] | None = None) -> CompletenessReport:
    """Build the report from a validated snapshot: the whole unit, or only the people of `departments`
    (rejected records, which belong to no department, only in the whole unit's report)."""
    by_person: dict[str, list[FieldIssue]] = {}
    for issue in snapshot.issues:
        by_person.setdefault(issue.key, []).append(issue)
    in_post = [p for p in snapshot.people.values() if p.status is PersonStatus.IN_POST
               and (departments is None or p.department in departments)]
    paths: dict[str, str] = {}
    rows = []
    for person in in_post:
        issues = by_person.get(person.employee_id)
        if not issues:
            continue
        path = paths.get(person.department)
        if path is None:
            path = paths[person.department] = _department_path(person.department, snapshot)
        rows.append(ReportRow(
            department_path=path,
            department=person.department,
            employee_id=person.employee_id,
            name=person.name,
            status=INCOMPLETE,
            missing=tuple(field_label(i.field) for i in issues if i.problem == "missing"),
            invalid=tuple(field_label(i.field) for i in issues if i.problem == "invalid"),
            reasons=GROUP_SEPARATOR.join(problem_text(i) for i in issues if i.problem == "invalid"),
            location=issues[0].location(),
        ))
    people_rejections = [r for r in snapshot.rejections if r.kind == "person"] if departments is None else []
    for rejection in people_rejections:
        rows.append(ReportRow(REPORT["rejected.department"], "", rejection.key, "", REJECTED, (),
                              (field_label(rejection.field),), problem_text(rejection), rejection.location()))
    rows.sort(key=lambda r: (r.status == REJECTED, r.department_path, r.employee_id))
    return CompletenessReport(rows, len(in_post), len(in_post) - sum(r.status == INCOMPLETE for r in rows),
                              len(people_rejections))


def write_csv(report: CompletenessReport, out: IO[str]) -> None:
    """The report as CSV (UTF-8 with BOM, so Excel on Windows opens it as Chinese text), no cell a formula."""
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in REPORT_COLUMNS])
    writer.writerows([safe_cell(c) for c in row.cells()] for row in report.rows)


def write_xlsx(report: CompletenessReport, path: Path | IO[bytes]) -> None:
    """The report as an XLSX workbook (file or stream): the rows, header frozen, a summary sheet; text cells only."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = REPORT_SHEETS["rows"]
    sheet.append(text_row(sheet, REPORT_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in report.rows:
        sheet.append(text_row(sheet, row.cells()))
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHI", (30, 10, 12, 12, 8, 30, 20, 50, 18), strict=True):
        sheet.column_dimensions[column].width = width
    summary = workbook.create_sheet(REPORT_SHEETS["summary"])
    for label, value in summary_lines(report):
        summary.append(text_row(summary, (label, value)))
    workbook.save(path)


def summary_lines(report: CompletenessReport) -> Iterable[tuple[str, int | str]]:
    """The counts: in post, complete, incomplete, rejected."""
    share = f"{report.complete / report.in_post:.1%}" if report.in_post else "—"
    yield REPORT_SUMMARY["in_post"], report.in_post
    yield REPORT_SUMMARY["complete"], report.complete
    yield REPORT_SUMMARY["share"], share
    yield REPORT_SUMMARY["incomplete"], report.in_post - report.complete
    yield REPORT_SUMMARY["rejected"], report.rejected


def format_table(report: CompletenessReport) -> str:
    """The report for a terminal: grouped by department, one line per person."""
    lines = ["  ".join(f"{label} {value}" for label, value in summary_lines(report))]
    current = None
    for row in report.rows:
        if row.department_path != current:
            current = row.department_path
            lines.append(f"\n{current}" + (f" ({row.department})" if row.department else ""))
        parts = []
        if row.missing:
            parts.append(REPORT["missing"].format(fields=LIST_SEPARATOR.join(row.missing)))
        if row.invalid:
            parts.append(REPORT["invalid"].format(reasons=row.reasons))
        lines.append(f"  {row.employee_id:<10} {row.name:<8} {row.status}  {GROUP_SEPARATOR.join(parts)}  "
                     f"[{place(row.location)}]")
    return "\n".join(lines)

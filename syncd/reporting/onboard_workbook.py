"""The onboarding review as a Chinese XLSX workbook (sheets 部门, 人员, 汇总), and the confirmed rows read back.

Written streaming (openpyxl's write-only mode): a 100,000-person unit's review is one pass over the
rows. Every cell is text, never a formula: names come from HR and from whoever typed the directory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation

from syncd.engine.onboard import DIRECTORY_ONLY, LINKED, NONE, SAME_NAME, ConfirmedRow, DepartmentRow, PersonRow, Review
from syncd.reporting.messages import (
    ONBOARD_DEPARTMENT_COLUMNS,
    ONBOARD_KINDS,
    ONBOARD_NOTES,
    ONBOARD_PERSON_COLUMNS,
    ONBOARD_REFUSALS,
    ONBOARD_SHEETS,
    ONBOARD_STATUSES,
    ONBOARD_SUMMARY,
    ONBOARD_YES,
)

_BOLD = Font(bold=True)
_EXACT = ("ext_code", "name", "short_name")


class WorkbookError(Exception):
    """The file is not an onboarding workbook (a sheet or a column is missing); the message is Chinese."""


def text_cell(sheet: Any, value: object, bold: bool = False) -> WriteOnlyCell:
    """A cell holding `value` as text: a value starting with "=" stays text, never becomes a formula."""
    cell = WriteOnlyCell(sheet, value="" if value is None else str(value))
    cell.data_type = "s"  # set after the value: openpyxl would have taken "=…" for a formula
    if bold:
        cell.font = _BOLD
    return cell


def write_review(review: Review, path: Path | IO[bytes]) -> None:
    """The review as a workbook: 部门 and 人员 with a 确认 column (是 = store this match), and 汇总."""
    workbook = Workbook(write_only=True)
    _sheet(workbook, ONBOARD_SHEETS["departments"], ONBOARD_DEPARTMENT_COLUMNS,
           (_department_values(row) for row in review.departments), len(review.departments))
    _sheet(workbook, ONBOARD_SHEETS["people"], ONBOARD_PERSON_COLUMNS,
           (_person_values(row) for row in review.people), len(review.people))
    summary = workbook.create_sheet(ONBOARD_SHEETS["summary"])
    counts = review.summary()
    for key, label in ONBOARD_SUMMARY.items():
        summary.append([text_cell(summary, label, bold=True), text_cell(summary, counts.get(key, 0))])
    workbook.save(path)


def _sheet(workbook: Workbook, title: str, columns: Mapping[str, str], rows: Iterator[Mapping[str, str]],
           count: int) -> None:
    sheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    confirm = DataValidation(type="list", formula1=f'"{ONBOARD_YES}"', allow_blank=True)
    column = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[list(columns).index("confirmed")]
    confirm.add(f"{column}2:{column}{count + 1}")
    sheet.data_validations.append(confirm)
    sheet.append([text_cell(sheet, label, bold=True) for label in columns.values()])
    for values in rows:
        sheet.append([text_cell(sheet, values.get(key, "")) for key in columns])


def _department_values(row: DepartmentRow) -> dict[str, str]:
    return {"hr_id": row.hr_id, "name": row.name, "short_name": row.short_name, "parent": row.parent,
            "kind": ONBOARD_KINDS[row.kind], "organization_code": row.organization_code,
            "organization_name": row.organization_name, "path": row.path,
            "confirmed": ONBOARD_YES if row.confirmed else "", "note": _department_note(row)}


def _department_note(row: DepartmentRow) -> str:
    if row.kind in (LINKED, "similar"):
        return ONBOARD_NOTES[row.kind]
    if row.kind in (DIRECTORY_ONLY, NONE):
        return ONBOARD_NOTES[f"{row.kind}.department"]
    if row.candidates > 1:
        return ONBOARD_NOTES["several"].format(count=row.candidates)
    return "" if row.confirmed else ONBOARD_NOTES["parent_unsure"]


def _person_values(row: PersonRow) -> dict[str, str]:
    return {"employee_id": row.employee_id, "name": row.name, "department": row.department,
            "department_name": row.department_name, "kind": ONBOARD_KINDS[row.kind],
            "employee_code": row.employee_code, "directory_name": row.directory_name,
            "directory_path": row.directory_path, "directory_status": ONBOARD_STATUSES.get(row.directory_status, ""),
            "confirmed": ONBOARD_YES if row.confirmed else "", "note": _person_note(row)}


def _person_note(row: PersonRow) -> str:
    if row.kind in (LINKED, SAME_NAME):
        return ONBOARD_NOTES[row.kind]
    if row.kind == DIRECTORY_ONLY:
        return ONBOARD_NOTES["directory_only.person"]
    if row.kind == NONE:
        return ONBOARD_NOTES["same_name.several"].format(count=row.candidates) if row.candidates > 1 \
            else ONBOARD_NOTES["none.person"]
    return ONBOARD_NOTES["outside"] if row.outside else ""


def read_confirmed(path: Path | IO[bytes]) -> list[ConfirmedRow]:
    """The rows whose 确认 is 是, from both sheets, with their row numbers; WorkbookError when the file is not
    an onboarding workbook."""
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return [*_confirmed(workbook, "departments", ONBOARD_DEPARTMENT_COLUMNS,
                            ("hr_id", "organization_code", "name", "organization_name")),
                *_confirmed(workbook, "people", ONBOARD_PERSON_COLUMNS,
                            ("employee_id", "employee_code", "name", "directory_name"))]
    finally:
        workbook.close()


def _confirmed(workbook: Any, sheet_key: str, columns: Mapping[str, str], keys: Sequence[str]) -> list[ConfirmedRow]:
    title = ONBOARD_SHEETS[sheet_key]
    if title not in workbook.sheetnames:
        raise WorkbookError(ONBOARD_REFUSALS["sheet.missing"].format(sheet=title, column=columns["confirmed"]))
    rows = workbook[title].iter_rows(values_only=True)
    header = [_text(value) for value in next(rows, ())]
    position = {}
    for key in (*keys, "confirmed"):
        if columns[key] not in header:
            raise WorkbookError(ONBOARD_REFUSALS["sheet.missing"].format(sheet=title, column=columns[key]))
        position[key] = header.index(columns[key])
    found = []
    for number, values in enumerate(rows, start=2):
        cells = {key: _text(values[index]) if index < len(values) else "" for key, index in position.items()}
        if cells["confirmed"] == ONBOARD_YES:
            hr_id, code, hr_name, directory_name = (cells[key] for key in keys)
            found.append(ConfirmedRow(sheet_key, number, hr_id, code, hr_name, directory_name))
    return found


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()

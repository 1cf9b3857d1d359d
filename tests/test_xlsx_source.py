"""XLSX exports: same layout as CSV; title rows, two-row merged headers and trailing empty rows tolerated."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from connectors.sources.xlsx_source import XlsxSource
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.source import SourceError
from syncd.domain.validate import CodeTables, build_snapshot
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER


def workbook(path: Path, header: list[str], rows: list[dict[str, str]], title: bool = False,
             two_row_header: bool = False, trailing_blank: int = 0) -> Path:
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append(["郑州市审计局人员信息表"])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    if two_row_header:
        # 基本信息 spans 工号..手机号 in the first row; the second row holds the sub-headers.
        top = ["基本信息", None, None, None, *header[4:]]
        ws.append(top)
        ws.append([*header[:4], *([None] * (len(header) - 4))])
        first = ws.max_row - 1
        ws.merge_cells(start_row=first, start_column=1, end_row=first, end_column=4)
        for col in range(5, len(header) + 1):
            ws.merge_cells(start_row=first, start_column=col, end_row=first + 1, end_column=col)
    else:
        ws.append(header)
    for row in rows:
        ws.append([int(row[c]) if c == "排序" and row.get(c) else row.get(c, "") for c in header])
    for _ in range(trailing_blank):
        ws.append([None] * len(header))
    wb.save(path)
    return path


def source(tmp_path: Path, **options: bool | int) -> XlsxSource:
    people = workbook(tmp_path / "people.xlsx", PEOPLE_HEADER, PEOPLE, **options)  # type: ignore[arg-type]
    departments = workbook(tmp_path / "departments.xlsx", DEPARTMENT_HEADER, DEPARTMENTS)
    return XlsxSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)


def test_a_plain_workbook_reads_like_the_csv_export(tmp_path: Path) -> None:
    snapshot = build_snapshot(source(tmp_path), "D0001", CodeTables.load())
    assert snapshot.rejections == []
    assert len(snapshot.people) == len(PEOPLE)
    assert snapshot.people["A000001"].order == 1  # a numeric cell becomes "1", not "1.0"


def test_title_row_merged_two_row_header_and_trailing_empty_rows_are_tolerated(tmp_path: Path) -> None:
    records = list(source(tmp_path, title=True, two_row_header=True, trailing_blank=5).people())
    assert len(records) == len(PEOPLE)
    assert records[0].fields["employee_id"] == "A000001" and records[0].fields["mobile"] == "13800000001"
    assert records[0].fields["post"] == "主任"
    assert records[0].line == 4  # title, two header rows, then the first person


def test_a_workbook_without_the_key_column_is_a_source_error(tmp_path: Path) -> None:
    people = workbook(tmp_path / "people.xlsx", ["姓名", "手机号"], [{"姓名": "张明"}])
    with pytest.raises(SourceError, match="工号"):
        list(XlsxSource(people, people, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS).people())


def test_a_file_that_is_not_a_workbook_is_a_source_error(tmp_path: Path) -> None:
    bogus = tmp_path / "people.xlsx"
    bogus.write_text("not a workbook")
    with pytest.raises(SourceError, match="not a readable XLSX"):
        list(XlsxSource(bogus, bogus, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS).people())

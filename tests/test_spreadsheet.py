"""The cells of every download: the OWASP CSV-injection rule, and XLSX cells that are always text."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from syncd.reporting.spreadsheet import safe_cell, text_row


@pytest.mark.parametrize("value", ['=HYPERLINK("http://evil.example/","x")', "+1+cmd|' /C calc'!A0", "-2+3",
                                   "@SUM(A1:A9)", "\t=1+1", "\r=1+1"])
def test_a_value_beginning_like_a_formula_is_prefixed_with_a_quote(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(("value", "text"), [("张明", "张明"), ("0371-67180000", "0371-67180000"), (7, "7"),
                                             (None, ""), ("", ""), ("a=b", "a=b"), ("71.4%", "71.4%")])
def test_any_other_value_is_its_text_unchanged(value: object, text: str) -> None:
    assert safe_cell(value) == text


def test_xlsx_cells_are_strings_never_formulas_numbers_or_errors() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(text_row(sheet, ["=1+1", 42, "#N/A", "张明", ""]))
    buffer = io.BytesIO()
    workbook.save(buffer)
    [row] = load_workbook(io.BytesIO(buffer.getvalue())).active.iter_rows()
    assert [c.data_type for c in row[:4]] == ["s"] * 4
    assert [c.value for c in row[:4]] == ["'=1+1", "42", "#N/A", "张明"]

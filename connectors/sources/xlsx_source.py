"""HR exports as XLSX workbooks (openpyxl), in the same column layout as the CSV export.

Spreadsheets made by people carry a title row above the header, headers merged over two rows,
and formatted-but-empty rows at the end; all three are tolerated. The header row is the first
of the top rows that holds the key column's title.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from connectors.sources.csv_source import ExportFiles, header_positions
from syncd.domain.source import RawRecord, SourceError

_HEADER_SEARCH_ROWS = 10


def cell_text(value: Any) -> str:
    """A cell as the text HR meant: 1001.0 → "1001", a date → ISO, nothing → ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


class XlsxSource(ExportFiles):
    """HR records from two workbooks (`people.xlsx`, `departments.xlsx`), first sheet of each."""

    def _rows(self, path: Path, columns: Mapping[str, str], required: tuple[str, ...]) -> Iterator[RawRecord]:
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (OSError, InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise SourceError(f"{path.name}: not a readable XLSX workbook ({type(exc).__name__})") from exc
        try:
            sheet = workbook.worksheets[0]
            rows = sheet.iter_rows(values_only=True)
            top: list[list[str]] = []
            for _ in range(_HEADER_SEARCH_ROWS):
                row = next(rows, None)
                if row is None:
                    break
                top.append([cell_text(v).strip() for v in row])
            key_title = columns[required[0]]
            header_at = next((i for i, row in enumerate(top) if key_title in row), None)
            if header_at is None:
                raise SourceError(
                    f"{path.name}: no header row with {key_title!r} in the first {_HEADER_SEARCH_ROWS} rows")
            header, data_from = _merged_header(top, header_at, columns)
            positions = header_positions(header, columns)
            missing = [f"{field} ({columns[field]!r})" for field in required if field not in positions]
            if missing:
                raise SourceError(f"{path.name}: header has no column for {', '.join(missing)}")
            pending = [(i + 1, r) for i, r in enumerate(top) if i >= data_from]
            line = len(top)
            for number, cells in pending:
                yield from _record(cells, positions, path.name, number)
            for row in rows:
                line += 1
                yield from _record([cell_text(v) for v in row], positions, path.name, line)
        finally:
            workbook.close()


def _merged_header(top: list[list[str]], at: int, columns: Mapping[str, str]) -> tuple[list[str], int]:
    """The header row at `at`, completed from a header row merged above or below it.

    Headers merged over two rows keep their text in the upper cell only: an empty header cell
    takes the title from the row above; sub-headers in the row below override group titles.
    Returns the header and the index of the first data row.
    """
    titles = set(columns.values())
    rows = [top[at]]
    if at > 0 and any(cell in titles for cell in top[at - 1]):
        rows.insert(0, top[at - 1])
    below = top[at + 1] if at + 1 < len(top) else []
    if any(cell in titles for cell in below):
        rows.append(below)
    width = max(len(row) for row in rows)
    header = [""] * width
    for row in rows:  # lower rows win: they hold the most specific title
        for i, cell in enumerate(row):
            if cell:
                header[i] = cell
    return header, at + (2 if rows[-1] is below else 1)


def _record(cells: list[str], positions: Mapping[str, int], name: str, line: int) -> Iterator[RawRecord]:
    if not any(cell.strip() for cell in cells):
        return  # blank and formatted-but-empty trailing rows
    fields = {field: (cells[i] if i < len(cells) else "") for field, i in positions.items()}
    yield RawRecord(fields, name, line)

"""The two-file CSV export of DESIGN.md §9: UTF-8, UTF-8 with BOM or GB18030, headers configurable."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator, Mapping
from operator import itemgetter
from pathlib import Path

from syncd.source import RawRecord, SourceError

_SAMPLE_BYTES = 256 * 1024
REQUIRED_PEOPLE_FIELDS = ("employee_id",)
REQUIRED_DEPARTMENT_FIELDS = ("id",)


def detect_encoding(path: Path) -> str:
    """`utf-8-sig` when the file starts with a BOM, `utf-8` when its start decodes as UTF-8, else GB18030.

    Excel on a Chinese Windows saves "CSV" as GB18030 (GBK); every other tool writes UTF-8.
    A GB18030 file with Chinese text fails UTF-8 decoding within its first characters.
    """
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


class ExportFiles:
    """Two export files (people, departments) with their header names: what CSV and XLSX share."""

    def __init__(self, people: Path, departments: Path, people_columns: Mapping[str, str],
                 department_columns: Mapping[str, str]) -> None:
        self._people = people
        self._departments = departments
        self._people_columns = dict(people_columns)
        self._department_columns = dict(department_columns)
        self._digests: dict[Path, tuple[int, int, str]] = {}  # path → (size, mtime_ns, sha256)

    def change_token(self, previous: str | None = None) -> str | None:
        """The SHA-256 of both files' contents; a file whose size and mtime are unchanged is not hashed again."""
        return "|".join(self._digest(path) for path in (self._departments, self._people))

    def _digest(self, path: Path) -> str:
        try:
            stat = path.stat()
            known = self._digests.get(path)
            if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
                return known[2]
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise SourceError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
        self._digests[path] = (stat.st_size, stat.st_mtime_ns, digest.hexdigest())
        return digest.hexdigest()

    def departments(self) -> Iterator[RawRecord]:
        """Every department row."""
        return self._rows(self._departments, self._department_columns, REQUIRED_DEPARTMENT_FIELDS)

    def people(self) -> Iterator[RawRecord]:
        """Every person row."""
        return self._rows(self._people, self._people_columns, REQUIRED_PEOPLE_FIELDS)

    def _rows(self, path: Path, columns: Mapping[str, str], required: tuple[str, ...]) -> Iterator[RawRecord]:
        raise NotImplementedError


class CsvSource(ExportFiles):
    """HR records from `departments.csv` and `people.csv`, headers mapped to field names."""

    def __init__(self, people: Path, departments: Path, people_columns: Mapping[str, str],
                 department_columns: Mapping[str, str], encoding: str = "auto") -> None:
        super().__init__(people, departments, people_columns, department_columns)
        self._encoding = encoding

    def _rows(self, path: Path, columns: Mapping[str, str], required: tuple[str, ...]) -> Iterator[RawRecord]:
        try:
            encoding = detect_encoding(path) if self._encoding == "auto" else self._encoding
            with path.open(encoding=encoding, newline="") as handle:
                yield from _records(csv.reader(handle), path.name, columns, required)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"{path.name}: {type(exc).__name__}: {exc}") from exc


def _records(reader: Iterator[list[str]], name: str, columns: Mapping[str, str],
             required: tuple[str, ...]) -> Iterator[RawRecord]:
    header = next(reader, None)
    if header is None:
        raise SourceError(f"{name}: empty file, no header row")
    positions = header_positions(header, columns)
    missing = [f"{field} ({columns[field]!r})" for field in required if field not in positions]
    if missing:
        raise SourceError(f"{name}: header has no column for {', '.join(missing)}")
    names, indices = tuple(positions), tuple(positions.values())
    width = max(indices, default=-1) + 1
    cells = itemgetter(*indices) if len(indices) > 1 else None  # a million rows: one call a row, not one a cell
    line = 1
    for row in reader:
        line = getattr(reader, "line_num", line + 1)
        if not (row and row[0].strip()) and not any(cell.strip() for cell in row):
            continue  # blank and trailing empty rows
        if cells is not None and len(row) >= width:
            fields = dict(zip(names, cells(row), strict=True))
        else:  # a short row: the missing cells are empty
            fields = {field: (row[i] if i < len(row) else "") for field, i in positions.items()}
        yield RawRecord(fields, name, line)


def header_positions(header: list[str], columns: Mapping[str, str]) -> dict[str, int]:
    """Field name → column index, for the headers present (trimmed; a BOM left by a tool is ignored)."""
    index = {cell.strip().lstrip("\ufeff"): i for i, cell in enumerate(header) if cell.strip()}
    return {field: index[title] for field, title in columns.items() if title in index}

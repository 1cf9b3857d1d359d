"""The two-file CSV export of DESIGN.md §9: UTF-8, UTF-8 with BOM or GB18030, headers configurable.

A read is complete only when the export is whole and stable. A file cut off part-way (its last line
without a line end, a row with fewer fields than the header, a quoted field never closed) or
changed while it was read is a damaged export, not a rejected record: SourceError, so the snapshot
is incomplete and nobody missing from it is taken to have left.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
from collections.abc import Iterator, Mapping
from operator import itemgetter
from pathlib import Path

from syncd.domain.source import RawRecord, SourceError

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
        return "|".join(self._fingerprint(path)[2] for path in (self._departments, self._people))

    def _fingerprint(self, path: Path, fresh: bool = False) -> tuple[int, int, str]:
        """(size, mtime_ns, SHA-256) of the file; hashed unless size and mtime match the last hash (or `fresh`)."""
        try:
            stat = path.stat()
            known = self._digests.get(path)
            if not fresh and known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
                return known
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            after = path.stat()
        except OSError as exc:
            raise SourceError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
        if (after.st_size, after.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            raise SourceError(f"{path.name}: changed while it was read (size or mtime moved during hashing)")
        self._digests[path] = (stat.st_size, stat.st_mtime_ns, digest.hexdigest())
        return self._digests[path]

    def departments(self) -> Iterator[RawRecord]:
        """Every department row."""
        return self._stable_rows(self._departments, self._department_columns, REQUIRED_DEPARTMENT_FIELDS)

    def people(self) -> Iterator[RawRecord]:
        """Every person row."""
        return self._stable_rows(self._people, self._people_columns, REQUIRED_PEOPLE_FIELDS)

    def _stable_rows(self, path: Path, columns: Mapping[str, str], required: tuple[str, ...]) -> Iterator[RawRecord]:
        """Every row, then SourceError when the file's size, mtime or hash after the read differ from before.

        HR's tools rewrite an export in place: a read that overlapped the rewrite mixes two exports
        (48–288 people seemed to leave in one such read). The next cycle reads the file again.
        """
        before = self._fingerprint(path)
        yield from self._rows(path, columns, required)
        after = self._fingerprint(path, fresh=True)
        if after != before:
            raise SourceError(f"{path.name}: changed while it was read (size, mtime or SHA-256 differ after the read)")

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
            if not _ends_with_line_end(path):
                raise SourceError(f"{path.name}: the last line has no line end: the export was cut off")
            encoding = detect_encoding(path) if self._encoding == "auto" else self._encoding
            with path.open(encoding=encoding, newline="") as handle:
                # strict: a quoted field never closed is an error, not a field that swallows the rest
                yield from _records(csv.reader(handle, strict=True), path.name, columns, required)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"{path.name}: {type(exc).__name__}: {exc}") from exc


def _ends_with_line_end(path: Path) -> bool:
    """Whether the file's last byte ends a line (every CSV writer ends its last row with one)."""
    with path.open("rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True  # empty: reported as a file without a header
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _records(reader: Iterator[list[str]], name: str, columns: Mapping[str, str],
             required: tuple[str, ...]) -> Iterator[RawRecord]:
    header = next(reader, None)
    if header is None:
        raise SourceError(f"{name}: empty file, no header row")
    positions = header_positions(header, columns)
    missing = [f"{field} ({columns[field]!r})" for field in required if field not in positions]
    if missing:
        raise SourceError(f"{name}: header has no column for {', '.join(missing)}")
    columns_in_header = len(header)
    names, indices = tuple(positions), tuple(positions.values())
    cells = itemgetter(*indices) if len(indices) > 1 else None  # a million rows: one call a row, not one a cell
    line = 1
    for row in reader:
        line = getattr(reader, "line_num", line + 1)
        if not (row and row[0].strip()) and not any(cell.strip() for cell in row):
            continue  # blank and trailing empty rows
        if len(row) != columns_in_header and (len(row) < columns_in_header
                                               or any(cell.strip() for cell in row[columns_in_header:])):
            # A row cut short, or one whose cells spill past the header (two rows run together):
            # its cells are not where the header says, so no cell of it may be trusted.
            raise SourceError(f"{name}: line {line} has {len(row)} fields where the header has "
                              f"{columns_in_header}: a damaged export")
        if cells is not None:
            fields = dict(zip(names, cells(row), strict=True))
        else:
            fields = {field: row[i] for field, i in positions.items()}
        yield RawRecord(fields, name, line)


def header_positions(header: list[str], columns: Mapping[str, str]) -> dict[str, int]:
    """Field name → column index, for the headers present (trimmed; a BOM left by a tool is ignored)."""
    index = {cell.strip().lstrip("\ufeff"): i for i, cell in enumerate(header) if cell.strip()}
    return {field: index[title] for field, title in columns.items() if title in index}

"""Change tokens: an incremental cycle asks the source whether anything changed before reading it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from connectors.sources.csv_source import CsvSource
from connectors.sources.sql_source import SqlSource
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.source import change_token
from tests.conftest import PEOPLE, person

Export = Callable[..., tuple[Path, Path]]


def csv_source(people: Path, departments: Path) -> CsvSource:
    return CsvSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)


def test_csv_token_is_stable_while_the_files_are(export: Export) -> None:
    people, departments = export()
    source = csv_source(people, departments)
    assert change_token(source) == change_token(csv_source(people, departments))


def test_csv_token_changes_with_the_content_of_either_file(export: Export) -> None:
    people, departments = export()
    source = csv_source(people, departments)
    before = change_token(source)
    export(people=[*PEOPLE, person("A000099", "新人", "13800000099", "D0002")])
    assert change_token(source) != before


def test_csv_token_ignores_a_new_mtime_on_the_same_content(export: Export) -> None:
    people, departments = export()
    source = csv_source(people, departments)
    before = change_token(source)
    stat = people.stat()
    os.utime(people, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # HR re-exported the same rows
    assert change_token(source) == before


def test_csv_token_sees_an_edit_that_keeps_the_size_and_mtime(export: Export) -> None:
    people, departments = export()
    source = csv_source(people, departments)
    before = change_token(source)
    stat = people.stat()
    text = people.read_text(encoding="utf-8")
    people.write_text(text.replace("13800000001", "13800000009"), encoding="utf-8")  # same length
    os.utime(people, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # A cached digest is reused only while size and mtime both match: a fresh source hashes again.
    assert change_token(csv_source(people, departments)) != before


def test_a_missing_file_gives_no_token_so_the_cycle_reads(export: Export) -> None:
    people, departments = export()
    people.unlink()
    assert change_token(csv_source(people, departments)) is None


def test_sql_token_is_the_changed_query_row(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "hr.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE staff (id TEXT, updated TEXT)")
        connection.execute("INSERT INTO staff VALUES ('A1', '2026-11-01')")
    url = f"sqlite:///{database}"
    source = SqlSource(url, "SELECT * FROM staff", "SELECT 1", changed_query="SELECT max(updated), count(*) FROM staff")
    before = change_token(source)
    assert before == "2026-11-01|1"
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO staff VALUES ('A2', '2026-11-02')")
    assert change_token(source) == "2026-11-02|2"
    source.close()


def test_sql_without_a_changed_query_cannot_tell() -> None:
    assert change_token(SqlSource("sqlite://", "SELECT 1", "SELECT 1")) is None

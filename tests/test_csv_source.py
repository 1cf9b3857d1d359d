"""The CSV export: encodings detected, headers configurable, rows located by line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.sources.csv_source import CsvSource, detect_encoding
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.source import SourceError
from tests.conftest import PEOPLE


def source(people: Path, departments: Path, **columns: str) -> CsvSource:
    return CsvSource(people, departments, {**DEFAULT_PEOPLE_COLUMNS, **columns}, DEFAULT_DEPARTMENT_COLUMNS)


@pytest.mark.parametrize(("encoding", "detected"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
                                                    ("gb18030", "gb18030")])
def test_encodings_are_detected_and_read(export: Callable[..., tuple[Path, Path]], encoding: str,
                                         detected: str) -> None:
    people, departments = export(encoding=encoding)
    assert detect_encoding(people) == detected
    records = list(source(people, departments).people())
    assert [r.fields["name"] for r in records][:2] == ["张明", "李华"]
    assert records[4].fields["name"] == "阿依古丽·买买提"


def test_rows_carry_file_and_line_and_blank_rows_are_skipped(export: Callable[..., tuple[Path, Path]]) -> None:
    people, departments = export()
    with people.open("a", encoding="utf-8") as handle:
        handle.write(",,,,\n\n")
    records = list(source(people, departments).people())
    assert len(records) == len(PEOPLE)
    assert (records[0].source, records[0].line, records[-1].line) == ("people.csv", 2, len(PEOPLE) + 1)


def test_header_names_are_configurable(export: Callable[..., tuple[Path, Path]]) -> None:
    people, departments = export()
    people.write_text(people.read_text(encoding="utf-8").replace("手机号", "移动电话", 1), encoding="utf-8")
    records = list(source(people, departments, mobile="移动电话").people())
    assert records[0].fields["mobile"] == "13800000001"


def test_a_missing_key_column_is_a_source_error_naming_it(export: Callable[..., tuple[Path, Path]]) -> None:
    people, departments = export()
    people.write_text(people.read_text(encoding="utf-8").replace("工号", "编号", 1), encoding="utf-8")
    with pytest.raises(SourceError, match="employee_id"):
        list(source(people, departments).people())

"""A damaged or changing HR export is an incomplete read: nobody leaves, no department is retired,
no value of a damaged row is pushed, one `source.incomplete` line says why, and level 1 hears of it.

End to end where it matters: the CLI syncs real files into the bundled simulator over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from connectors.sources.csv_source import CsvSource
from connectors.sources.xlsx_source import XlsxSource
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS, EscalationConfig, load
from syncd.domain.escalation import Escalation, gather_facts
from syncd.domain.source import RawRecord, SourceError
from syncd.domain.validate import CodeTables, build_snapshot
from syncd.state.store import StateStore
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER, write_csv
from tests.sim_env import Env
from tests.test_escalation import Recorder

# The export HR writes next: person 3's post and office phone changed. Cut inside that row, the old
# reader pushed the cut cells (`govEmpPosPhoneNo = "0371-6"`) and deactivated everyone after it.
CHANGED = [dict(p) for p in PEOPLE]
CHANGED[2].update(职务="副处长", 办公电话="0371-69998888")


def csv_bytes(header: list[str], rows: list[dict[str, str]], tmp: Path) -> bytes:
    """The bytes the project's CSV writer makes of these rows (CRLF line ends, as Excel writes)."""
    return write_csv(tmp, header, rows).read_bytes()


def row_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each data row's bytes, its line end included."""
    starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    return list(pairwise(starts[1:]))


def incomplete_lines(stderr: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "source.incomplete"]


@pytest.fixture
def synced(env: Env) -> Iterator[Env]:
    """The small bureau synced once: every department and person in the directory."""
    assert env.sync().exit_code == 0
    yield env


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@example(data=None)  # the row cut right after its department column: the case that pushed "0371-6"
def test_people_csv_cut_anywhere_inside_a_row_changes_nothing_in_the_directory(
        synced: Env, tmp_path: Path, data: st.DataObject | None) -> None:
    full = csv_bytes(PEOPLE_HEADER, CHANGED, tmp_path / "full.csv")
    spans = row_spans(full)
    if data is None:
        row, (start, _) = 2, spans[2]
        cut = start + full[start:].index(b"0371-6") + len("0371-6")
    else:
        row = data.draw(st.integers(0, len(spans) - 1), label="row")
        start, end = spans[row]
        cut = data.draw(st.integers(start + 1, end - 1), label="cut")  # end itself is a well-formed file
    before, writes = synced.directory(), synced.writes()
    (tmp_path / "people.csv").write_bytes(full[:cut])
    result = synced.sync()
    assert result.exit_code == 0, result.output
    assert synced.writes() == writes, f"row {row} cut at byte {cut - start}: something was written"
    assert synced.directory() == before
    [line] = incomplete_lines(result.stderr)
    assert "people.csv" in str(line["reason"])


@pytest.mark.parametrize("row", [0, 2, 5])
def test_a_row_cut_after_each_of_its_fields_is_an_incomplete_read(tmp_path: Path, row: int) -> None:
    full = csv_bytes(PEOPLE_HEADER, CHANGED, tmp_path / "full.csv")
    start, end = row_spans(full)[row]
    commas = [start + i for i, byte in enumerate(full[start:end]) if byte == ord(",")]
    departments = write_csv(tmp_path / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    people = tmp_path / "people.csv"
    for cut in [*commas, *(c + 1 for c in commas), end - 2, end - 1]:  # before and after each comma; no CRLF
        people.write_bytes(full[:cut])
        source = CsvSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)
        snapshot = build_snapshot(source, "D0001", CodeTables.load())
        assert snapshot.complete is False, f"cut at byte {cut - start} of row {row}"
        assert snapshot.people == {}


@pytest.mark.parametrize(("damage", "says"), [
    (lambda text: text.replace("13800000003,", '"13800000003,', 1), "people.csv"),  # quote never closed
    (lambda text: text.replace("13800000003,", "13800000003,,", 1), "line 4 has 16 fields"),  # a cell too many
    (lambda text: text.replace(",D0003,", ",", 1), "line 4 has 14 fields"),  # a cell lost mid-file
])
def test_a_damaged_row_in_the_middle_of_the_file_makes_the_read_incomplete(tmp_path: Path, damage, says) -> None:
    people = write_csv(tmp_path / "people.csv", PEOPLE_HEADER, PEOPLE)
    departments = write_csv(tmp_path / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    people.write_text(damage(people.read_text(encoding="utf-8")), encoding="utf-8", newline="")
    source = CsvSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)
    with pytest.raises(SourceError, match=says):
        list(source.people())


def test_trailing_empty_cells_past_the_header_are_not_damage(tmp_path: Path) -> None:
    people = write_csv(tmp_path / "people.csv", PEOPLE_HEADER, PEOPLE)
    departments = write_csv(tmp_path / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    people.write_text(people.read_text(encoding="utf-8").replace("\r\n", ",,\r\n"), encoding="utf-8", newline="")
    source = CsvSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)
    assert len(list(source.people())) == len(PEOPLE)


class RewrittenDuringRead(CsvSource):
    """The CSV source, while HR's tool rewrites people.csv in place after the first row was read."""

    def __init__(self, people: Path, departments: Path, rewrite: bytes) -> None:
        super().__init__(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS)
        self._path, self._rewrite = people, rewrite

    def people(self) -> Iterator[RawRecord]:
        for number, record in enumerate(super().people()):
            yield record
            if number == 0:
                with self._path.open("r+b") as handle:  # in place, as Excel's "save" does
                    handle.write(self._rewrite)
                    handle.truncate()


def test_a_people_file_rewritten_during_the_read_is_an_incomplete_read(tmp_path: Path) -> None:
    people = write_csv(tmp_path / "people.csv", PEOPLE_HEADER, PEOPLE)
    departments = write_csv(tmp_path / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    # The same size, so only the mtime and the hash can tell: the new export moves one person.
    rewrite = people.read_bytes().replace(b"A000004,", b"A000009,")
    snapshot = build_snapshot(RewrittenDuringRead(people, departments, rewrite), "D0001", CodeTables.load())
    assert snapshot.complete is False
    assert "changed while it was read" in snapshot.rejections[-1].reason
    assert snapshot.people == {}
    # Read again once the file is still: complete, and the new export's.
    again = build_snapshot(CsvSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS),
                           "D0001", CodeTables.load())
    assert again.complete and "A000009" in again.people


def test_a_workbook_rewritten_during_the_read_is_an_incomplete_read(tmp_path: Path) -> None:
    def workbook(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
        book = Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(column, "") for column in header])
        book.save(path)
        return path

    people = workbook(tmp_path / "people.xlsx", PEOPLE_HEADER, PEOPLE)
    departments = workbook(tmp_path / "departments.xlsx", DEPARTMENT_HEADER, DEPARTMENTS)
    rows = XlsxSource(people, departments, DEFAULT_PEOPLE_COLUMNS, DEFAULT_DEPARTMENT_COLUMNS).people()
    next(rows)
    workbook(tmp_path / "people.xlsx", PEOPLE_HEADER, PEOPLE[:3])
    with pytest.raises(SourceError, match="changed while it was read"):
        list(rows)


def test_departments_csv_cut_mid_line_retires_no_department(env: Env, tmp_path: Path) -> None:
    spare = {"部门编号": "D0006", "部门名称": "审计督查室", "简称": "督查室", "上级部门编号": "D0001", "排序": "7"}
    env.write_export(departments=[*DEPARTMENTS, spare])
    assert env.sync().exit_code == 0
    before, writes = env.directory(), env.writes()
    full = (tmp_path / "departments.csv").read_bytes()
    start, end = row_spans(full)[-1]
    for cut in range(start + 1, end):  # every byte of the empty department's row
        (tmp_path / "departments.csv").write_bytes(full[:cut])
        result = env.sync()
        assert result.exit_code == 0, result.output
        assert env.writes() == writes, f"cut at byte {cut - start}: deleteGovOrganization or another write sent"
        assert len(incomplete_lines(result.stderr)) == 1
    assert env.directory() == before


def test_an_incomplete_read_opens_a_level_1_source_incomplete_problem_resolved_by_a_whole_read(
        synced: Env, tmp_path: Path) -> None:
    full = (tmp_path / "people.csv").read_bytes()
    (tmp_path / "people.csv").write_bytes(full[:-10])
    assert synced.sync().exit_code == 0
    config = load(synced.config)
    store = StateStore(config.state.url)
    recorder = Recorder()
    admins = EscalationConfig.model_validate({"unit_admins": [{"name": "管理员甲", "account_id": 9001}]})
    escalation = Escalation(store, config.model_copy(update={"escalation": admins}), [recorder], config.unit.name)
    try:
        now = datetime.now(UTC)
        escalation.observe(now, gather_facts(store, now.date(), config.escalation))
        assert (1, "source_incomplete", "open") in recorder.take()
        assert "人事导出文件不完整" in recorder.last[0].text
        (tmp_path / "people.csv").write_bytes(full)  # the whole file back: a complete read
        assert synced.sync().exit_code == 0
        escalation.observe(now, gather_facts(store, now.date(), config.escalation))
        assert (1, "source_incomplete", "resolved") in recorder.take()
    finally:
        store.close()


def test_a_root_department_missing_from_hr_is_an_incomplete_read_that_says_which_key(env: Env) -> None:
    assert env.sync().exit_code == 0
    writes = env.writes()
    env.write_export(departments=[d for d in DEPARTMENTS if d["部门编号"] != "D0001"])
    result = env.sync()
    [line] = incomplete_lines(result.stderr)
    assert "unit.root_department D0001" in line["reason"]
    assert env.writes() == writes  # every record outside the unit, and nobody deactivated for it

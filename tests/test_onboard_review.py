"""The onboarding review and the acceptance checks as pure functions, and the workbook's cells as text."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from syncd.domain.model import Department, LinkState, Person, Snapshot
from syncd.domain.target import DirectoryEntry, DirectoryOrganization, DirectoryPerson
from syncd.engine.onboard import ConfirmedRow, Directory, check, review
from syncd.reporting.onboard_workbook import read_confirmed, write_review

ROOT = "GO_ROOT"


def org(code: str, name: str, parent: str = ROOT, short_name: str = "") -> DirectoryOrganization:
    return DirectoryOrganization(code, name, short_name, parent, "", "A")


def entry(code: str, name: str, org_code: str, status: str = "A") -> DirectoryEntry:
    return DirectoryEntry(code, status, org_code, {"name": name})


def snapshot(*people: Person) -> Snapshot:
    departments = [Department("D1", "本局"), Department("D2", "办公室", parent="D1"),
                   Department("D3", "法规处", "法规", parent="D1")]
    return Snapshot({d.id: d for d in departments}, {p.employee_id: p for p in people})


def directory(*people: DirectoryEntry, orgs: tuple[DirectoryOrganization, ...] = ()) -> Directory:
    found = Directory(ROOT, {o.code: o for o in orgs})
    found.people = {p.employee_code: p for p in people}
    return found


def test_a_same_named_person_of_the_same_department_is_suggested_never_confirmed() -> None:
    hr = snapshot(Person("E1", "张三", mobile="13800000001", department="D2"),
                  Person("E2", "李四", mobile="13800000002", department="D2"))
    held = directory(entry("GE1", "张三", "GO_2"), entry("GE9", "王五", "GO_2"), orgs=(org("GO_2", "办公室"),))
    result = review(hr, LinkState(), held, {}, "D1")
    people = {row.employee_id or row.employee_code: row for row in result.people}
    assert (people["E1"].kind, people["E1"].employee_code, people["E1"].confirmed) == ("same_name", "GE1", False)
    assert (people["E2"].kind, people["E2"].employee_code) == ("none", "")
    assert people["GE9"].kind == "directory_only"  # nobody HR knows: listed, with the employeeCode
    assert result.summary()["people.to_confirm"] == 1


def test_two_same_named_people_give_no_suggestion() -> None:
    hr = snapshot(Person("E1", "张三", mobile="13800000001", department="D2"))
    held = directory(entry("GE1", "张三", "GO_2"), entry("GE2", "张三", "GO_2"), orgs=(org("GO_2", "办公室"),))
    result = review(hr, LinkState(), held, {}, "D1")
    [row, *_] = result.people
    assert (row.kind, row.candidates) == ("none", 2)
    assert row not in result.suggestions()


def test_a_mobile_match_is_preconfirmed_and_a_short_name_match_too() -> None:
    hr = snapshot(Person("E1", "张三", mobile="13800000001", department="D3"))
    held = directory(entry("GE1", "张三丰", "GO_3"), orgs=(org("GO_3", "法规"),))
    result = review(hr, LinkState(), held, {"E1": DirectoryPerson("GE1", 7, "A")}, "D1")
    [person] = result.people
    assert (person.kind, person.employee_code, person.confirmed) == ("mobile", "GE1", True)
    rows = {row.hr_id: row for row in result.departments}
    assert (rows["D3"].kind, rows["D3"].organization_code, rows["D3"].confirmed) == ("short_name", "GO_3", True)
    assert (rows["D2"].kind, rows["D2"].confirmed) == ("none", False)


def test_several_organisations_of_the_name_are_rows_to_choose_from_none_preconfirmed() -> None:
    held = directory(orgs=(org("GO_A", "办公室"), org("GO_B", "综合办公室", short_name="办公室")))
    result = review(snapshot(), LinkState(), held, {}, "D1")
    rows = [row for row in result.departments if row.hr_id == "D2"]
    assert sorted(row.organization_code for row in rows) == ["GO_A", "GO_B"]
    assert not any(row.confirmed for row in rows) and {row.candidates for row in rows} == {2}
    assert all(row in result.suggestions() for row in rows)


def test_two_departments_confirmed_to_one_organisation_and_an_unknown_id_are_refused() -> None:
    held = directory(orgs=(org("GO_2", "办公室"),))
    rows = [ConfirmedRow("departments", 2, "D2", "GO_2"), ConfirmedRow("departments", 3, "D3", "GO_2"),
            ConfirmedRow("departments", 4, "D9", "GO_2")]
    accepted, refusals = check(rows, snapshot(), LinkState(), held, {}, "D1")
    assert [(r.row, r.reason) for r in refusals] == [(3, "organization.twice"), (4, "department.unknown")]
    assert accepted.departments == {}


def test_workbook_cells_that_look_like_formulas_stay_text(tmp_path: Path) -> None:
    hr = snapshot(Person("E1", "=HYPERLINK(\"x\")", mobile="13800000001", department="D2"))
    path = tmp_path / "review.xlsx"
    write_review(review(hr, LinkState(), directory(), {}, "D1"), path)
    cells = [cell for row in load_workbook(path)["人员"].iter_rows(min_row=2) for cell in row]
    formula = [cell for cell in cells if str(cell.value or "").startswith("=")]
    assert formula and all(cell.data_type == "s" for cell in formula)
    assert read_confirmed(path) == []

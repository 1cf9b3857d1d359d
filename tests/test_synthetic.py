"""The synthetic HR generator (bench/synthetic.py) and the demo export it wrote to syncd/data/demo (package data)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from bench.synthetic import ROOT_ID, generate, main, write_csv
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS

DEMO = Path(__file__).resolve().parent.parent / "syncd" / "data" / "demo"
# DESIGN.md §9, "HR export columns".
PEOPLE_HEADER = ["工号", "姓名", "性别", "手机号", "部门编号", "编制", "职级", "政治面貌", "人员角色",
                 "职务", "职务层次", "办公电话", "领导分工", "人员状态", "排序"]
DEPARTMENT_HEADER = ["部门编号", "部门名称", "简称", "上级部门编号", "排序"]


@pytest.fixture(scope="module")
def export() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A mid-sized bureau, big enough to grow district centres."""
    return generate(3000, seed=11)


def read_csv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    """Every row of a CSV file, header included."""
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


def test_same_seed_gives_same_rows_and_another_seed_does_not() -> None:
    assert generate(500, seed=3) == generate(500, seed=3)
    assert generate(500, seed=3)[1] != generate(500, seed=4)[1]


def test_employee_ids_and_mobiles_are_unique(export) -> None:
    _, people = export
    assert len({p["工号"] for p in people}) == len(people) == 3000
    assert len({p["手机号"] for p in people}) == len(people)


def test_employee_ids_and_mobiles_have_the_documented_shape(export) -> None:
    _, people = export
    assert all(re.fullmatch(r"A\d{6}", p["工号"]) for p in people)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p["手机号"]) for p in people)


def test_every_person_is_in_a_department_and_every_parent_exists(export) -> None:
    departments, people = export
    ids = {d["部门编号"] for d in departments}
    assert len(ids) == len(departments)
    assert {p["部门编号"] for p in people} <= ids
    roots = [d for d in departments if not d["上级部门编号"]]
    assert [d["部门编号"] for d in roots] == [ROOT_ID]
    assert all(d["上级部门编号"] in ids for d in departments if d is not roots[0])


def test_parents_come_before_their_children(export) -> None:
    departments, _ = export
    seen: set[str] = set()
    for department in departments:
        assert not department["上级部门编号"] or department["上级部门编号"] in seen
        seen.add(department["部门编号"])


def test_every_department_but_the_grouping_node_is_headed_by_its_first_person(export) -> None:
    departments, people = export
    first = {p["部门编号"]: p for p in people if p["排序"] == "1"}
    assert [d["部门名称"] for d in departments if d["部门编号"] not in first] == ["局属单位"]
    assert first[ROOT_ID]["职务"] == "局长"
    assert all(p["人员角色"] == "中层" and p["人员状态"] == "在职" for d, p in first.items() if d != ROOT_ID)


def test_leader_duties_only_for_leaders(export) -> None:
    _, people = export
    assert all(p["人员角色"] == "领导" for p in people if p["领导分工"])
    assert any(p["领导分工"].startswith("分管") for p in people)


def test_values_come_from_the_code_tables(export) -> None:
    _, people = export
    assert {p["性别"] for p in people} == {"男", "女"}
    assert {p["编制"] for p in people} == {"行政编制", "事业编制", "工勤编制"}
    assert {p["人员角色"] for p in people} == {"领导", "中层", "普通人员"}
    assert {p["人员状态"] for p in people} <= {"在职", "调离", "退休", "离职", "死亡"}
    assert "中共党员" in {p["政治面貌"] for p in people}
    assert any("·" in p["姓名"] for p in people)


def test_write_csv_puts_the_design_headers_first(tmp_path: Path) -> None:
    departments, people = generate(50, seed=1)
    write_csv(tmp_path, departments, people, encoding="gb18030")
    people_rows = read_csv(tmp_path / "people.csv", "gb18030")
    department_rows = read_csv(tmp_path / "departments.csv", "gb18030")
    assert people_rows[0] == PEOPLE_HEADER == list(DEFAULT_PEOPLE_COLUMNS.values())
    assert department_rows[0] == DEPARTMENT_HEADER == list(DEFAULT_DEPARTMENT_COLUMNS.values())
    assert len(people_rows) == 51
    assert len(department_rows) == len(departments) + 1


def test_a_hundred_thousand_people_generate_in_realistic_departments() -> None:
    departments, people = generate(100_000, seed=2)
    assert len(people) == 100_000
    assert len({p["工号"] for p in people}) == len({p["手机号"] for p in people}) == 100_000
    parents = {d["上级部门编号"] for d in departments}
    sizes = Counter(p["部门编号"] for p in people)
    leaf_sizes = [sizes[d["部门编号"]] for d in departments if d["部门编号"] not in parents]
    assert min(leaf_sizes) >= 10
    assert max(leaf_sizes) <= 60


def test_bundled_demo_is_what_the_documented_command_writes(tmp_path: Path) -> None:
    # If this fails after a Faker upgrade, regenerate:
    # python -m bench.synthetic --people 300 --seed 7 --out syncd/data/demo
    assert main(["--people", "300", "--seed", "7", "--out", str(tmp_path)]) == 0
    for name in ("departments.csv", "people.csv"):
        assert (DEMO / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_bundled_demo_has_a_bureau_with_a_few_retirees() -> None:
    departments = read_csv(DEMO / "departments.csv")[1:]
    people = read_csv(DEMO / "people.csv")
    status = Counter(row[people[0].index("人员状态")] for row in people[1:])
    assert 25 <= len(departments) <= 35
    assert len(people) - 1 == 300
    assert set(status) == {"在职", "退休"} and 2 <= status["退休"] <= 3

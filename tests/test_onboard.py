"""`syncd onboard`: the review of a hand-built directory, the confirmed matches accepted, then a sync that converges.

Integration tests against the simulator over real HTTP; the hand-built directory is made through the
API like the unit admin's own edits, and the workbook is edited with openpyxl like an admin's Excel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from connectors.zzd.simulator.handbuilt import HandBuilt
from syncd.config import load
from syncd.engine.cycle import CycleOptions, run_cycle
from syncd.reporting.messages import ONBOARD_KINDS, ONBOARD_YES
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENTS, PEOPLE
from tests.sim_env import TENANT, Env, hand_client
from tests.test_adoption import CREATES, build, by_names, calls, hr_by_names, no_same_named_siblings

UNKNOWN = ("13900000001", "13900000002", "13900000003")  # left years ago, never removed (art. 9)


def sheet_rows(path: Path, title: str) -> list[dict[str, Any]]:
    """A sheet of the workbook as dicts by header."""
    workbook = load_workbook(path)
    rows = list(workbook[title].iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def confirm(path: Path, title: str, column: str, key: str) -> None:
    """Put 是 into the 确认 cell of the row whose `column` is `key`, as an admin would in Excel."""
    workbook = load_workbook(path)
    sheet = workbook[title]
    header = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index(column)].value == key:
            row[header.index("确认")].value = ONBOARD_YES
    workbook.save(path)


def match_by_hand(path: Path, organization_code: str, hr_id: str) -> None:
    """Type an HR 部门编号 into the row of an organisation only the directory holds, and confirm it."""
    workbook = load_workbook(path)
    sheet = workbook["部门"]
    header = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index("组织编码")].value == organization_code:
            row[header.index("部门编号")].value = hr_id
            row[header.index("确认")].value = ONBOARD_YES
    workbook.save(path)


def state(env: Env) -> StateStore:
    return StateStore("sqlite:///" + str(env.config.parent / "state.db"))


def add_unknown_people(env: Env, built: HandBuilt) -> dict[str, str]:
    """Three directory people HR does not know, in the hand-built 办公室: mobile -> employeeCode."""
    hand = hand_client(env)
    return {mobile: str(hand.create_complex_employee(built.organizations["D0002"], {
        "employeeName": f"旧人{n}", "govEmpCellPhoneNo": mobile, "areaCode": "86"})["employeeCode"])
        for n, mobile in enumerate(UNKNOWN)}


def test_onboard_review_accept_and_full_sync_adopt_short_named_departments_and_keep_unknown_people(
        env: Env, tmp_path: Path) -> None:
    built = build(env, name_of=lambda row: row["简称"] or row["部门名称"])  # 财政处, 信息中心
    unknown = add_unknown_people(env, built)
    before = env.sim_admin().directory()
    writes = env.writes()
    workbook = tmp_path / "review.xlsx"
    result = env.cli("onboard", "--output", str(workbook))
    assert result.exit_code == 0, result.output
    assert env.writes() == writes  # read-only
    assert "people.directory_only" in result.output
    departments = {row["部门编号"]: row for row in sheet_rows(workbook, "部门") if row["部门编号"]}
    assert departments["D0003"]["匹配方式"] == ONBOARD_KINDS["short_name"]
    assert departments["D0003"]["组织编码"] == built.organizations["D0003"]
    assert departments["D0005"]["匹配方式"] == ONBOARD_KINDS["short_name"]
    assert departments["D0002"]["匹配方式"] == ONBOARD_KINDS["name"]
    assert all(row["确认"] == ONBOARD_YES for row in departments.values())
    people = sheet_rows(workbook, "人员")
    matched = {row["工号"]: row for row in people if row["工号"]}
    assert {k: (row["匹配方式"], row["employeeCode"], row["确认"]) for k, row in matched.items()} == {
        employee_id: (ONBOARD_KINDS["mobile"], code, ONBOARD_YES) for employee_id, code in built.employees.items()}
    only = [row for row in people if row["匹配方式"] == ONBOARD_KINDS["directory_only"]]
    assert sorted(row["employeeCode"] for row in only) == sorted(unknown.values())
    assert {row["郑政钉部门"] for row in only} == {"办公室"}

    accepted = env.cli("onboard", "--accept", str(workbook))
    assert accepted.exit_code == 0, accepted.output
    assert env.writes() == writes  # accepting writes nothing to the directory
    links = state(env).links()
    assert {hr_id: link.organization_code for hr_id, link in links.departments.items()} == {
        hr_id: code for hr_id, code in built.organizations.items() if hr_id != "D0001"}
    assert {hr_id: link.employee_code for hr_id, link in links.people.items()} == built.employees
    [run] = state(env).runs()  # journaled as a run of its own, every link a done entry
    assert (run.trigger, run.outcome, run.counts) == ("onboard", "success", {"dept_adopt": 4, "adopt": 5,
                                                                            "unchanged": 0})
    assert state(env).journal_states(run.id) == {"done": 9}

    counters = calls(env)
    synced = env.sync("--full")
    assert synced.exit_code == 0, synced.output
    assert {path: calls(env).get(path, 0) - counters.get(path, 0) for path in CREATES} == dict.fromkeys(CREATES, 0)
    after = env.sim_admin().directory()
    assert len(after["organizations"]) == len(before["organizations"]) and no_same_named_siblings(after)
    wanted = hr_by_names(PEOPLE, DEPARTMENTS)
    assert by_names(after)["departments"] == wanted["departments"]  # renamed to HR's 部门名称
    people_now = by_names(after)["people"]
    assert {m: people_now[m] for m in wanted["people"]} == wanted["people"]
    assert {m: people_now[m][2] for m in UNKNOWN} == dict.fromkeys(UNKNOWN, "A")  # report mode: still active
    writes = env.writes()
    assert env.sync("--full").exit_code == 0 and env.writes() == writes  # converged


def test_a_renamed_department_is_a_suggestion_not_adopted_until_confirmed(env: Env, tmp_path: Path) -> None:
    built = build(env, name_of=lambda row: "综合办公室" if row["部门编号"] == "D0002" else row["部门名称"])
    workbook = tmp_path / "review.xlsx"
    assert env.cli("onboard", "--output", str(workbook)).exit_code == 0
    [office] = [row for row in sheet_rows(workbook, "部门") if row["部门编号"] == "D0002"]
    assert (office["匹配方式"], office["组织编码"], office["郑政钉名称"], office["确认"]) == (
        ONBOARD_KINDS["similar"], built.organizations["D0002"], "综合办公室", None)
    # Its people are matched by mobile all the same: the mobile is the person's, whatever the department.
    assert env.cli("onboard", "--accept", str(workbook)).exit_code == 0
    assert "D0002" not in state(env).links().departments

    confirm(workbook, "部门", "部门编号", "D0002")
    accepted = env.cli("onboard", "--accept", str(workbook))
    assert accepted.exit_code == 0, accepted.output
    assert state(env).links().departments["D0002"].organization_code == built.organizations["D0002"]
    before = len(env.sim_admin().directory()["organizations"])
    synced = env.sync("--full")
    assert synced.exit_code == 0, synced.output
    after = env.sim_admin().directory()
    assert len(after["organizations"]) == before
    assert by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)  # 综合办公室 is 办公室 again, not a second one


def test_a_stale_workbook_is_refused_naming_sheet_row_and_reason_and_nothing_is_stored(
        env: Env, tmp_path: Path) -> None:
    built = build(env)
    workbook = tmp_path / "review.xlsx"
    assert env.cli("onboard", "--output", str(workbook)).exit_code == 0
    rows = sheet_rows(workbook, "部门")
    row_of_finance = 2 + next(i for i, row in enumerate(rows) if row["部门编号"] == "D0003")
    people = sheet_rows(workbook, "人员")
    row_of_li = 2 + next(i for i, row in enumerate(people) if row["工号"] == "A000002")
    hand = hand_client(env)
    hand.update_gov_organization(built.organizations["D0003"], {"organizationName": "财政科"})
    # 李华's mobile now belongs to someone else: the 手机号 match of the review is contradicted.
    hand.update_gov_employee(built.employees["A000002"], {"govEmpCellPhoneNo": "13700000002"})
    other = str(hand.create_complex_employee(TENANT.root_code, {
        "employeeName": "新人", "govEmpCellPhoneNo": "13800000002", "areaCode": "86"})["employeeCode"])
    result = env.cli("onboard", "--accept", str(workbook))
    assert result.exit_code == 1, result.output
    assert f"部门表第 {row_of_finance} 行" in result.output and "已改名为“财政科”" in result.output
    assert f"人员表第 {row_of_li} 行" in result.output and other in result.output
    assert "nothing was stored" in result.output
    store = state(env)
    links = store.links()
    assert (links.departments, links.people) == ({}, {})
    assert store.runs() == []


def test_onboard_needs_exactly_one_of_output_and_accept(env: Env) -> None:
    assert env.cli("onboard").exit_code == 2


def test_an_organisation_only_in_the_directory_is_matched_by_typing_the_hr_id_into_its_row(
        env: Env, tmp_path: Path) -> None:
    built = build(env, name_of=lambda row: "信息科" if row["部门编号"] == "D0005" else row["部门名称"])
    workbook = tmp_path / "review.xlsx"
    assert env.cli("onboard", "--output", str(workbook)).exit_code == 0
    rows = sheet_rows(workbook, "部门")
    assert any(row["组织编码"] == built.organizations["D0005"] and row["匹配方式"] == ONBOARD_KINDS["directory_only"]
               for row in rows)
    match_by_hand(workbook, built.organizations["D0005"], "D0005")
    accepted = env.cli("onboard", "--accept", str(workbook))
    assert accepted.exit_code == 0, accepted.output
    assert state(env).links().departments["D0005"].organization_code == built.organizations["D0005"]
    before = len(env.sim_admin().directory()["organizations"])
    assert env.sync("--full").exit_code == 0
    after = env.sim_admin().directory()
    assert len(after["organizations"]) == before and by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)


def test_a_confirmed_organisation_under_another_parent_than_hrs_is_moved_by_the_next_sync(
        env: Env, tmp_path: Path) -> None:
    # 信息中心 typed in under the root, where HR has it under 局属单位.
    built = build(env, departments=[{**d, "上级部门编号": "D0001"} if d["部门编号"] == "D0005" else d
                                    for d in DEPARTMENTS])
    workbook = tmp_path / "review.xlsx"
    assert env.cli("onboard", "--output", str(workbook)).exit_code == 0
    match_by_hand(workbook, built.organizations["D0005"], "D0005")
    accepted = env.cli("onboard", "--accept", str(workbook))
    assert accepted.exit_code == 0, accepted.output
    assert state(env).links().departments["D0005"].parent == "D0001"  # where the directory has it
    before = len(env.sim_admin().directory()["organizations"])
    result = env.sync("--full")
    assert result.exit_code == 0, result.output
    after = env.sim_admin().directory()
    assert len(after["organizations"]) == before and by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)
    organization = next(o for o in after["organizations"] if o["organizationCode"] == built.organizations["D0005"])
    assert organization["parentCode"] == built.organizations["D0004"]


def test_after_an_accept_the_daemons_next_cycle_reads_hr_again_and_the_onboarding_run_is_no_cycle(
        env: Env, tmp_path: Path) -> None:
    build(env)
    assert env.sync().exit_code == 0  # adopted and linked; the source's change token is kept
    config = load(env.config)
    store = state(env)
    daemon_cycle = CycleOptions(trigger="schedule", skip_unchanged=True)
    assert run_cycle(config, build_source(config), build_target(config), store, daemon_cycle).outcome == "skipped"
    last = store.last_unit_run()
    assert last is not None
    workbook = tmp_path / "review.xlsx"
    assert env.cli("onboard", "--output", str(workbook)).exit_code == 0
    assert env.cli("onboard", "--accept", str(workbook)).exit_code == 0
    assert store.runs(1)[0].trigger == "onboard"
    assert getattr(store.last_unit_run(), "id", None) == last.id  # the onboarding run is not the unit's last cycle
    assert run_cycle(config, build_source(config), build_target(config), store, daemon_cycle).outcome == "success"

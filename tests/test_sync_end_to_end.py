"""One honest end-to-end sync: an HR export in, the bundled simulator out, over real HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import update

from bench.synthetic import generate
from syncd.state.models import PersonLink
from tests.conftest import DEPARTMENTS, PEOPLE, person
from tests.projection import hr_projection
from tests.sim_env import TENANT, Env, employee_code, hand_client

MOBILE = re.compile(r"1[3-9]\d{9}")
expected = hr_projection


def test_initial_sync_creates_exactly_the_departments_and_people_of_the_export(env: Env) -> None:
    result = env.sync()
    assert result.exit_code == 0, result.output
    assert env.directory() == expected(PEOPLE, DEPARTMENTS)


def test_a_second_sync_on_unchanged_data_makes_zero_writes(env: Env) -> None:
    assert env.sync().exit_code == 0
    before = env.writes()
    result = env.sync()
    assert result.exit_code == 0, result.output
    assert env.writes() == before
    assert "the directory is up to date" in result.output


def test_a_malformed_row_is_rejected_with_line_and_field_while_the_rest_syncs(env: Env) -> None:
    people = [*PEOPLE, person("A000007", "孙丽", "1380000abcd", "D0003"), person("A000008", "", "13800000008", "D0003")]
    env.write_export(people=people)
    result = env.sync()
    assert result.exit_code == 0, result.output
    assert "people.csv:8  person A000007  mobile: not an 11-digit" in result.output
    assert "people.csv:9  person A000008  name: missing" in result.output
    assert env.directory() == expected(PEOPLE, DEPARTMENTS)


def test_changes_in_hr_reach_the_directory(env: Env) -> None:
    assert env.sync().exit_code == 0
    people = [dict(p) for p in PEOPLE]
    people[0]["部门编号"] = "D0003"  # transfer
    people[1]["职务"] = "副主任"  # post change
    people[2]["人员状态"] = "退休"  # retirement
    people.append(person("A000009", "钱多", "13800000009", "D0005"))  # join
    env.write_export(people=people)
    result = env.sync()
    assert result.exit_code == 0, result.output
    want = expected(people, DEPARTMENTS)
    want["people"]["13800000003"] = ("王芳", None, "F", None)  # deactivated (no position), never deleted
    assert env.directory() == want


def test_a_log_captured_during_a_sync_contains_no_mobile_number(env: Env) -> None:
    # An over-long mobile: invalid, so validation reports it, and it must not reach the log either.
    env.write_export(people=[*PEOPLE, person("A000007", "孙丽", "1380000000712", "D0003")])
    result = env.sync()
    assert result.exit_code == 0
    logged = result.stderr
    assert "cycle.finished" in logged
    assert not MOBILE.search(logged), "a mobile number reached the log"
    assert "1380000000712" not in logged
    assert "张明" not in logged


def test_dry_run_prints_the_plan_by_kind_and_writes_nothing(env: Env) -> None:
    result = env.sync("--dry-run")
    assert result.exit_code == 0
    assert "dept_create (4)" in result.output and "join (5)" in result.output
    assert "API writes this plan would send (9; none was sent)" in result.output
    assert re.search(r"5 × /addressBook/employee/createComplexEmployee +\(.*govEmpCellPhoneNo", result.output)
    assert re.search(r"4 × /mozi/organization/createGovOrganization +\(.*extOrgCode", result.output)
    assert not MOBILE.search(result.output)
    assert env.writes() == 0
    assert env.directory()["people"] == {}


def test_dry_run_json_is_for_machines(env: Env) -> None:
    result = env.sync("--dry-run", "--format", "json")
    data = json.loads(result.stdout)
    assert data["counts"] == {"dept_create": 4, "join": 5}
    assert not MOBILE.search(result.output)


@pytest.mark.parametrize("env", [{"structure": "hold"}], indirect=True)
def test_held_structure_waits_for_approval_then_applies(env: Env) -> None:
    first = env.sync()
    assert first.exit_code == 3, first.output
    run_id = re.search(r"syncd approve (\w+)", first.output)[1]  # type: ignore[index]
    assert env.directory()["departments"] == {}
    assert env.cli("approve", run_id).exit_code == 0
    second = env.sync()
    assert second.exit_code == 0, second.output
    assert env.directory() == expected(PEOPLE, DEPARTMENTS)


@pytest.mark.parametrize("env", [{"max_deactivations": 1}], indirect=True)
def test_a_snapshot_missing_people_deactivates_nobody_until_approved(env: Env) -> None:
    assert env.sync().exit_code == 0
    env.write_export(people=PEOPLE[:2])  # three in-post people gone from HR
    held = env.sync()
    assert held.exit_code == 3, held.output
    assert all(status == "A" for _, _, status, _ in env.directory()["people"].values())
    run_id = re.search(r"syncd approve (\w+)", held.output)[1]  # type: ignore[index]
    assert "Waiting for a decision" in env.cli("status").output
    assert env.cli("approve", run_id).exit_code == 0
    assert env.sync().exit_code == 0
    statuses = {mobile: status for mobile, (_, _, status, _) in env.directory()["people"].items()}
    assert statuses == {"13800000001": "A", "13800000002": "A", "13800000003": "F", "13800000004": "F",
                        "13800000005": "F"}


def account_status(env: Env, mobile: str) -> str:
    data = env.sim_admin().directory()
    [employee] = [e for e in data["employees"] if e["mobile"] == mobile]
    [account] = [a for a in data["accounts"] if a["accountId"] == employee["accountId"]]
    return str(account["status"])


def test_a_frozen_login_stays_frozen_through_syncs_until_unfrozen(env: Env) -> None:
    assert env.sync().exit_code == 0
    frozen = env.cli("freeze", "A000002", "--by", "duty-officer")
    assert frozen.exit_code == 0, frozen.output
    assert account_status(env, "13800000002") == "F"
    people = [dict(p) for p in PEOPLE]
    people[1]["职务"] = "副主任"
    env.write_export(people=people)
    assert env.sync().exit_code == 0
    assert account_status(env, "13800000002") == "F"
    assert env.cli("unfreeze", "A000002").exit_code == 0
    assert account_status(env, "13800000002") == "A"


def test_a_person_linked_without_their_account_is_frozen_at_once_and_the_link_completed(env: Env) -> None:
    """People confirmed by name in `syncd onboard --accept` are linked before their account is known."""
    assert env.sync().exit_code == 0
    store = env.store()
    try:
        with store.engine.begin() as connection:
            connection.execute(update(PersonLink).where(PersonLink.employee_id == "A000002").values(account_id=None))
        frozen = env.cli("freeze", "A000002", "--by", "duty-officer")
        assert frozen.exit_code == 0, frozen.output
        assert account_status(env, "13800000002") == "F"
        assert store.links(people=["A000002"]).people["A000002"].account_id is not None
    finally:
        store.close()


def test_freezing_an_unknown_person_is_a_usage_error(env: Env) -> None:
    assert env.cli("freeze", "A999999").exit_code == 2


@pytest.mark.parametrize("env", [{"max_deactivations": 1}], indirect=True)
def test_a_hold_is_announced_once_and_decided_on_the_run_that_first_held_it(env: Env) -> None:
    assert env.sync().exit_code == 0
    env.write_export(people=PEOPLE[:2])
    first = env.sync()
    second = env.sync()
    assert (first.exit_code, second.exit_code) == (3, 3)
    assert "plan.held" in first.stderr and "plan.held" not in second.stderr and "plan.still_held" in second.stderr
    [run_id] = re.findall(r"syncd approve (\w+)", first.output)
    assert re.findall(r"syncd approve (\w+)", second.output) == [run_id]
    assert env.cli("reject", run_id).exit_code == 0
    assert all(status == "A" for _, _, status, _ in env.directory()["people"].values())


def test_full_sync_repairs_hand_edits_and_reports_people_unknown_to_hr(env: Env) -> None:
    assert env.sync().exit_code == 0
    hand = hand_client(env)
    orgs = {o["extOrgCode"]: o["organizationCode"] for o in env.sim_admin().directory()["organizations"]}
    hand.update_gov_employee(employee_code(env, "13800000001"), {"employeeName": "改过的名字"})
    hand.move_employee_position(employee_code(env, "13800000004"), orgs["D0003"], orgs["D0005"])
    hand.deactivate_gov_employee(employee_code(env, "13800000002"))
    stranger = hand.create_complex_employee(orgs["D0002"], {"employeeName": "外来人员",
                                                            "govEmpCellPhoneNo": "13900000099", "areaCode": "86"})
    assert env.directory() != expected(PEOPLE, DEPARTMENTS)

    plain = env.sync()
    assert "the directory is up to date" in plain.output  # an incremental sync cannot see hand edits

    full = env.sync("--full")
    assert full.exit_code == 0, full.output
    assert "A000001: changed by hand: name" in full.output
    assert "moved by hand: A000004" in full.output
    assert "deactivated by hand: A000002" in full.output
    assert f"unknown to HR (1): {stranger['employeeCode']}" in full.output
    repaired = env.directory()
    del repaired["people"]["13900000099"]  # reported, not deactivated: safety.unknown_people = "report"
    assert repaired == expected(PEOPLE, DEPARTMENTS)

    before = env.writes()
    assert env.sync("--full").exit_code == 0
    assert env.writes() == before


@pytest.mark.parametrize("env", [{"max_deactivations": 50, "share": 0.05}], indirect=True)  # the defaults
def test_a_snapshot_missing_30_percent_deactivates_nobody_and_exits_3_until_approved(env: Env) -> None:
    departments, people = generate(200, seed=9)
    env.write_export(people=people, departments=departments)
    assert env.sync().exit_code == 0
    in_post = [p for p in people if p["人员状态"] == "在职"]
    kept = in_post[: int(len(in_post) * 0.7)]
    env.write_export(people=kept, departments=departments)
    held = env.sync()
    assert held.exit_code == 3, held.output
    assert "mass_deactivation" in held.output
    assert all(status == "A" for _, _, status, _ in env.directory()["people"].values())
    assert env.sync().exit_code == 3  # still held, until someone decides
    [run_id] = re.findall(r"syncd approve (\w+)", held.output)
    assert env.cli("approve", run_id).exit_code == 0
    assert env.sync().exit_code == 0
    gone = {p["手机号"] for p in in_post} - {p["手机号"] for p in kept}
    statuses = {mobile: status for mobile, (_, _, status, _) in env.directory()["people"].items()}
    assert {m for m, status in statuses.items() if status == "F"} == gone


def test_check_config_reaches_the_source_and_the_directory(env: Env) -> None:
    result = env.cli("check-config")
    assert result.exit_code == 0, result.output
    assert "the unit's root is in the app's scope" in result.output


def test_check_config_names_a_root_outside_the_scope_and_a_wrong_secret(env: Env, monkeypatch: pytest.MonkeyPatch
                                                                        ) -> None:
    monkeypatch.setenv("SYNCD_UNIT__ROOT_ORGANIZATION_CODE", "GO_" + "f" * 32)
    outside = env.cli("check-config")
    assert outside.exit_code == 2 and "unit.root_organization_code" in outside.output
    monkeypatch.setenv("SYNCD_IT_SECRET", "wrong-secret")
    refused = env.cli("check-config")
    assert refused.exit_code == 2 and "target.app_key / target.app_secret" in refused.output
    assert "wrong-secret" not in refused.output


@pytest.mark.parametrize("env", [{"max_deactivations": 1}], indirect=True)
def test_a_hold_hr_has_made_moot_is_superseded_and_cannot_be_approved_later(env: Env) -> None:
    assert env.sync().exit_code == 0
    env.write_export(people=PEOPLE[:2])
    held = env.sync()
    [run_id] = re.findall(r"syncd approve (\w+)", held.output)
    env.write_export()  # HR restores the export: nobody is leaving after all
    assert env.sync().exit_code == 0
    assert env.cli("approve", run_id).exit_code == 2  # nothing left to decide
    env.write_export(people=PEOPLE[:2])
    assert env.sync().exit_code == 3  # the old decision does not wave a new truncation through
    assert all(status == "A" for _, _, status, _ in env.directory()["people"].values())


def test_a_department_renamed_to_a_formula_reaches_nobody_and_its_people_stay_as_they_are(env: Env) -> None:
    assert env.sync().exit_code == 0
    before = env.directory()
    renamed = [dict(d, 部门名称='=HYPERLINK("http://evil.example","财政审计处")') if d["部门编号"] == "D0003" else d
               for d in DEPARTMENTS]
    env.write_export(departments=renamed, people=[dict(p, 职务="处长") for p in PEOPLE])
    result = env.cycle()
    assert {(r.key, r.code) for r in result.snapshot.rejections if r.kind == "department"} == {("D0003", "name.unsafe")}
    after = env.directory()
    # Nobody in 财政审计处 left, nothing there was renamed or changed; the rest of the unit synced.
    assert after["departments"] == before["departments"]
    kept = {k: v for k, v in before["people"].items() if v[1] == "D0003"}
    assert len(kept) == 2 and {k: v for k, v in after["people"].items() if v[1] == "D0003"} == kept
    assert {v[3] for k, v in after["people"].items() if v[2] == "A" and k not in kept} == {"处长"}


def test_people_already_in_the_directory_are_adopted_moved_and_rehired_not_created_twice(env: Env) -> None:
    hand = hand_client(env)
    def by_hand(name: str, mobile: str) -> dict[str, Any]:
        return hand.create_complex_employee(TENANT.root_code, {"employeeName": name, "govEmpCellPhoneNo": mobile,
                                                               "areaCode": "86"})

    moved = by_hand("旧名字", "13800000003")  # in the root; HR has them in 财政审计处
    inactive = by_hand("李华", "13800000002")
    hand.deactivate_gov_employee(inactive["employeeCode"])
    result = env.sync()
    assert result.exit_code == 0, result.output
    assert env.directory() == expected(PEOPLE, DEPARTMENTS)
    assert employee_code(env, "13800000003") == moved["employeeCode"]
    assert employee_code(env, "13800000002") == inactive["employeeCode"]
    assert len(env.sim_admin().directory()["employees"]) == 5


def test_a_unit_prefix_keeps_its_ext_org_codes_apart_from_a_sister_unit(env: Env,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_UNIT__EXT_ORG_CODE_PREFIX", "ZZSJ-")
    assert env.sync().exit_code == 0
    ext_codes = {o["extOrgCode"] for o in env.sim_admin().directory()["organizations"] if o["extOrgCode"]}
    assert ext_codes == {"ZZSJ-D0002", "ZZSJ-D0003", "ZZSJ-D0004", "ZZSJ-D0005"}
    before = env.writes()
    assert env.sync().exit_code == 0 and env.writes() == before

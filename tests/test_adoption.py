"""First contact with a unit whose directory was built by hand: syncd adopts it, never builds a second tree.

Integration tests against the simulator over real HTTP: the hand-built directory is made through the
API like the unit admin's own edits (`connectors.zzd.simulator.handbuilt`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from bench.synthetic import generate
from connectors.zzd.simulator.handbuilt import HandBuilt, build_by_hand
from tests.conftest import DEPARTMENTS, PEOPLE
from tests.sim_env import TENANT, Env, hand_client

CREATES = ("/mozi/organization/createGovOrganization", "/addressBook/employee/createComplexEmployee")


def by_names(data: dict[str, Any]) -> dict[str, Any]:
    """The directory by names, whatever the extOrgCodes: department paths, and people by mobile."""
    orgs = {o["organizationCode"]: o for o in data["organizations"]}

    def path(code: str) -> str:
        names = []
        while code in orgs and code != TENANT.root_code:
            names.append(orgs[code]["organizationName"])
            code = orgs[code]["parentCode"]
        return "/".join(reversed(names))

    active = [o for o in data["organizations"] if o.get("status", "A") == "A" and o["organizationCode"] in orgs]
    people = {}
    for e in data["employees"]:
        main = next((p["organizationCode"] for p in e["positions"] if p["mainJob"]), None)
        people[e["mobile"]] = (e["employeeName"], path(main) if main else None, e["status"])
    return {"departments": sorted(path(o["organizationCode"]) for o in active
                                  if o["organizationCode"] != TENANT.root_code),
            "people": people}


def hr_by_names(people: list[dict[str, str]], departments: list[dict[str, str]]) -> dict[str, Any]:
    """What the directory should hold for this export, by names."""
    rows = {d["部门编号"]: d for d in departments}

    def path(hr_id: str) -> str:
        names = []
        while rows[hr_id]["上级部门编号"]:
            names.append(rows[hr_id]["部门名称"])
            hr_id = rows[hr_id]["上级部门编号"]
        return "/".join(reversed(names))

    return {"departments": sorted(path(d["部门编号"]) for d in departments if d["上级部门编号"]),
            "people": {p["手机号"]: (p["姓名"], path(p["部门编号"]), "A") for p in people if p["人员状态"] == "在职"}}


def no_same_named_siblings(data: dict[str, Any]) -> bool:
    siblings = Counter((o["parentCode"], o["organizationName"]) for o in data["organizations"])
    return all(n == 1 for n in siblings.values())


def build(env: Env, people: list[dict[str, str]] = PEOPLE, departments: list[dict[str, str]] = DEPARTMENTS,
          **options: Any) -> HandBuilt:
    return build_by_hand(hand_client(env), TENANT.root_code, "D0001", departments, people, **options)


def calls(env: Env) -> dict[str, int]:
    return dict(env.sim_admin().counters()["calls"])


def test_a_hand_built_directory_is_adopted_by_a_full_sync_with_nothing_created(env: Env) -> None:
    built = build(env, ext_code_of=lambda row: "HAND-" + row["部门编号"][-2:] if row["排序"] == "1" else "")
    before = env.sim_admin().directory()
    counters_before = calls(env)
    result = env.sync("--full")
    assert result.exit_code == 0, result.output
    assert "zzd.fields_not_cleared" not in result.output  # HR's empty 简称 is not asked to clear anything
    after = env.sim_admin().directory()
    made = {path: calls(env).get(path, 0) - counters_before.get(path, 0) for path in CREATES}
    assert made == {path: 0 for path in CREATES}
    assert len(after["organizations"]) == len(before["organizations"])
    assert sorted(e["employeeCode"] for e in after["employees"]) == sorted(built.employees.values())
    assert by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)
    assert no_same_named_siblings(after)
    # Adopted means linked: the next run has nothing to do.
    writes = env.writes()
    assert env.sync("--full").exit_code == 0 and env.writes() == writes


@pytest.mark.parametrize("env", [{"structure": "hold"}], indirect=True)
def test_the_dry_run_shows_adoptions_and_a_held_adoption_waits_for_approval(env: Env) -> None:
    build(env)
    writes = env.writes()
    dry = env.sync("--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"] == {"dept_adopt": 4, "adopt": 5}
    assert env.writes() == writes
    held = env.sync()
    assert held.exit_code == 3, held.output  # adoptions are structure changes: held; the people wait with them
    run_id = re.search(r"syncd approve (\w+)", held.output)[1]  # type: ignore[index]
    assert env.cli("approve", run_id).exit_code == 0
    assert env.sync().exit_code == 0
    after = env.sim_admin().directory()
    assert by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)
    assert len(after["employees"]) == 5 and no_same_named_siblings(after)


def test_departments_typed_by_their_short_name_are_adopted_and_renamed_to_hrs_name(env: Env) -> None:
    build(env, name_of=lambda row: row["简称"] or row["部门名称"])  # 财政处, 信息中心
    assert env.sync().exit_code == 0
    after = env.sim_admin().directory()
    assert by_names(after) == hr_by_names(PEOPLE, DEPARTMENTS)
    assert len(after["organizations"]) == len(DEPARTMENTS)


def test_an_ambiguous_department_is_neither_adopted_nor_created_and_names_syncd_onboard(env: Env) -> None:
    hand = hand_client(env)
    build(env, departments=[d for d in DEPARTMENTS if d["部门编号"] != "D0002"], people=[])
    hand.create_gov_organization(TENANT.root_code, "办公室")
    hand.create_gov_organization(TENANT.root_code, "综合办公室", gov_short_name="办公室")
    before = len(env.sim_admin().directory()["organizations"])
    result = env.sync()
    assert result.exit_code == 1, result.output
    assert "syncd onboard" in result.output
    after = env.sim_admin().directory()
    assert len(after["organizations"]) == before and no_same_named_siblings(after)
    office = {e["mobile"] for e in after["employees"]}
    assert office == {p["手机号"] for p in PEOPLE if p["部门编号"] != "D0002" and p["人员状态"] == "在职"}


def test_a_whole_unit_is_looked_up_by_mobile_fifty_a_call(env: Env) -> None:
    departments, people = generate(200, seed=3)
    env.write_export(people=people, departments=departments)
    build(env, people=people, departments=departments)
    counters_before = calls(env)
    result = env.sync()
    assert result.exit_code == 0, result.output
    made = {path: calls(env).get(path, 0) - counters_before.get(path, 0)
            for path in (*CREATES, "/mozi/employee/get_by_mobiles")}
    in_post = sum(1 for p in people if p["人员状态"] == "在职")
    assert made == {CREATES[0]: 0, CREATES[1]: 0, "/mozi/employee/get_by_mobiles": -(-in_post // 50)}
    assert by_names(env.sim_admin().directory()) == hr_by_names(people, departments)

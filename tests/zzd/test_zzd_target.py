"""ZzdTarget, the engine's Target, against the simulator over HTTP."""

from __future__ import annotations

import inspect
import json

import pytest
import structlog

from connectors.zzd.simulator import SimAdmin
from connectors.zzd.target import ZzdTarget
from syncd.domain.target import CreatedPerson, DirectoryPerson, Target, TargetError

PROTOCOL_METHODS = [name for name, _ in inspect.getmembers(Target, inspect.isfunction) if not name.startswith("_")]


@pytest.mark.parametrize("method", PROTOCOL_METHODS)
@pytest.mark.parametrize("implementation", [ZzdTarget])
def test_implementation_offers_every_verb_of_the_target_protocol(implementation: type, method: str) -> None:
    expected = list(inspect.signature(getattr(Target, method)).parameters)
    assert list(inspect.signature(getattr(implementation, method)).parameters) == expected


def test_department_is_created_and_found_by_its_hr_id(target: ZzdTarget, admin: SimAdmin, root: str) -> None:
    code = target.create_department({"name": "办公室", "short_name": "办", "order": "2"}, root, "D0002")
    org = admin.organization(code)
    assert (org["organizationName"], org["govShortName"], org["displayOrder"], org["extOrgCode"], org["parentCode"]) \
        == ("办公室", "办", 2, "D0002", root)
    assert target.find_department("D0002") == code
    assert target.find_department("D9999") is None


def test_department_update_writes_only_the_keys_given(target: ZzdTarget, admin: SimAdmin, root: str) -> None:
    code = target.create_department({"name": "办公室", "short_name": "办", "order": "2"}, root, "D0002")
    target.update_department(code, {"order": "5"})
    org = admin.organization(code)
    assert (org["organizationName"], org["govShortName"], org["displayOrder"]) == ("办公室", "办", 5)


def test_department_field_cleared_in_hr_is_logged_by_name_only(target: ZzdTarget, admin: SimAdmin, root: str) -> None:
    code = target.create_department({"name": "办公室", "short_name": "办", "order": ""}, root, "D0002")
    admin.reset_counters()
    with structlog.testing.capture_logs() as logs:
        target.update_department(code, {"short_name": ""})
    assert admin.counters()["writes"] == 0
    assert {"event": "zzd.fields_not_cleared", "organization_code": code, "fields": ["short_name"],
            "log_level": "warning"} in logs


def test_department_move_and_delete(target: ZzdTarget, admin: SimAdmin, root: str) -> None:
    a = target.create_department({"name": "一处", "short_name": "", "order": ""}, root, "D1")
    b = target.create_department({"name": "二处", "short_name": "", "order": ""}, root, "D2")
    target.move_department(b, a)
    assert admin.organization(b)["parentCode"] == a
    target.delete_department(b)
    assert target.find_department("D2") is None


def test_person_is_created_with_every_field_mapped(
    target: ZzdTarget, admin: SimAdmin, root: str, person_fields,
) -> None:
    created = target.create_person(person_fields(1, leader_duties="分管办公室"), root)
    assert isinstance(created, CreatedPerson)
    assert isinstance(created.account_id, int)
    stored = admin.employee(created.employee_code)
    assert {k: stored[k] for k in ("employeeName", "mobile", "govEmpGenderCode", "govEmpBudgetedPostCode",
                                   "govEmpJobLevelCode", "govEmpPoliticalStatusCode")} == {
        "employeeName": "测试员1", "mobile": "13800000001", "govEmpGenderCode": "1",
        "govEmpBudgetedPostCode": "行政编制", "govEmpJobLevelCode": "一级主任科员", "govEmpPoliticalStatusCode": "13",
    }
    (position,) = stored["positions"]
    assert {k: position[k] for k in ("govEmpPosJob", "govEmpPosEmployeeRoleCode", "posJobRankCode",
                                     "govEmpPosPhoneNo", "orderInOrganization", "mainJob")} == {
        "govEmpPosJob": "科员", "govEmpPosEmployeeRoleCode": "普通人员", "posJobRankCode": "科员级",
        "govEmpPosPhoneNo": "0371-00000000", "orderInOrganization": "1", "mainJob": True,
    }
    assert json.loads(position["positionExtPropertiesStr"]) == {"leaderDuties": "分管办公室"}


def test_person_without_mobile_is_refused_without_a_call(
    target: ZzdTarget, admin: SimAdmin, root: str, person_fields,
) -> None:
    admin.reset_counters()
    with pytest.raises(TargetError) as caught:
        target.create_person(person_fields(1, mobile=""), root)
    assert caught.value.category == "invalid"
    assert admin.counters()["calls"] == {}


def test_person_with_a_taken_mobile_is_a_conflict(target: ZzdTarget, root: str, person_fields) -> None:
    target.create_person(person_fields(1), root)
    with pytest.raises(TargetError) as caught:
        target.create_person(person_fields(2, mobile="13800000001"), root)
    assert caught.value.category == "conflict"


def test_person_is_found_by_mobile(target: ZzdTarget, root: str, person_fields) -> None:
    created = target.create_person(person_fields(1), root)
    assert target.find_person_by_mobile("13800000001") == DirectoryPerson(
        created.employee_code, created.account_id, "A",
    )
    assert target.find_person_by_mobile("13900000009") is None


def test_update_person_sends_only_the_calls_its_fields_need(
    target: ZzdTarget, admin: SimAdmin, root: str, person_fields,
) -> None:
    code = target.create_person(person_fields(1, leader_duties="分管财务"), root).employee_code
    admin.reset_counters()
    target.update_person(code, root, {"rank": "二级主任科员"})
    assert admin.counters()["calls"] == {"/mozi/employee/updateGovEmployee": 1}
    admin.reset_counters()
    target.update_person(code, root, {"post": "副科长", "leader_duties": ""})
    assert admin.counters()["calls"] == {"/mozi/employee/updateGovEmployeePosition": 1}
    stored = admin.employee(code)
    assert stored["govEmpJobLevelCode"] == "二级主任科员"
    assert stored["positions"][0]["govEmpPosJob"] == "副科长"
    assert json.loads(stored["positions"][0]["positionExtPropertiesStr"]) == {"leaderDuties": ""}


def test_move_deactivate_and_rehire_person(target: ZzdTarget, admin: SimAdmin, root: str, person_fields) -> None:
    office = target.create_department({"name": "办公室", "short_name": "", "order": ""}, root, "D2")
    code = target.create_person(person_fields(1), root).employee_code
    target.move_person(code, root, office)
    assert [p["organizationCode"] for p in admin.employee(code)["positions"]] == [office]
    target.deactivate_person(code)
    assert admin.employee(code)["status"] == "F"
    target.rehire_person(code, root, person_fields(1, rank="三级主任科员"))
    stored = admin.employee(code)
    assert (stored["status"], stored["govEmpJobLevelCode"]) == ("A", "三级主任科员")
    assert [p["organizationCode"] for p in stored["positions"]] == [root]


def test_remove_position_keeps_the_other(target: ZzdTarget, admin: SimAdmin, root: str, person_fields) -> None:
    office = target.create_department({"name": "办公室", "short_name": "", "order": ""}, root, "D2")
    code = target.create_person(person_fields(1), root).employee_code
    target.client.create_gov_employee_position(code, office)
    assert target.person_positions(code) == [root, office]
    target.remove_position(code, root)
    assert target.person_positions(code) == [office]
    assert [(p["organizationCode"], p["mainJob"]) for p in admin.employee(code)["positions"]] == [(office, True)]


def test_account_is_frozen_and_unfrozen(target: ZzdTarget, admin: SimAdmin, root: str, person_fields) -> None:
    created = target.create_person(person_fields(1), root)
    assert created.account_id is not None
    target.set_account_frozen(created.account_id, True)
    assert admin.directory()["accounts"][0]["status"] == "F"
    target.set_account_frozen(created.account_id, False)
    assert admin.directory()["accounts"][0]["status"] == "A"


def test_account_ids_are_found_by_employee_code_and_unknown_codes_are_left_out(
        target: ZzdTarget, root: str, person_fields) -> None:
    first, second = target.create_person(person_fields(1), root), target.create_person(person_fields(2), root)
    found = target.account_ids([second.employee_code, first.employee_code, "GE_" + "0" * 32])
    assert found == {first.employee_code: first.account_id, second.employee_code: second.account_id}


def test_write_outside_the_scope_reaches_the_engine_as_a_scope_target_error(
    target: ZzdTarget, other_unit: str,
) -> None:
    with pytest.raises(TargetError) as caught:
        target.create_department({"name": "办公室", "short_name": "", "order": ""}, other_unit, "D2")
    assert caught.value.category == "scope"
    assert not caught.value.stops_run


def test_read_people_reports_the_people_of_the_organizations_in_hr_field_names(
    target: ZzdTarget, root: str, person_fields,
) -> None:
    office = target.create_department({"name": "办公室", "short_name": "", "order": ""}, root, "D2")
    head = target.create_person(person_fields(1, post="科长", order="2"), office).employee_code
    elsewhere = target.create_person(person_fields(2), root).employee_code
    target.client.create_gov_employee_position(elsewhere, office)
    entries = {e.employee_code: e for e in target.read_people([office])}
    assert set(entries) == {head, elsewhere}
    assert (entries[head].status, entries[head].organization_code) == ("A", office)
    assert entries[head].fields == {
        "name": "测试员1", "gender": "1", "establishment": "行政编制", "rank": "一级主任科员",
        "political_status": "13", "post": "科长", "order": "2",
    }
    assert entries[elsewhere].organization_code == root

"""Every call of the client against the simulator over real HTTP: the contract of zzd-api.md, both sides."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from connectors.zzd.client import ContactsClient
from connectors.zzd.errors import (
    AuthError,
    CodeTable,
    ConflictError,
    DuplicateMessageError,
    InvalidError,
    NotFoundError,
    ScopeError,
    StateError,
    unwrap,
)
from connectors.zzd.signing import param_pairs, signed_headers
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer

GO = re.compile(r"GO_[0-9a-f]{32}")
GE = re.compile(r"GE_[0-9a-f]{32}")


def new_person(client: ContactsClient, org: str, n: int = 1, **fields: str) -> str:
    """Create synthetic person `n` in `org`; return the employeeCode."""
    params = {"employeeName": f"测试员{n}", "govEmpCellPhoneNo": f"138{n:08d}", "areaCode": "86", **fields}
    return str(client.create_complex_employee(org, params)["employeeCode"])


# -- the gateway -------------------------------------------------------------------------------

def raw_post(server: SimulatorServer, tenant: SimTenant, path: str, params: dict[str, str],
             now: datetime | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """A hand-signed request, for what the client would never send."""
    pairs = param_pairs({"tenantId": str(tenant.tenant_id), **params})
    sent = headers or signed_headers(tenant.app_key, tenant.app_secret, "POST", path, pairs, now=now)
    return requests.post(server.base_url + path, data=pairs, headers=sent, timeout=5)


def test_wrong_secret_is_refused_as_auth(connect: Callable[..., ContactsClient]) -> None:
    client = connect(secret=lambda: "not-the-secret")
    with pytest.raises(AuthError) as caught:
        client.scopes()
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.stops_run


def test_unknown_api_key_is_refused_as_auth(connect: Callable[..., ContactsClient]) -> None:
    client = connect(app_key="other-app")
    with pytest.raises(AuthError) as caught:
        client.scopes()
    assert caught.value.code == "InvalidApiKey"


def test_timestamp_outside_fifteen_minutes_is_refused(server: SimulatorServer, tenant: SimTenant) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=16)
    with pytest.raises(AuthError) as caught:
        unwrap("/auth/scopesV2", lambda: raw_post(server, tenant, "/auth/scopesV2", {}, now=stale), CodeTable())
    assert caught.value.code == "InvalidTimestamp"


def test_replayed_nonce_is_refused(server: SimulatorServer, tenant: SimTenant) -> None:
    path = "/auth/scopesV2"
    headers = signed_headers(tenant.app_key, tenant.app_secret, "POST", path,
                             param_pairs({"tenantId": str(tenant.tenant_id)}))
    assert raw_post(server, tenant, path, {}, headers=headers).json()["success"] is True
    with pytest.raises(AuthError) as caught:
        unwrap(path, lambda: raw_post(server, tenant, path, {}, headers=headers), CodeTable())
    assert caught.value.code == "NonceReused"


def test_signature_error_has_the_platform_shape(server: SimulatorServer, tenant: SimTenant) -> None:
    path = "/auth/scopesV2"
    headers = signed_headers(tenant.app_key, "wrong", "POST", path, [])
    body = raw_post(server, tenant, path, {}, headers=headers).json()
    assert body["success"] is False
    assert (body["Code"], body["bizErrorCode"]) == ("SignatureDoesNotMatch", "OPF-B001-05-16-0009")
    assert body["_RequestId"]


def test_unknown_api_is_invalid(client: ContactsClient) -> None:
    with pytest.raises(InvalidError) as caught:
        client.request("/mozi/nothing/here", {})
    assert caught.value.code == "ApiNotFound"


def test_wrong_tenant_is_invalid(connect: Callable[..., ContactsClient]) -> None:
    client = connect(tenant_id=1)
    with pytest.raises(InvalidError):
        client.scopes()


def test_admin_endpoints_need_the_admin_token(server: SimulatorServer) -> None:
    for method, path in (("GET", "/_sim/directory"), ("GET", "/_sim/counters"), ("POST", "/_sim/counters/reset"),
                         ("POST", "/_sim/faults")):
        response = requests.request(method, server.base_url + path, headers={"X-Sim-Admin-Token": "guess"},
                                    timeout=5)
        assert response.status_code == 403, path


def test_counters_count_calls_reads_and_writes_and_reset(
    client: ContactsClient, admin: SimAdmin, root: str,
) -> None:
    client.scopes()
    client.scopes()
    client.create_gov_organization(root, "办公室")
    counters = admin.counters()
    assert counters == {"calls": {"/auth/scopesV2": 2, "/mozi/organization/createGovOrganization": 1},
                        "reads": 2, "writes": 1}
    admin.reset_counters()
    assert admin.counters() == {"calls": {}, "reads": 0, "writes": 0}


def test_dry_run_sends_no_writes(
    connect: Callable[..., ContactsClient], client: ContactsClient, admin: SimAdmin, root: str,
) -> None:
    office = client.create_gov_organization(root, "办公室")
    person = new_person(client, office)
    before = admin.directory()
    admin.reset_counters()
    dry = connect(dry_run=True)
    dry.create_gov_organization(root, "财务科")
    dry.update_gov_employee(person, {"govEmpGenderCode": "2"})
    dry.deactivate_gov_employee(person)
    dry.delete_gov_organization(office)
    assert dry.scopes() == [root]
    assert admin.counters() == {"calls": {"/auth/scopesV2": 1}, "reads": 1, "writes": 0}
    assert admin.directory() == before
    assert len(dry.dry_run_writes) == 4


# -- organisations ------------------------------------------------------------------------------

def test_scope_is_the_root(client: ContactsClient, root: str) -> None:
    assert client.scopes() == [root]


def test_root_organization_exists_at_start(client: ContactsClient, root: str) -> None:
    found = client.get_root_organization()
    assert (found["organizationCode"], found["organizationName"]) == (root, "测试审计局")


def test_created_organization_has_a_platform_code_and_the_fields_sent(
    client: ContactsClient, root: str,
) -> None:
    code = client.create_gov_organization(root, "办公室", ext_org_code="D0002", display_order=3, gov_short_name="办")
    assert GO.fullmatch(code)
    (org,) = client.list_organizations_by_codes([code, "GO_" + "0" * 32])
    assert org == {"organizationCode": code, "organizationName": "办公室", "parentCode": root, "displayOrder": 3,
                   "extOrgCode": "D0002", "govShortName": "办", "status": "A"}
    assert client.get_org_code_by_ext_org_code("D0002") == code


def test_unknown_ext_org_code_is_not_found(client: ContactsClient) -> None:
    with pytest.raises(NotFoundError):
        client.get_org_code_by_ext_org_code("D-none")


def test_writing_outside_the_scope_is_a_scope_error(client: ContactsClient, other_unit: str) -> None:
    with pytest.raises(ScopeError) as caught:
        client.create_gov_organization(other_unit, "办公室")
    assert caught.value.code == "300037"
    with pytest.raises(ScopeError):
        client.update_gov_organization(other_unit, {"organizationName": "改名"})
    with pytest.raises(ScopeError):
        client.create_complex_employee(other_unit, {"employeeName": "测试员", "govEmpCellPhoneNo": "13800000001"})


def test_scope_error_carries_the_platform_biz_code(
    server: SimulatorServer, tenant: SimTenant, other_unit: str,
) -> None:
    body = raw_post(server, tenant, "/mozi/organization/createGovOrganization",
                    {"parentCode": other_unit, "organizationName": "办公室", "creator": "syncd"}).json()
    assert body["success"] is True
    assert body["bizErrorCode"] == "MFH-B003-02-16-0037"
    assert (body["content"]["success"], body["content"]["responseCode"]) == (False, "300037")


def test_same_name_under_one_parent_is_a_conflict_but_not_under_another(
    client: ContactsClient, root: str,
) -> None:
    first = client.create_gov_organization(root, "综合科")
    with pytest.raises(ConflictError) as caught:
        client.create_gov_organization(root, "综合科")
    assert caught.value.code == "SIM-ORG-NAME-DUP"
    assert GO.fullmatch(client.create_gov_organization(first, "综合科"))


def test_ext_org_code_is_unique(client: ContactsClient, root: str) -> None:
    client.create_gov_organization(root, "办公室", ext_org_code="D7")
    with pytest.raises(ConflictError) as caught:
        client.create_gov_organization(root, "财务科", ext_org_code="D7")
    assert caught.value.code == "SIM-EXT-CODE-EXISTS"


def test_unknown_parent_is_not_found(client: ContactsClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.create_gov_organization("GO_" + "0" * 32, "办公室")
    assert caught.value.code == "SIM-PARENT-NOT-FOUND"


def test_missing_required_parameter_is_invalid(client: ContactsClient, root: str) -> None:
    with pytest.raises(InvalidError) as caught:
        client.create_gov_organization(root, "")
    assert caught.value.code == "SIM-PARAM-MISSING"


def test_update_changes_only_the_fields_sent(client: ContactsClient, admin: SimAdmin, root: str) -> None:
    code = client.create_gov_organization(root, "办公室", display_order=1, gov_short_name="办")
    client.update_gov_organization(code, {"organizationName": "综合办公室"})
    org = admin.organization(code)
    assert (org["organizationName"], org["displayOrder"], org["govShortName"]) == ("综合办公室", 1, "办")


def test_renaming_to_a_sibling_name_is_a_conflict(client: ContactsClient, root: str) -> None:
    client.create_gov_organization(root, "办公室")
    other = client.create_gov_organization(root, "财务科")
    with pytest.raises(ConflictError):
        client.update_gov_organization(other, {"organizationName": "办公室"})


def test_move_changes_the_parent_but_never_below_itself(
    client: ContactsClient, admin: SimAdmin, root: str, other_unit: str,
) -> None:
    a = client.create_gov_organization(root, "一处")
    b = client.create_gov_organization(root, "二处")
    client.move_gov_organization(b, a)
    assert admin.organization(b)["parentCode"] == a
    with pytest.raises(InvalidError):
        client.move_gov_organization(a, b)
    with pytest.raises(ScopeError):
        client.move_gov_organization(b, other_unit)


def test_delete_only_an_empty_organization(client: ContactsClient, root: str) -> None:
    parent = client.create_gov_organization(root, "一处")
    child = client.create_gov_organization(parent, "一科")
    with pytest.raises(StateError) as caught:
        client.delete_gov_organization(parent)
    assert caught.value.code == "SIM-ORG-NOT-EMPTY"
    person = new_person(client, child)
    with pytest.raises(StateError):
        client.delete_gov_organization(child)
    client.deactivate_gov_employee(person)
    client.delete_gov_organization(child)
    client.delete_gov_organization(parent)
    assert client.list_organizations_by_codes([parent, child]) == []


def test_sub_organizations_are_read_across_pages(client: ContactsClient, admin: SimAdmin, root: str) -> None:
    created = [client.create_gov_organization(root, f"科室{i:03d}", display_order=i) for i in range(120)]
    admin.reset_counters()
    assert client.all_sub_organization_codes(root) == created
    assert admin.counters()["calls"] == {"/mozi/organization/pageSubOrganizationCodes": 2}
    page = client.page_sub_organization_codes(root, page_no=2)
    assert (len(page.items), page.page_no, page.total_size) == (20, 2, 120)
    assert len(client.organizations_in_batches(created)) == 120


def test_page_size_over_100_is_invalid(client: ContactsClient, root: str) -> None:
    with pytest.raises(InvalidError) as caught:
        client.page_sub_organization_codes(root, page_size=101)
    assert caught.value.code == "SIM-PAGE-SIZE"


def test_more_than_100_codes_or_50_mobiles_is_invalid(client: ContactsClient) -> None:
    codes = [f"GO_{i:032x}" for i in range(101)]
    with pytest.raises(InvalidError) as caught:
        client.list_organizations_by_codes(codes)
    assert caught.value.code == "SIM-LIST-TOO-LONG"
    with pytest.raises(InvalidError):
        client.list_employees_by_codes(codes)
    with pytest.raises(InvalidError):
        client.get_by_mobiles([f"138{i:08d}" for i in range(51)])


def test_organization_members_are_read_across_pages(client: ContactsClient, root: str) -> None:
    office = client.create_gov_organization(root, "办公室")
    people = [new_person(client, office, n, govEmpPosJob="科员") for n in range(1, 106)]
    members = client.all_organization_employee_positions(office)
    assert [m["employeeCode"] for m in members] == people
    assert members[0]["govEmployeePositions"] == [
        {"organizationCode": office, "mainJob": True, "govEmpPosJob": "科员", "orderInOrganization": ""},
    ]


# -- employees ----------------------------------------------------------------------------------

def test_created_person_has_codes_a_main_position_and_an_account(
    client: ContactsClient, admin: SimAdmin, root: str,
) -> None:
    office = client.create_gov_organization(root, "办公室")
    created = client.create_complex_employee(office, {
        "employeeName": "测试员", "govEmpCellPhoneNo": "13800000001", "areaCode": "86", "govEmpGenderCode": "2",
        "govEmpPosJob": "科员", "positionExtPropertiesStr": '{"leaderDuties":"无"}',
    })
    assert GE.fullmatch(created["employeeCode"])
    assert isinstance(created["accountId"], int)
    stored = admin.employee(created["employeeCode"])
    assert (stored["mobile"], stored["status"], stored["govEmpGenderCode"]) == ("13800000001", "A", "2")
    (position,) = client.list_employee_positions_by_employee_code(created["employeeCode"])
    assert (position["organizationCode"], position["mainJob"], position["govEmpPosJob"]) == (office, True, "科员")
    assert position["positionExtPropertiesStr"] == '{"leaderDuties":"无"}'
    assert client.list_employee_account_ids([created["employeeCode"]]) == [{
        "employeeCode": created["employeeCode"], "accountId": created["accountId"],
        "accountCode": f"acc{created['accountId']}", "accountNamespace": "local",
    }]


def test_a_mobile_belongs_to_one_person(client: ContactsClient, root: str) -> None:
    office = client.create_gov_organization(root, "办公室")
    new_person(client, office, 1)
    with pytest.raises(ConflictError) as caught:
        client.create_complex_employee(office, {"employeeName": "测试员乙", "govEmpCellPhoneNo": "13800000001"})
    assert caught.value.code == "SIM-MOBILE-EXISTS"
    other = new_person(client, office, 2)
    with pytest.raises(ConflictError):
        client.update_gov_employee(other, {"govEmpCellPhoneNo": "13800000001"})


def test_person_without_mobile_cannot_be_created(client: ContactsClient, root: str) -> None:
    with pytest.raises(InvalidError) as caught:
        client.create_complex_employee(root, {"employeeName": "测试员"})
    assert caught.value.code == "SIM-PARAM-MISSING"


def test_people_are_found_by_mobile_and_reads_never_return_mobiles(client: ContactsClient, root: str) -> None:
    code = new_person(client, root, 1)
    (found,) = client.get_by_mobiles(["13800000001", "13900000000"])
    assert (found["employeeCode"], found["mobile"], found["status"]) == (code, "13800000001", "A")
    assert isinstance(found["accountId"], int)
    (person,) = client.list_employees_by_codes([code])
    assert person["employeeName"] == "测试员1"
    assert "13800000001" not in json.dumps(person)
    assert len(client.mobiles_in_batches([f"138{i:08d}" for i in range(60)])) == 1


def test_unknown_employee_is_not_found(client: ContactsClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.list_employee_positions_by_employee_code("GE_" + "0" * 32)
    assert caught.value.code == "SIM-EMP-NOT-FOUND"


def test_update_person_and_position_change_only_the_fields_sent(
    client: ContactsClient, admin: SimAdmin, root: str,
) -> None:
    code = new_person(client, root, 1, govEmpGenderCode="1", govEmpPosJob="科员", govEmpPosPhoneNo="0371-1")
    client.update_gov_employee(code, {"govEmpJobLevelCode": "二级主任科员"})
    client.update_gov_employee_position(code, root, {"govEmpPosJob": "副科长"})
    stored = admin.employee(code)
    assert (stored["govEmpGenderCode"], stored["govEmpJobLevelCode"]) == ("1", "二级主任科员")
    assert (stored["positions"][0]["govEmpPosJob"], stored["positions"][0]["govEmpPosPhoneNo"]) == ("副科长", "0371-1")


def test_moving_a_position_keeps_it_main(client: ContactsClient, root: str) -> None:
    a = client.create_gov_organization(root, "一处")
    b = client.create_gov_organization(root, "二处")
    code = new_person(client, a)
    client.move_employee_position(code, a, b)
    (position,) = client.list_employee_positions_by_employee_code(code)
    assert (position["organizationCode"], position["mainJob"]) == (b, True)
    with pytest.raises(NotFoundError):
        client.move_employee_position(code, a, b)


def test_positions_keep_exactly_one_main_job(client: ContactsClient, root: str) -> None:
    a = client.create_gov_organization(root, "一处")
    b = client.create_gov_organization(root, "二处")
    code = new_person(client, a)
    client.create_gov_employee_position(code, b, {"govEmpPosJob": "兼职"})
    positions = {p["organizationCode"]: p["mainJob"] for p in client.list_employee_positions_by_employee_code(code)}
    assert positions == {a: True, b: False}
    with pytest.raises(ConflictError):
        client.create_gov_employee_position(code, b)
    client.delete_gov_employee_position(code, a)
    positions = {p["organizationCode"]: p["mainJob"] for p in client.list_employee_positions_by_employee_code(code)}
    assert positions == {b: True}
    with pytest.raises(StateError):
        client.delete_gov_employee_position(code, b)


def test_deactivate_and_rehire_toggle_status_and_refuse_repeats(
    client: ContactsClient, admin: SimAdmin, root: str,
) -> None:
    office = client.create_gov_organization(root, "办公室")
    code = new_person(client, office)
    client.deactivate_gov_employee(code)
    assert admin.employee(code)["status"] == "F"
    with pytest.raises(StateError) as caught:
        client.deactivate_gov_employee(code)
    assert caught.value.code == "SIM-EMP-INACTIVE"
    client.rehired_gov_employee(code, office, {"govEmpPosJob": "科员"})
    assert admin.employee(code)["status"] == "A"
    assert client.list_employee_positions_by_employee_code(code)[0]["mainJob"] is True
    with pytest.raises(StateError) as caught:
        client.rehired_gov_employee(code, office)
    assert caught.value.code == "SIM-EMP-ACTIVE"


def test_account_can_be_frozen_and_unfrozen(client: ContactsClient, admin: SimAdmin, root: str) -> None:
    created = client.create_complex_employee(root, {"employeeName": "测试员", "govEmpCellPhoneNo": "13800000001"})
    client.update_gov_account_status(created["accountId"], "F")
    assert admin.directory()["accounts"] == [
        {"accountId": created["accountId"], "employeeCode": created["employeeCode"], "status": "F"},
    ]
    client.update_gov_account_status(created["accountId"], "A")
    assert admin.directory()["accounts"][0]["status"] == "A"
    with pytest.raises(NotFoundError):
        client.update_gov_account_status(1, "F")


# -- notifications ------------------------------------------------------------------------------

def test_notifications_are_kept_and_deduplicated_by_biz_msg_id(
    client: ContactsClient, admin: SimAdmin,
) -> None:
    msg = {"msgtype": "text", "text": {"content": "同步失败"}}
    msg_id = client.work_notification("run-1", msg, receiver_ids=[100001])
    assert msg_id
    with pytest.raises(DuplicateMessageError):
        client.work_notification("run-1", msg, receiver_ids=[100001])
    (kept,) = admin.directory()["notifications"]
    assert (kept["bizMsgId"], kept["msgId"], kept["receiverIds"]) == ("run-1", msg_id, ["100001"])
    assert json.loads(kept["msg"]) == msg


def test_notification_to_an_organization_outside_the_scope_is_refused(
    client: ContactsClient, other_unit: str,
) -> None:
    with pytest.raises(ScopeError):
        client.work_notification("run-2", {"msgtype": "text", "text": {"content": "x"}},
                                 organization_codes=[other_unit])


# -- persistence --------------------------------------------------------------------------------

def test_state_file_survives_a_restart(tmp_path: Path, tenant: SimTenant, root: str) -> None:
    state = tmp_path / "sim.json"
    durable = dataclasses.replace(tenant, state_file=state)
    with SimulatorServer(durable) as first:
        client = ContactsClient(first.base_url, tenant.app_key, lambda: tenant.app_secret, tenant.tenant_id, "s")
        office = client.create_gov_organization(root, "办公室", ext_org_code="D2")
        code = new_person(client, office)
    assert [p.name for p in tmp_path.iterdir()] == ["sim.json"]
    with SimulatorServer(durable) as second:
        client = ContactsClient(second.base_url, tenant.app_key, lambda: tenant.app_secret, tenant.tenant_id, "s")
        assert client.get_org_code_by_ext_org_code("D2") == office
        assert client.get_by_mobiles(["13800000001"])[0]["employeeCode"] == code
        assert client.create_complex_employee(office, {"employeeName": "测试员2", "govEmpCellPhoneNo": "13800000002"})

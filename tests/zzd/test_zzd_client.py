"""ContactsClient against `responses`: the exact requests it sends and how it translates answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
import structlog

from connectors.zzd.client import ContactsClient, RetryPolicy
from connectors.zzd.errors import (
    AuthError,
    Category,
    ConflictError,
    DuplicateMessageError,
    InvalidError,
    NotFoundError,
    ScopeError,
    StateError,
    TransientError,
    ZzdError,
)
from connectors.zzd.signing import signature, string_to_sign

BASE = "https://zzd.test"
SECRET = "unit-secret"


def ok(data: Any, **paging: int) -> dict[str, Any]:
    """A successful two-layer envelope."""
    return {"success": True, "_RequestId": "r", "bizErrorCode": "0",
            "content": {"success": True, "responseCode": "0", "responseMessage": "OK", "requestId": "r",
                        "data": data, **paging}}


def business_error(code: str, message: str = "refused") -> dict[str, Any]:
    """A business refusal: outer success, inner failure."""
    return {"success": True, "_RequestId": "r", "bizErrorCode": code,
            "content": {"success": False, "responseCode": code, "responseMessage": message, "requestId": "r"}}


def gateway_error(code: str, biz: str | None = None) -> dict[str, Any]:
    """A gateway refusal: outer failure."""
    return {"success": False, "Code": code, "Message": "denied", "_RequestId": "r", "bizErrorCode": biz or code}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_client(**kwargs: Any) -> ContactsClient:
    # One attempt: these tests are about single requests; retries have their own tests.
    options: dict[str, Any] = {"timeout": 3.0, "retry": RetryPolicy.instant(attempts=1)}
    options.update(kwargs)
    return ContactsClient(BASE, "unit-key", lambda: SECRET, 196729, "syncd", **options)


def form(call: Any) -> list[tuple[str, str]]:
    """The decoded form body of a recorded call, in wire order."""
    return parse_qsl(call.request.body)


def assert_signed(call: Any, path: str, secret: str = SECRET) -> None:
    """The recorded call carries valid gateway headers for its own body."""
    headers = call.request.headers
    assert headers["apiKey"] == "unit-key"
    assert headers["X-Hmac-Auth-Version"] == "1.0"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    text = string_to_sign("POST", headers["X-Hmac-Auth-Timestamp"], headers["X-Hmac-Auth-Nonce"], path, form(call))
    assert headers["X-Hmac-Auth-Signature"] == signature(secret, text)


# -- exact requests ------------------------------------------------------------------------------

def test_list_call_sends_codes_as_repeated_keys_with_tenant_signed(rsps: responses.RequestsMock) -> None:
    path = "/mozi/employee/listEmployeeAccountIds"
    rsps.post(BASE + path, json=ok([{"employeeCode": "GE_a", "accountId": 7}]))
    result = make_client().list_employee_account_ids(["GE_b", "GE_a"])
    assert result == [{"employeeCode": "GE_a", "accountId": 7}]
    (call,) = rsps.calls
    assert form(call) == [("tenantId", "196729"), ("employeeCodes", "GE_b"), ("employeeCodes", "GE_a")]
    assert_signed(call, path)
    assert call.request.req_kwargs["timeout"] == 3.0


def test_get_by_mobiles_sends_mobiles_comma_joined(rsps: responses.RequestsMock) -> None:
    path = "/mozi/employee/get_by_mobiles"
    rsps.post(BASE + path, json=ok([]))
    make_client().get_by_mobiles(["13800000001", "13800000002"])
    (call,) = rsps.calls
    assert form(call) == [("tenantId", "196729"), ("mobiles", "13800000001,13800000002"), ("areaCode", "86"),
                          ("namespace", "local")]
    assert_signed(call, path)


def test_create_organization_carries_creator_and_utf8_body(rsps: responses.RequestsMock) -> None:
    path = "/mozi/organization/createGovOrganization"
    rsps.post(BASE + path, json=ok({"organizationCode": "GO_new"}))
    code = make_client().create_gov_organization("GO_root", "办公室", ext_org_code="D0002", display_order=3)
    assert code == "GO_new"
    (call,) = rsps.calls
    assert form(call) == [("tenantId", "196729"), ("parentCode", "GO_root"), ("organizationName", "办公室"),
                          ("extOrgCode", "D0002"), ("displayOrder", "3"), ("creator", "syncd")]
    assert "organizationName=%E5%8A%9E%E5%85%AC%E5%AE%A4" in call.request.body
    assert_signed(call, path)


def test_write_carries_operator_and_leaves_empty_fields_out(rsps: responses.RequestsMock) -> None:
    path = "/mozi/employee/updateGovEmployee"
    rsps.post(BASE + path, json=ok(True))
    make_client().update_gov_employee("GE_a", {"govEmpGenderCode": "2", "govEmpJobLevelCode": ""})
    (call,) = rsps.calls
    assert form(call) == [("tenantId", "196729"), ("employeeCode", "GE_a"), ("govEmpGenderCode", "2"),
                          ("operator", "syncd")]
    assert_signed(call, path)


def test_work_notification_joins_receivers_and_accepts_a_bare_msg_id(rsps: responses.RequestsMock) -> None:
    path = "/message/workNotification"
    rsps.post(BASE + path, json=ok("m-1"))
    msg_id = make_client().work_notification("biz-1", {"msgtype": "text", "text": {"content": "通知"}},
                                              receiver_ids=[1001, 1002])
    assert msg_id == "m-1"
    (call,) = rsps.calls
    assert dict(form(call)) == {
        "tenantId": "196729", "bizMsgId": "biz-1", "msg": '{"msgtype":"text","text":{"content":"通知"}}',
        "receiverIds": "1001,1002", "operator": "syncd",
    }


def test_secret_is_read_for_every_request(rsps: responses.RequestsMock) -> None:
    path = "/auth/scopesV2"
    rsps.post(BASE + path, json=ok({"deptVisibleScopes": ["GO_root"]}))
    secrets = iter(["old-secret", "new-secret"])
    client = ContactsClient(BASE, "unit-key", lambda: next(secrets), 196729, "syncd", retry=RetryPolicy.instant())
    client.scopes()
    client.scopes()
    assert_signed(rsps.calls[0], path, "old-secret")
    assert_signed(rsps.calls[1], path, "new-secret")


def test_fields_a_call_does_not_accept_are_refused_before_sending(rsps: responses.RequestsMock) -> None:
    with pytest.raises(ValueError, match="govEmpPosJob"):
        make_client().update_gov_employee("GE_a", {"govEmpPosJob": "科长"})
    assert len(rsps.calls) == 0


# -- paging and batches --------------------------------------------------------------------------

def test_all_sub_organization_codes_reads_every_page(rsps: responses.RequestsMock) -> None:
    path = "/mozi/organization/pageSubOrganizationCodes"
    codes = [f"GO_{i:03d}" for i in range(230)]
    for page_no in (1, 2, 3):
        chunk = codes[(page_no - 1) * 100:page_no * 100]
        rsps.post(BASE + path, json=ok(chunk, currentPage=page_no, pageSize=100, totalSize=230),
                  match=[responses.matchers.urlencoded_params_matcher(
                      {"tenantId": "196729", "organizationCode": "GO_root", "status": "A", "pageNo": str(page_no),
                       "pageSize": "100", "returnTotalSize": "true"})])
    assert make_client().all_sub_organization_codes("GO_root") == codes
    assert len(rsps.calls) == 3


def test_paging_stops_at_total_size_when_the_last_page_is_full(rsps: responses.RequestsMock) -> None:
    path = "/mozi/organization/pageOrganizationEmployeePositions"
    rsps.post(BASE + path, json=ok([{"employeeCode": f"GE_{i}"} for i in range(100)], totalSize=100))
    assert len(make_client().all_organization_employee_positions("GO_root")) == 100
    assert len(rsps.calls) == 1


def test_batches_split_codes_at_100_and_mobiles_at_50(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/mozi/employee/listEmployeesByCodes", json=ok([]))
    rsps.post(BASE + "/mozi/employee/get_by_mobiles", json=ok([]))
    client = make_client()
    client.employees_in_batches([f"GE_{i}" for i in range(250)])
    client.mobiles_in_batches([f"138{i:08d}" for i in range(120)])
    code_batches = [len(form(c)) - 1 for c in rsps.calls if c.request.url.endswith("listEmployeesByCodes")]
    mobile_batches = [len(dict(form(c))["mobiles"].split(",")) for c in rsps.calls
                      if c.request.url.endswith("get_by_mobiles")]
    assert code_batches == [100, 100, 50]
    assert mobile_batches == [50, 50, 20]


# -- dry run and counters ------------------------------------------------------------------------

def test_dry_run_records_writes_without_sending_them_and_still_reads(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/mozi/organization/getOrgCodeByExtOrgCode", json=ok("GO_x"))
    client = make_client(dry_run=True)
    assert client.get_org_code_by_ext_org_code("D1") == "GO_x"
    code = client.create_gov_organization("GO_root", "办公室", ext_org_code="D2")
    client.deactivate_gov_employee("GE_a")
    assert [c.request.url for c in rsps.calls] == [BASE + "/mozi/organization/getOrgCodeByExtOrgCode"]
    assert code.startswith("GO_dry_run")
    assert [w.path for w in client.dry_run_writes] == [
        "/mozi/organization/createGovOrganization", "/mozi/employee/deactivateGovEmployee",
    ]
    assert client.dry_run_writes[1].param_names == ["employeeCode", "operator", "tenantId"]
    assert (client.reads, client.writes) == (1, 0)


def test_counters_count_reads_and_writes_sent(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/auth/scopesV2", json=ok({"deptVisibleScopes": []}))
    rsps.post(BASE + "/mozi/employee/deactivateGovEmployee", json=ok(True))
    client = make_client()
    client.scopes()
    client.scopes()
    client.deactivate_gov_employee("GE_a")
    assert (client.reads, client.writes) == (2, 1)
    assert client.calls["/auth/scopesV2"] == 2


# -- error translation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "error", "category", "code"), [
    (gateway_error("SignatureDoesNotMatch", "OPF-B001-05-16-0009"), 200, AuthError, Category.AUTH,
     "SignatureDoesNotMatch"),
    (gateway_error("InvalidApiKey"), 200, AuthError, Category.AUTH, "InvalidApiKey"),
    (gateway_error("Throttling.User"), 429, TransientError, Category.THROTTLED, "Throttling.User"),
    (None, 503, TransientError, Category.THROTTLED, "HTTP 503"),
    (None, 500, TransientError, Category.UNAVAILABLE, "HTTP 500"),
    (business_error("300037"), 200, ScopeError, Category.SCOPE, "300037"),
    (business_error("SIM-EMP-NOT-FOUND"), 200, NotFoundError, Category.NOT_FOUND, "SIM-EMP-NOT-FOUND"),
    (business_error("SIM-MOBILE-EXISTS"), 200, ConflictError, Category.CONFLICT, "SIM-MOBILE-EXISTS"),
    (business_error("SIM-PAGE-SIZE"), 200, InvalidError, Category.INVALID, "SIM-PAGE-SIZE"),
    (business_error("SIM-ORG-NOT-EMPTY"), 200, StateError, Category.STATE, "SIM-ORG-NOT-EMPTY"),
    (business_error("SIM-BIZMSGID-DUP"), 200, DuplicateMessageError, Category.DUPLICATE_MESSAGE,
     "SIM-BIZMSGID-DUP"),
    (business_error("NEVER-SEEN"), 200, InvalidError, Category.INVALID, "NEVER-SEEN"),
])
def test_answers_translate_to_the_error_of_their_category(
    rsps: responses.RequestsMock, body: dict[str, Any] | None, status: int, error: type[ZzdError],
    category: Category, code: str,
) -> None:
    path = "/mozi/employee/deactivateGovEmployee"
    if body is None:
        rsps.post(BASE + path, body="upstream failure", status=status)
    else:
        rsps.post(BASE + path, json=body, status=status)
    with pytest.raises(error) as caught:
        make_client().deactivate_gov_employee("GE_a")
    assert type(caught.value) is error
    assert (caught.value.category, caught.value.code, caught.value.path) == (category, code, path)


def test_throttled_answer_carries_retry_after_and_was_not_applied(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/auth/scopesV2", json=gateway_error("Throttling.User"), status=429,
              headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        make_client().scopes()
    assert caught.value.retry_after == 7.0
    assert caught.value.maybe_applied is False


def test_server_error_on_a_write_may_have_been_applied(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/mozi/employee/deactivateGovEmployee", body="bad gateway", status=502)
    with pytest.raises(TransientError) as caught:
        make_client().deactivate_gov_employee("GE_a")
    assert caught.value.maybe_applied is True


@pytest.mark.parametrize("failure", [requests.ConnectionError("reset"), requests.ReadTimeout("slow")])
def test_transport_failures_are_unavailable_and_chain_the_cause(
    rsps: responses.RequestsMock, failure: Exception,
) -> None:
    rsps.post(BASE + "/auth/scopesV2", body=failure)
    with pytest.raises(TransientError) as caught:
        make_client().scopes()
    assert caught.value.category is Category.UNAVAILABLE
    assert caught.value.__cause__ is failure


def test_connection_refused_is_known_not_to_have_landed() -> None:
    client = ContactsClient("http://127.0.0.1:9", "k", lambda: "s", 1, "syncd", timeout=2,
                            retry=RetryPolicy.instant(attempts=1))
    with pytest.raises(TransientError) as caught:
        client.deactivate_gov_employee("GE_a")
    assert caught.value.maybe_applied is False


def test_non_json_success_status_is_unavailable(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="<html>portal</html>", status=200)
    with pytest.raises(TransientError) as caught:
        make_client().scopes()
    assert caught.value.code == "BadResponse"


def test_configured_codes_extend_and_override_the_default_table(rsps: responses.RequestsMock) -> None:
    rsps.post(BASE + "/auth/scopesV2", json=business_error("TENANT-BUSY"))
    rsps.post(BASE + "/mozi/organization/deleteGovOrganization", json=business_error("SIM-ORG-NOT-EMPTY"))
    client = make_client(error_codes={"TENANT-BUSY": "unavailable", "SIM-ORG-NOT-EMPTY": "conflict"})
    with pytest.raises(TransientError):
        client.scopes()
    with pytest.raises(ConflictError):
        client.delete_gov_organization("GO_x")


def test_an_unknown_category_in_configuration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="retryable"):
        make_client(error_codes={"X": "retryable"})


def test_error_messages_mask_personal_values_of_the_request(rsps: responses.RequestsMock) -> None:
    path = "/addressBook/employee/createComplexEmployee"
    rsps.post(BASE + path, json=business_error("SIM-MOBILE-EXISTS", "测试员甲 的手机 13800000001 已存在"))
    with pytest.raises(ConflictError) as caught:
        make_client().create_complex_employee("GO_x", {"employeeName": "测试员甲", "govEmpCellPhoneNo": "13800000001"})
    assert "测试员甲" not in str(caught.value)
    assert "13800000001" not in str(caught.value)


def test_log_events_carry_no_personal_data_or_secrets(rsps: responses.RequestsMock) -> None:
    path = "/addressBook/employee/createComplexEmployee"
    rsps.post(BASE + path, json=business_error("SIM-MOBILE-EXISTS", "13800000001 已存在"))
    with structlog.testing.capture_logs() as logs, pytest.raises(ConflictError):
        make_client().create_complex_employee("GO_x", {"employeeName": "测试员甲", "govEmpCellPhoneNo": "13800000001"})
    assert logs, "the call is logged"
    for event in logs:
        assert set(event) <= {"event", "log_level", "path", "outcome", "duration_ms", "category", "code"}
        text = repr(event)
        for secret in ("测试员甲", "13800000001", SECRET, "X-Hmac"):
            assert secret not in text

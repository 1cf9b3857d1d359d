"""Retries of the client and lost-response handling of the target, against `responses`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
import structlog

from connectors.zzd.client import ContactsClient, RetryPolicy
from connectors.zzd.errors import Category, ScopeError, TransientError
from connectors.zzd.target import ZzdTarget

BASE = "https://zzd.test"
CREATE_ORG = "/mozi/organization/createGovOrganization"
EXT_LOOKUP = "/mozi/organization/getOrgCodeByExtOrgCode"
LIST_ORGS = "/mozi/organization/listOrganizationsByCodes"


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "bizErrorCode": "0",
            "content": {"success": True, "responseCode": "0", "responseMessage": "OK", "data": data}}


def refused(code: str) -> dict[str, Any]:
    return {"success": True, "bizErrorCode": code,
            "content": {"success": False, "responseCode": code, "responseMessage": "refused"}}


THROTTLED = {"success": False, "Code": "Throttling.User", "Message": "slow down", "bizErrorCode": "Throttling.User"}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    """The waits the retry policy asked for, instead of sleeping them."""
    return []


def make_client(waits: list[float], **policy: Any) -> ContactsClient:
    settings: dict[str, Any] = {"attempts": 4, "total": 60.0, "initial": 0.5, "maximum": 8.0, "jitter": 0.5}
    settings.update(policy)
    return ContactsClient(BASE, "key", lambda: "secret", 1, "syncd", retry=RetryPolicy(sleep=waits.append, **settings))


def paths(rsps: responses.RequestsMock) -> list[str]:
    return [call.request.url.removeprefix(BASE) for call in rsps.calls]


def test_a_read_is_retried_after_a_server_error(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="oops", status=500)
    rsps.post(BASE + "/auth/scopesV2", json=ok({"deptVisibleScopes": ["GO_r"]}))
    assert make_client(waits).scopes() == ["GO_r"]
    assert len(rsps.calls) == 2
    assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0


def test_waits_grow_exponentially_with_bounded_jitter(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="oops", status=500)
    with pytest.raises(TransientError):
        make_client(waits, attempts=5).scopes()
    for wait, base in zip(waits, (0.5, 1.0, 2.0, 4.0), strict=True):
        assert base <= wait <= base + 0.5


def test_retries_stop_after_the_attempts(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="oops", status=500)
    with pytest.raises(TransientError) as caught:
        make_client(waits, attempts=3).scopes()
    assert caught.value.category is Category.UNAVAILABLE
    assert len(rsps.calls) == 3


def test_retry_after_is_honoured(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", json=THROTTLED, status=429, headers={"Retry-After": "7"})
    rsps.post(BASE + "/auth/scopesV2", json=ok({"deptVisibleScopes": []}))
    make_client(waits).scopes()
    assert waits == [7.0]


def test_a_wait_beyond_the_total_time_ends_the_retries(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", json=THROTTLED, status=429, headers={"Retry-After": "120"})
    with pytest.raises(TransientError):
        make_client(waits, total=60.0).scopes()
    assert (len(rsps.calls), waits) == (1, [])


def test_refusals_other_than_transient_are_never_retried(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + CREATE_ORG, json=refused("300037"))
    with pytest.raises(ScopeError):
        make_client(waits).create_gov_organization("GO_x", "办公室")
    assert len(rsps.calls) == 1


def test_a_create_whose_response_was_lost_is_not_resent_by_the_client(
    rsps: responses.RequestsMock, waits: list[float],
) -> None:
    rsps.post(BASE + CREATE_ORG, body="bad gateway", status=502)
    with pytest.raises(TransientError) as caught:
        make_client(waits).create_gov_organization("GO_r", "办公室")
    assert caught.value.maybe_applied
    assert len(rsps.calls) == 1


def test_a_throttled_write_is_resent_because_it_did_not_land(
    rsps: responses.RequestsMock, waits: list[float],
) -> None:
    rsps.post(BASE + "/mozi/employee/deactivateGovEmployee", json=THROTTLED, status=429)
    rsps.post(BASE + "/mozi/employee/deactivateGovEmployee", json=ok(True))
    make_client(waits).deactivate_gov_employee("GE_a")
    assert len(rsps.calls) == 2


def test_an_idempotent_update_is_resent_after_a_lost_response(
    rsps: responses.RequestsMock, waits: list[float],
) -> None:
    rsps.post(BASE + "/mozi/employee/updateGovEmployee", body="bad gateway", status=502)
    rsps.post(BASE + "/mozi/employee/updateGovEmployee", json=ok(True))
    make_client(waits).update_gov_employee("GE_a", {"govEmpGenderCode": "2"})
    assert len(rsps.calls) == 2


def test_each_retry_is_one_log_event(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="oops", status=500)
    with structlog.testing.capture_logs() as logs, pytest.raises(TransientError):
        make_client(waits, attempts=3).scopes()
    retries = [e for e in logs if e["event"] == "zzd.retry"]
    assert [(e["attempt"], e["category"], e["code"]) for e in retries] == [
        (1, "unavailable", "HTTP 500"), (2, "unavailable", "HTTP 500"),
    ]


def test_each_retry_is_signed_afresh(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + "/auth/scopesV2", body="oops", status=500)
    rsps.post(BASE + "/auth/scopesV2", json=ok({"deptVisibleScopes": []}))
    make_client(waits).scopes()
    nonces = {call.request.headers["X-Hmac-Auth-Nonce"] for call in rsps.calls}
    assert len(nonces) == 2


def test_target_resends_a_lost_create_that_did_not_land(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + CREATE_ORG, body="bad gateway", status=502)
    rsps.post(BASE + EXT_LOOKUP, json=refused("SIM-ORG-NOT-FOUND"))
    rsps.post(BASE + CREATE_ORG, json=ok({"organizationCode": "GO_new"}))
    code = ZzdTarget(make_client(waits)).create_department({"name": "办公室"}, "GO_r", "D2")
    assert code == "GO_new"
    assert paths(rsps) == [CREATE_ORG, EXT_LOOKUP, CREATE_ORG]


def test_target_adopts_a_lost_create_that_landed(rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + CREATE_ORG, body="bad gateway", status=502)
    rsps.post(BASE + EXT_LOOKUP, json=ok("GO_landed"))
    rsps.post(BASE + LIST_ORGS, json=ok([{"organizationCode": "GO_landed", "parentCode": "GO_r"}]))
    code = ZzdTarget(make_client(waits)).create_department({"name": "办公室"}, "GO_r", "D2")
    assert code == "GO_landed"
    assert paths(rsps) == [CREATE_ORG, EXT_LOOKUP, LIST_ORGS]


def test_target_does_not_adopt_an_organisation_with_the_ext_code_elsewhere(
        rsps: responses.RequestsMock, waits: list[float]) -> None:
    rsps.post(BASE + CREATE_ORG, body="bad gateway", status=502)
    rsps.post(BASE + EXT_LOOKUP, json=ok("GO_sister"))
    rsps.post(BASE + LIST_ORGS, json=ok([{"organizationCode": "GO_sister", "parentCode": "GO_other_unit"}]))
    rsps.post(BASE + CREATE_ORG, json=ok({"organizationCode": "GO_new"}))
    code = ZzdTarget(make_client(waits)).create_department({"name": "办公室"}, "GO_r", "D2")
    assert code == "GO_new"


def test_a_bare_503_on_a_create_is_looked_up_before_anything_is_resent(
        rsps: responses.RequestsMock, waits: list[float]) -> None:
    """A 503 from a balancer may hide a write that landed: only the gateway's own throttling is safe."""
    rsps.post(BASE + CREATE_ORG, body="service unavailable", status=503)
    rsps.post(BASE + EXT_LOOKUP, json=ok("GO_landed"))
    rsps.post(BASE + LIST_ORGS, json=ok([{"organizationCode": "GO_landed", "parentCode": "GO_r"}]))
    code = ZzdTarget(make_client(waits)).create_department({"name": "办公室"}, "GO_r", "D2")
    assert code == "GO_landed"
    assert paths(rsps) == [CREATE_ORG, EXT_LOOKUP, LIST_ORGS]


def test_paging_follows_the_page_size_the_server_reports(rsps: responses.RequestsMock, waits: list[float]) -> None:
    path = "/mozi/organization/pageSubOrganizationCodes"
    for page in range(3):  # a gateway that caps pages at 50 although 100 were asked for
        codes = [f"GO_{page}_{i}" for i in range(50 if page < 2 else 20)]
        body = ok(codes)
        body["content"].update({"currentPage": page + 1, "pageSize": 50, "totalSize": 120})
        rsps.post(BASE + path, json=body)
    assert len(make_client(waits).all_sub_organization_codes("GO_root")) == 120
    assert len(rsps.calls) == 3

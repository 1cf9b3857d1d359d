"""Fault injection of the simulator, and how the client and target live with it, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from connectors.zzd.client import ContactsClient, RetryPolicy
from connectors.zzd.errors import AuthError, Category, ConflictError, TransientError
from connectors.zzd.ratelimit import RateLimiter
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from connectors.zzd.target import ZzdTarget

Connect = Callable[..., ContactsClient]


def recording(attempts: int = 4) -> tuple[RetryPolicy, list[float]]:
    """A retry policy that records its waits instead of sleeping them."""
    waits: list[float] = []
    return RetryPolicy(attempts=attempts, sleep=waits.append), waits


def test_faults_endpoint_refuses_unknown_or_invalid_settings(server: SimulatorServer, tenant: SimTenant) -> None:
    for body in ({"nonsense": 1}, {"error_share": 2.0}, [1]):
        response = requests.post(server.base_url + "/_sim/faults", json=body,
                                 headers={"X-Sim-Admin-Token": tenant.admin_token}, timeout=5)
        assert response.status_code == 400, body


def test_lost_response_of_a_department_create_is_adopted_not_duplicated(
    target: ZzdTarget, admin: SimAdmin, root: str,
) -> None:
    admin.set_faults(drop_after_commit=1.0)
    admin.reset_counters()
    code = target.create_department({"name": "办公室", "short_name": "", "order": "1"}, root, "D2")
    assert [o["organizationCode"] for o in admin.directory()["organizations"] if o["extOrgCode"] == "D2"] == [code]
    assert admin.counters()["calls"] == {"/mozi/organization/createGovOrganization": 1,
                                         "/mozi/organization/getOrgCodeByExtOrgCode": 1,
                                         "/mozi/organization/listOrganizationsByCodes": 1}


def test_a_lost_person_create_that_landed_is_never_resent_but_handed_to_adopt(
    target: ZzdTarget, admin: SimAdmin, root: str, person_fields: Callable[..., dict[str, str]],
) -> None:
    admin.set_faults(drop_after_commit=1.0)
    admin.reset_counters()
    with pytest.raises(ConflictError, match="LOST-CREATE-MOBILE-TAKEN"):
        target.create_person(person_fields(1), root)
    assert len(admin.directory()["employees"]) == 1
    assert admin.counters()["calls"] == {"/addressBook/employee/createComplexEmployee": 1,
                                         "/mozi/employee/get_by_mobiles": 1}


def test_lost_responses_of_a_move_and_a_deactivation_are_adopted(
    target: ZzdTarget, admin: SimAdmin, root: str, person_fields: Callable[..., dict[str, str]],
) -> None:
    office = target.create_department({"name": "办公室", "short_name": "", "order": ""}, root, "D2")
    code = target.create_person(person_fields(1), root).employee_code
    admin.set_faults(drop_after_commit=1.0)
    target.move_person(code, root, office)
    target.deactivate_person(code)
    assert admin.employee(code)["status"] == "F"
    calls = admin.counters()["calls"]
    assert (calls["/mozi/employee/moveEmployeePosition"], calls["/mozi/employee/deactivateGovEmployee"]) == (1, 1)


def test_a_lost_delete_reaches_the_caller_as_maybe_applied(client: ContactsClient, admin: SimAdmin, root: str) -> None:
    office = client.create_gov_organization(root, "办公室")
    admin.set_faults(drop_after_commit=1.0)
    with pytest.raises(TransientError) as caught:
        client.delete_gov_organization(office)
    assert caught.value.maybe_applied
    assert admin.counters()["calls"]["/mozi/organization/deleteGovOrganization"] == 1
    assert client.list_organizations_by_codes([office]) == []


def test_throttling_is_retried_with_its_retry_after_and_slows_the_limiter(
    connect: Connect, admin: SimAdmin,
) -> None:
    policy, waits = recording(attempts=3)
    limiter = RateLimiter(10, clock=lambda: 0.0, sleep=lambda _s: None)
    client = connect(retry=policy, rate_limit=limiter)
    admin.set_faults(throttle_share=1.0, retry_after=3)
    with pytest.raises(TransientError) as caught:
        client.scopes()
    assert caught.value.category is Category.THROTTLED
    assert len(waits) == 2 and min(waits) >= 3
    assert admin.counters()["calls"] == {"/auth/scopesV2": 3}
    assert limiter.rate < 10


def test_per_second_limit_throttles_the_call_over_it(connect: Connect, admin: SimAdmin) -> None:
    client = connect(retry=RetryPolicy.instant(attempts=1))
    admin.set_faults(per_second_limit=2)
    client.scopes()
    client.scopes()
    with pytest.raises(TransientError) as caught:
        client.scopes()
    assert caught.value.code == "Throttling.User"


def test_server_errors_are_retried_until_a_call_goes_through(connect: Connect, admin: SimAdmin, root: str) -> None:
    policy, waits = recording(attempts=10)
    client = connect(retry=policy)
    admin.set_faults(error_share=0.5, seed=3)
    assert client.scopes() == [root]
    calls = admin.counters()["calls"]["/auth/scopesV2"]
    assert waits, "the seed makes the first call fail"
    assert calls == len(waits) + 1


def test_fault_sequence_is_deterministic_with_a_seed(connect: Connect, admin: SimAdmin) -> None:
    client = connect(retry=RetryPolicy.instant(attempts=1))

    def outcomes() -> list[bool]:
        admin.set_faults(error_share=0.5, seed=42)
        results = []
        for _ in range(12):
            try:
                client.scopes()
                results.append(True)
            except TransientError:
                results.append(False)
        return results

    first = outcomes()
    assert first == outcomes()
    assert True in first and False in first


def test_clock_skew_beyond_the_window_is_an_auth_error(connect: Connect, admin: SimAdmin) -> None:
    client = connect()
    admin.set_faults(clock_skew=10 * 60)
    client.scopes()
    admin.set_faults(clock_skew=20 * 60)
    with pytest.raises(AuthError) as caught:
        client.scopes()
    assert caught.value.code == "InvalidTimestamp"


def test_latency_beyond_the_client_timeout_is_unavailable(connect: Connect, admin: SimAdmin) -> None:
    client = connect(timeout=0.05, retry=RetryPolicy.instant(attempts=1))
    admin.set_faults(latency=0.3)
    with pytest.raises(TransientError) as caught:
        client.scopes()
    assert caught.value.category is Category.UNAVAILABLE
    assert caught.value.maybe_applied

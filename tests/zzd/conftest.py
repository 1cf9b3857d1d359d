"""Fixtures of the Zhengzhengding connector tests: a simulated tenant served over real HTTP, and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator import SimTenant, SimulatorServer
from connectors.zzd.simulator.app import ADMIN_HEADER
from connectors.zzd.target import ZzdTarget

ROOT = "GO_" + "a" * 32
OTHER_UNIT = "GO_" + "b" * 32  # a top-level node outside the app's scope


@pytest.fixture
def tenant() -> SimTenant:
    """A tenant whose app sees one unit (ROOT) and not its neighbour (OTHER_UNIT)."""
    return SimTenant(
        tenant_id=196729, app_key="test-key", app_secret="test-secret", root_code=ROOT, root_name="测试审计局",
        admin_token="test-admin", other_units={OTHER_UNIT: "其他单位"},
    )


@pytest.fixture
def server(tenant: SimTenant) -> Iterator[SimulatorServer]:
    """The simulator for `tenant` on a free loopback port."""
    with SimulatorServer(tenant) as running:
        yield running


@pytest.fixture
def client(server: SimulatorServer, tenant: SimTenant) -> Iterator[ContactsClient]:
    """A client of the simulator with the right credentials."""
    with ContactsClient(server.base_url, tenant.app_key, lambda: tenant.app_secret, tenant.tenant_id,
                        "syncd-test") as made:
        yield made


@pytest.fixture
def target(client: ContactsClient) -> ZzdTarget:
    """The target adapter over `client`."""
    return ZzdTarget(client)


class Admin:
    """The simulator's admin endpoints, as a test reads them."""

    def __init__(self, server: SimulatorServer, token: str) -> None:
        self._base = server.base_url
        self._headers = {ADMIN_HEADER: token}

    def directory(self) -> dict[str, Any]:
        """GET /_sim/directory."""
        return self._get("/_sim/directory")

    def counters(self) -> dict[str, Any]:
        """GET /_sim/counters."""
        return self._get("/_sim/counters")

    def reset_counters(self) -> None:
        """POST /_sim/counters/reset."""
        requests.post(self._base + "/_sim/counters/reset", headers=self._headers, timeout=5).raise_for_status()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """POST /_sim/faults."""
        response = requests.post(self._base + "/_sim/faults", json=faults, headers=self._headers, timeout=5)
        response.raise_for_status()
        return response.json()

    def employee(self, code: str) -> dict[str, Any]:
        """One employee of the directory, mobile and positions included."""
        return next(e for e in self.directory()["employees"] if e["employeeCode"] == code)

    def organization(self, code: str) -> dict[str, Any]:
        """One organisation of the directory."""
        return next(o for o in self.directory()["organizations"] if o["organizationCode"] == code)

    def _get(self, path: str) -> dict[str, Any]:
        response = requests.get(self._base + path, headers=self._headers, timeout=5)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def admin(server: SimulatorServer, tenant: SimTenant) -> Admin:
    """The admin endpoints of `server`."""
    return Admin(server, tenant.admin_token)


PersonFields = Callable[..., dict[str, str]]


def _person_fields(n: int = 1, **overrides: str) -> dict[str, str]:
    fields = {
        "name": f"测试员{n}", "gender": "1", "mobile": f"138{n:08d}", "establishment": "行政编制",
        "rank": "一级主任科员", "political_status": "13", "role": "普通人员", "post": "科员",
        "post_level": "科员级", "office_phone": "0371-00000000", "leader_duties": "", "order": str(n),
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def person_fields() -> PersonFields:
    """A factory of synthetic pushed fields: person `n` has mobile 138 followed by n in 8 digits."""
    return _person_fields

"""Fixtures of the Zhengzhengding connector tests: a simulated tenant served over real HTTP, and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.zzd.client import ContactsClient, RetryPolicy
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
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


Connect = Callable[..., ContactsClient]


@pytest.fixture
def connect(server: SimulatorServer, tenant: SimTenant) -> Iterator[Connect]:
    """A factory of clients of the simulator: the right credentials and instant retries unless overridden."""
    made: list[ContactsClient] = []

    def make(**overrides: Any) -> ContactsClient:
        options: dict[str, Any] = {
            "base_url": server.base_url, "app_key": tenant.app_key, "secret": lambda: tenant.app_secret,
            "tenant_id": tenant.tenant_id, "operator": "syncd-test", "retry": RetryPolicy.instant(),
        }
        options.update(overrides)
        made.append(ContactsClient(**options))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(connect: Connect) -> ContactsClient:
    """A client of the simulator with the right credentials."""
    return connect()


@pytest.fixture
def target(client: ContactsClient) -> ZzdTarget:
    """The target adapter over `client`."""
    return ZzdTarget(client)


@pytest.fixture
def admin(server: SimulatorServer, tenant: SimTenant) -> SimAdmin:
    """The admin endpoints of `server`."""
    return SimAdmin(server.base_url, tenant.admin_token)


@pytest.fixture
def root(tenant: SimTenant) -> str:
    """The app's root organisation: its whole scope."""
    return tenant.root_code


@pytest.fixture
def other_unit() -> str:
    """A top-level organisation outside the app's scope."""
    return OTHER_UNIT


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

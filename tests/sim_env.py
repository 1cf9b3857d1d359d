"""A running simulator with a unit's configuration and HR export beside it: the `env` fixture of the
end-to-end tests (registered in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator.server import SimulatorServer
from connectors.zzd.simulator.tenant import SimTenant
from syncd.cli import main
from tests.conftest import config_toml
from tests.projection import Projection, directory_projection

TENANT = SimTenant(tenant_id=196729, app_key="it-key", app_secret="it-secret",
                   root_code="GO_" + "0" * 31 + "1", admin_token="it-admin")


@dataclass
class Env:
    """A simulator, a configuration pointing at it, and a way to write HR's export."""

    server: SimulatorServer
    config: Path
    write_export: Callable[..., tuple[Path, Path]]

    def admin(self, path: str) -> Any:
        response = requests.get(self.server.base_url + path, headers={"X-Sim-Admin-Token": "it-admin"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def writes(self) -> int:
        return int(self.admin("/_sim/counters")["writes"])

    def sync(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), "sync", *args])

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), *args])

    def directory(self) -> Projection:
        """What the directory holds, as HR would describe it."""
        return directory_projection(self.admin("/_sim/directory"))




@pytest.fixture
def env(tmp_path: Path, export: Callable[..., tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> Iterator[Env]:
    monkeypatch.setenv("SYNCD_IT_SECRET", "it-secret")
    options = getattr(request, "param", {})
    with SimulatorServer(TENANT) as server:
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(
            server.base_url, TENANT.root_code, "it-key", "env:SYNCD_IT_SECRET", TENANT.tenant_id,
            unit={"operator": "syncd-test"}, target={"rate_limit": 500}, state={"url": "sqlite:///state.db"},
            safety={"structure_changes": options.get("structure", "apply"),
                    "max_deactivations": options.get("max_deactivations", 50),
                    "max_deactivation_share": options.get("share", 1.0),
                    "max_shrink_share": options.get("shrink", 1.0),
                    "max_shrink_count": options.get("shrink_count")},  # None: the default
            logging={"format": "json"}), encoding="utf-8")
        export()
        yield Env(server, config, export)


def hand_client(env: Env) -> ContactsClient:
    """The directory's own admin console, as a client: edits syncd did not make."""
    return ContactsClient(env.server.base_url, TENANT.app_key, lambda: TENANT.app_secret, TENANT.tenant_id, "admin")


def employee_code(env: Env, mobile: str) -> str:
    [employee] = [e for e in env.admin("/_sim/directory")["employees"] if e["mobile"] == mobile]
    return str(employee["employeeCode"])

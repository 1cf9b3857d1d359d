"""A running simulator with a unit's configuration and HR export beside it: the `env` fixture of the
end-to-end tests (registered in conftest.py), and the cycle, CLI and state of that unit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from syncd.cli import main
from syncd.config import Config, load
from syncd.engine.cycle import CycleOptions, CycleResult, run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import config_toml
from tests.projection import Projection, directory_projection

TENANT = SimTenant(tenant_id=196729, app_key="it-key", app_secret="it-secret",
                   root_code="GO_" + "0" * 31 + "1", admin_token="it-admin")


@dataclass
class Env:
    """A simulator, a configuration pointing at it, a way to write HR's export, and the unit's CLI, cycle and state."""

    server: SimulatorServer
    config: Path
    write_export: Callable[..., tuple[Path, Path]]

    def sim_admin(self) -> SimAdmin:
        """The simulator's admin API: faults, counters, the directory."""
        return SimAdmin(self.server.base_url, TENANT.admin_token)

    def writes(self) -> int:
        """How many writes the directory has taken so far."""
        return int(self.sim_admin().counters()["writes"])

    def sync(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), "sync", *args])

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), *args])

    def directory(self) -> Projection:
        """What the directory holds, as HR would describe it."""
        return directory_projection(self.sim_admin().directory())

    def posts(self) -> dict[str, str | None]:
        """Employee code → main position's post, as the directory holds it."""
        return directory_posts(self.sim_admin())

    def loaded_config(self) -> Config:
        """The configuration as syncd reads it."""
        return load(self.config)

    def cycle(self, **options: Any) -> CycleResult:
        """One real cycle against the simulator, as `syncd sync` runs it (`options`: CycleOptions)."""
        return run_one_cycle(self.loaded_config(), **options)

    def store(self) -> StateStore:
        """The unit's state; the caller closes it."""
        return StateStore(self.loaded_config().state.url)


def run_one_cycle(config: Config, **options: Any) -> CycleResult:
    """One real cycle with the configured source and target, as `syncd sync` runs it."""
    store = StateStore(config.state.url)
    try:
        return run_cycle(config, build_source(config), build_target(config), store, CycleOptions(**options))
    finally:
        store.close()


def directory_posts(admin: SimAdmin) -> dict[str, str | None]:
    """Employee code → main position's post of everyone active in the simulated directory."""
    return {e["employeeCode"]: p.get("govEmpPosJob") for e in admin.directory()["employees"]
            if e["status"] == "A" for p in e["positions"] if p["mainJob"]}


@pytest.fixture
def env_options() -> dict[str, Any]:
    """Options of every `env` in a module (a module overrides this fixture); a test's own
    `parametrize("env", [{...}], indirect=True)` lays its options over them."""
    return {}


@pytest.fixture
def env(tmp_path: Path, export: Callable[..., tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest, env_options: dict[str, Any]) -> Iterator[Env]:
    monkeypatch.setenv("SYNCD_IT_SECRET", "it-secret")
    options = {**env_options, **getattr(request, "param", {})}
    with SimulatorServer(TENANT) as server:
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(
            server.base_url, TENANT.root_code, "it-key", "env:SYNCD_IT_SECRET", TENANT.tenant_id,
            unit={"operator": "syncd-test"}, state={"url": "sqlite:///state.db"},
            target={"rate_limit": 500, "retry_attempts": options.get("retry_attempts")},  # None: the default
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
    [employee] = [e for e in env.sim_admin().directory()["employees"] if e["mobile"] == mobile]
    return str(employee["employeeCode"])

"""A 2,000-person initial sync through a misbehaving gateway ends with exactly the expected directory.

20 % of calls answer HTTP 5xx, 10 % are throttled, and 5 % of writes are applied and then lose
their response. Retries are instant here (the policy's sleep is a no-op); nothing else is faked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.synthetic import generate, write_csv
from connectors.zzd.client import ContactsClient, RetryPolicy
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from connectors.zzd.simulator.tenant import Faults
from connectors.zzd.target import ZzdTarget
from syncd.config import Config
from syncd.engine.cycle import run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_source
from tests.projection import directory_projection, hr_projection

FAULTS = Faults(error_share=0.20, throttle_share=0.10, drop_after_commit=0.05, retry_after=0, seed=20261126)
TENANT = SimTenant(app_key="chaos-key", app_secret="chaos-secret", admin_token="chaos-admin", faults=FAULTS)


def test_a_2000_person_initial_sync_through_faults_ends_exact_with_nobody_created_twice(tmp_path: Path) -> None:
    departments, people = generate(2000, seed=5)
    write_csv(tmp_path, departments, people)
    with SimulatorServer(TENANT) as server:
        config = Config.model_validate({
            "unit": {"name": "郑州市审计局", "root_department": "D0001", "root_organization_code": TENANT.root_code},
            "source": {"kind": "csv", "people": str(tmp_path / "people.csv"),
                       "departments": str(tmp_path / "departments.csv")},
            "target": {"base_url": server.base_url, "app_key": TENANT.app_key, "app_secret": TENANT.app_secret,
                       "tenant_id": TENANT.tenant_id},
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "safety": {"structure_changes": "apply"},
        })
        client = ContactsClient(server.base_url, TENANT.app_key, lambda: TENANT.app_secret, TENANT.tenant_id,
                                "syncd", retry=RetryPolicy(attempts=12, total=60, sleep=lambda _s: None))
        store = StateStore(config.state.url)
        try:
            result = run_cycle(config, build_source(config), ZzdTarget(client), store)
        finally:
            store.close()
        failed = [(o.change.describe(), o.category, o.message) for o in result.report.outcomes if o.state != "done"]
        assert result.outcome == "success", failed[:5]
        admin = SimAdmin(server.base_url, TENANT.admin_token)
        directory = admin.directory()
        assert directory_projection(directory) == hr_projection(people, departments)
        in_post = sum(p["人员状态"] == "在职" for p in people)
        assert len(directory["employees"]) == in_post
        assert max(Counter(e["mobile"] for e in directory["employees"]).values()) == 1
        creates = in_post + len(departments) - 1  # the root exists already
        assert admin.counters()["writes"] > creates * 1.2  # the faults bit: every create needed retries

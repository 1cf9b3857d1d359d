"""A sync killed with SIGKILL in the middle of a 2,000-person plan is finished by the next run, exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.synthetic import generate, write_csv
from connectors.zzd.simulator.admin import SimAdmin
from connectors.zzd.simulator.server import SimulatorServer
from connectors.zzd.simulator.tenant import Faults, SimTenant
from tests.conftest import config_toml
from tests.projection import directory_projection, hr_projection

TENANT = SimTenant(app_key="crash-key", app_secret="crash-secret", admin_token="crash-admin",
                   faults=Faults(latency=0.002))


def sync(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "syncd.cli", "--config", str(config), "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=config.parent)


def test_a_run_killed_mid_plan_is_finished_by_the_next_without_duplicates(tmp_path: Path) -> None:
    departments, people = generate(2000, seed=11)
    write_csv(tmp_path, departments, people)
    with SimulatorServer(TENANT) as server:
        admin = SimAdmin(server.base_url, TENANT.admin_token)
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(
            server.base_url, TENANT.root_code, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
            target={"rate_limit": 1000}, state={"url": "sqlite:///state.db"}, safety={"structure_changes": "apply"},
            logging={"format": "json", "level": "warning"}))
        victim = sync(config)
        while admin.counters()["writes"] < 700 and victim.poll() is None:
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL, "the first sync finished before it could be killed"
        half = directory_projection(admin.directory())
        assert 0 < len(half["people"]) < sum(p["人员状态"] == "在职" for p in people)

        rerun = sync(config)
        output = rerun.communicate()[0].decode()
        assert rerun.returncode == 0, output
        assert directory_projection(admin.directory()) == hr_projection(people, departments)

        before = admin.counters()["writes"]
        final = sync(config)
        assert final.wait() == 0
        assert admin.counters()["writes"] == before

"""What /metrics says: after a restart, the last success read from the state and process_* metrics; a
resync of an unknown id counted as the successful cycle it was."""

from __future__ import annotations

import re
from datetime import UTC

from tests.service.daemon_harness import Bureau, people_with, poll


def scrape(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, text
    return float(found[1])


def test_the_last_success_is_restored_at_start_even_behind_failed_runs(bureau: Bureau) -> None:
    synced = bureau.cli("sync")
    assert synced.returncode == 0, synced.stderr
    bureau.admin.set_faults(error_share=1.0)  # from here every gateway call fails
    bureau.write_export(people=people_with("A000002", 职务="科长"))  # a change to write, which fails
    failed = bureau.cli("sync")
    assert failed.returncode == 1, failed.stderr
    success, last = bureau.runs()[0], bureau.runs()[-1]
    assert success.outcome == "success" and last.outcome == "partial"  # not healthy

    daemon = bureau.start()
    poll(lambda: len(bureau.runs()) >= 3, 30, "the daemon's first cycle")  # it fails too
    metrics = daemon.call("GET", "/metrics").text

    assert scrape(metrics, "syncd_last_success_timestamp_seconds") == \
        success.finished_at.replace(tzinfo=UTC).timestamp()
    assert scrape(metrics, "process_resident_memory_bytes") > 0
    assert scrape(metrics, "process_start_time_seconds") > 0
    health = daemon.call("GET", "/healthz").json()
    assert health["last_success"] is not None and health["status"] == "failing"


def test_a_resync_of_an_id_hr_does_not_know_fails_the_request_not_a_cycle(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    daemon.wait_for("cycle.finished", trigger="start")
    queued = daemon.call("POST", "/api/v1/resync", token="hr", json={"employee_id": "A999999"}).json()

    def finished() -> dict[str, object] | None:
        status = daemon.call("GET", f"/api/v1/resync/{queued['id']}", token="hr").json()
        return status if status["status"] in ("done", "failed") else None

    done = poll(finished, 30, "the resync finished")
    assert (done["status"], done["outcome"]) == ("failed", "not_found")  # the request: A999999 is unknown
    metrics = daemon.call("GET", "/metrics").text
    assert scrape(metrics, 'syncd_cycles_total{outcome="failed"}') == 0
    assert scrape(metrics, 'syncd_cycles_total{outcome="success"}') == 2  # the cycle at start, the resync's

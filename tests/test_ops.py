"""The operations kit in ops/: alert rules checked and unit-tested by promtool (an outage among the
scenarios), a Grafana dashboard, both asking only for metrics the daemon exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.service.metrics import Metrics

OPS = Path(__file__).resolve().parent.parent / "ops"
# Words in a PromQL expression that are functions, keywords or labels, not metric names.
_METRIC = re.compile(r"\b((?:syncd|process|python)_[a-z_]+|up)\b(?!\s*\()")
ALERTS = {"SyncdDown", "SyncdNoSuccessFor1h", "SyncdOverdueChanges", "SyncdHoldWaiting", "SyncdCyclesFailing",
          "SyncdGatewayErrors", "SyncdLevel2Problem", "SyncdNoticesFailing", "SyncdStateUnreachable"}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path is not None, "promtool not found: run `bash tests/services.sh` (Debian package prometheus)"
    return path


def exposed() -> set[str]:
    """Every series name the daemon's /metrics can show, with Prometheus' suffixes."""
    metrics = Metrics()
    metrics.observe_cycle("success", 1.0, {"join.done": 1})
    metrics.count_notice("email", ok=False)
    text = metrics.render()[0].decode()
    samples = set(re.findall(r"^([a-z_]+)(?:\{| )", text, re.MULTILINE))
    gauges = set(re.findall(r"^# TYPE ([a-z_]+) gauge$", text, re.MULTILINE))  # a family with no series yet
    return samples | gauges | {"up"}


def test_the_rules_pass_promtool_check() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(OPS / "alerts.yml")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_rules_fire_as_their_unit_tests_expect_an_outage_included() -> None:
    result = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], capture_output=True, text=True,
                            timeout=120, cwd=OPS, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = (OPS / "alerts_test.yml").read_text(encoding="utf-8")
    assert "outage" in tests
    # Each alert is shown firing in some scenario, not only tested silent.
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    assert firing == ALERTS


def test_a_broken_rule_fails_promtool(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yml"
    broken.write_text((OPS / "alerts.yml").read_text(encoding="utf-8").replace("> 3600", "> > 3600"),
                      encoding="utf-8")
    result = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0


def test_the_rules_and_the_dashboard_ask_only_for_exposed_metrics() -> None:
    rules = (OPS / "alerts.yml").read_text(encoding="utf-8")
    expressions = re.findall(r"expr: \|?\n?((?:.|\n)*?)\n\s+(?:for|labels):", rules)
    assert len(expressions) == len(ALERTS)
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expression in expressions for name in _METRIC.findall(expression)}
    assert used - exposed() == set()
    assert {"process_resident_memory_bytes", "syncd_last_success_timestamp_seconds"} <= used


@pytest.mark.parametrize("name", ["process_resident_memory_bytes", "process_cpu_seconds_total",
                                  "process_start_time_seconds"])
def test_the_daemon_exposes_process_metrics(name: str) -> None:
    assert name in exposed()

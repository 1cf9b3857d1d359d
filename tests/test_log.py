"""Logging: JSON lines, context bound per cycle, personal data masked unless turned on."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from connectors.zzd.simulator import SimTenant, SimulatorServer
from syncd import log as logging_setup
from syncd.cli import main
from syncd.demo import APP_KEY, DEMO_SECRET, ROOT_CODE, TENANT_ID
from syncd.log import RepeatLimiter
from tests.conftest import config_toml


def emit(capsys: pytest.CaptureFixture[str], show: bool) -> dict[str, object]:
    logging_setup.configure("json", "info", show_personal_data=show)
    structlog.contextvars.bind_contextvars(run_id="r1")
    try:
        structlog.get_logger("t").info("record.rejected", name="张明", key="A000001",
                                       reason="duplicate of 13800000001 / 410105199001011234")
    finally:
        structlog.contextvars.clear_contextvars()
    return json.loads(capsys.readouterr().err.strip().splitlines()[-1])


def test_names_mobiles_and_id_numbers_are_masked_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    line = emit(capsys, show=False)
    assert line["name"] == "***" and line["key"] == "A000001" and line["run_id"] == "r1"
    assert "13800000001" not in json.dumps(line) and "410105199001011234" not in json.dumps(line)


def test_personal_data_is_shown_when_configured(capsys: pytest.CaptureFixture[str]) -> None:
    line = emit(capsys, show=True)
    assert line["name"] == "张明" and "13800000001" in str(line["reason"])


def test_stdlib_loggers_go_through_the_same_formatter(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure("json", "info")
    logging.getLogger("apscheduler").warning("job missed by 13900000000")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["logger"] == "apscheduler" and "13900000000" not in line["message"]


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_a_third_party_message_has_a_stable_event_name_and_its_text_apart(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure("json", "info")
    logging.getLogger("apscheduler.executors.default").warning(
        'Run time of job "cycle" (trigger: interval[0:01:00], next run at: 2026-12-04 03:20:00 CST) '
        "was missed by 0:00:02")
    [line] = lines(capsys)
    assert line["event"] == "third_party.log" and line["level"] == "warning"
    assert line["logger"] == "apscheduler.executors.default" and "was missed by 0:00:02" in str(line["message"])


def test_a_python_warning_is_a_json_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure("json", "info")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something is deprecated", DeprecationWarning, stacklevel=1)
    [line] = lines(capsys)
    assert line["event"] == "python.warning" and "something is deprecated" in str(line["message"])


def test_an_escalation_level_is_its_own_field_beside_the_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure("json", "info")
    structlog.get_logger("syncd.domain.escalation").warning("escalation.opened", kind="held", level=2)
    [line] = lines(capsys)
    assert line["level"] == "warning" and line["escalation_level"] == 2


def test_an_identical_failure_logged_every_second_is_written_once_a_minute_with_a_count() -> None:
    now = [0.0]
    limiter = RepeatLimiter(window=60, clock=lambda: now[0])
    failed = {"event": "systemd.notify_failed", "state": "WATCHDOG", "error": "ConnectionRefusedError"}
    written = []
    for second in range(121):
        now[0] = float(second)
        with contextlib.suppress(structlog.DropEvent):
            written.append((second, dict(limiter(None, "warning", dict(failed)))))
    assert [second for second, _ in written] == [0, 60, 120]
    assert [event.get("repeated") for _, event in written] == [None, 59, 59]
    other = limiter(None, "warning", {**failed, "state": "READY"})  # a different failure shows at once
    assert "repeated" not in other
    assert limiter(None, "info", dict(failed)) == failed  # information is never limited


def test_the_configured_logger_writes_a_repeated_failure_once(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure("json", "info")
    for _ in range(5):
        structlog.get_logger("syncd.service.notify").warning("systemd.notify_failed", state="WATCHDOG",
                                                            error="ConnectionRefusedError")
    assert [line["event"] for line in lines(capsys)] == ["systemd.notify_failed"]


def test_a_dry_run_logs_no_change_done(tmp_path: Path, export: object) -> None:
    export()  # type: ignore[operator]
    tenant = SimTenant(tenant_id=TENANT_ID, app_key=APP_KEY, app_secret=DEMO_SECRET, root_code=ROOT_CODE,
                       root_name="郑州市审计局", admin_token="admin", state_file=None)
    with SimulatorServer(tenant) as server:
        config = tmp_path / "syncd.toml"
        config.write_text(config_toml(server.base_url, ROOT_CODE, APP_KEY, DEMO_SECRET, TENANT_ID,
                                      state={"url": "sqlite:///state.db"}, safety={"structure_changes": "apply"},
                                      logging={"format": "json", "level": "debug"}), encoding="utf-8")
        result = CliRunner().invoke(main, ["sync", "--dry-run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]
    assert "change.dry_run" in events and "zzd.dry_run_write" in events
    assert "change.done" not in events

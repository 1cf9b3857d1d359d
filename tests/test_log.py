"""Logging: JSON lines, context bound per cycle, personal data masked unless turned on."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from syncd import log as logging_setup


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
    assert line["logger"] == "apscheduler" and "13900000000" not in line["event"]

"""Escalation in the running daemon: a failing gateway is heard by webhook, its recovery by work notification,
and a restart sends nothing twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from syncd.demo.daemon import NoticeInbox
from tests.service.daemon_harness import Bureau, people_with, poll
from tests.service.test_daemon import started

SECRET = "escalation-test-secret"


def escalation_toml(inbox: NoticeInbox, secret_file: Path, channels: str = '"work_notification", "webhook"') -> str:
    return f"""
[escalation]
unit_admins = [{{ name = "系统管理员", account_id = 1001 }}]
higher_admins = [{{ name = "市局管理员", account_id = 2001 }}]
channels = [{channels}]

[escalation.webhook]
url = "{inbox.url}"
secret_file = "{secret_file}"
"""


def test_a_failing_gateway_is_heard_once_by_webhook_and_its_recovery_by_work_notification(
        bureau: Bureau, tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    with NoticeInbox(SECRET) as inbox:
        extra = escalation_toml(inbox, secret_file)
        daemon = bureau.start(extra=extra, target={"rate_limit": 1000, "concurrency": 2, "retry_attempts": 1})
        started(daemon, bureau)
        bureau.admin.set_faults(error_share=1.0)
        bureau.write_export(people=people_with("A000002", 职务="副主任"))
        opened = poll(lambda: [n for n in inbox.notices if n["state"] == "open"], 20, "the open notice by webhook")
        assert [(n["level"], n["kind"], n["key"]) for n in opened] == [(1, "run_failed", "run_failed")]
        assert str(opened[0]["title"]) == "【郑政钉同步·郑州市审计局】通讯录服务不可用"  # a 5xx outage, unit named
        assert bureau.admin.notifications() == []  # the gateway is what is down

        bureau.admin.set_faults(error_share=0.0)
        resolved = poll(lambda: [n for n in bureau.admin.notifications()
                                 if "已恢复" in json.loads(str(n["msg"]))["text"]["content"]], 20,
                        "the recovery notice by work notification")
        assert resolved[0]["receiverIds"] == ["1001"]
        sent = (len(inbox.notices), len(bureau.admin.notifications()))

        daemon.send(signal.SIGTERM)
        assert daemon.wait_exit(10) == 0
        again = bureau.start(extra=extra)
        again.wait_for("cycle.finished", trigger="start")
        again.wait_for("cycle.skipped", timeout=5, trigger="schedule")
        assert (len(inbox.notices), len(bureau.admin.notifications())) == sent  # nothing sent twice
        status = again.call("GET", "/api/v1/escalations", token="hr").json()
        assert status["open"] == []
        assert [p["key"] for p in status["resolved"]] == ["run_failed"]
        metrics = again.call("GET", "/metrics").text
        assert "syncd_open_problems" in metrics


def test_over_an_outage_the_running_daemon_tells_level_2_once_while_level_1_is_reminded(
        bureau: Bureau, tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    with NoticeInbox(SECRET) as inbox:
        # Reminders around the clock every 2 s, so that the outage lasts many reminders of level 1.
        extra = escalation_toml(inbox, secret_file).replace(
            'channels = ["work_notification", "webhook"]',
            'channels = ["webhook"]\nfailed_runs_before_escalation = 2\nreminder_every = "2s"\n'
            'reminder_hours = "00:00-24:00"\nreminders_on_workdays = false')
        daemon = bureau.start(extra=extra, target={"rate_limit": 1000, "concurrency": 2, "retry_attempts": 1})
        started(daemon, bureau)
        bureau.admin.set_faults(error_share=1.0)
        bureau.write_export(people=people_with("A000002", 职务="副主任"))

        def level(number: int) -> list[dict[str, object]]:
            return [n for n in inbox.notices if n["level"] == number]

        poll(lambda: len([n for n in level(1) if n["state"] == "reminder"]) >= 3, 40, "three level-1 reminders")
        assert [(n["kind"], n["state"]) for n in level(2)] == [("run_failed", "open")]
        assert {n["key"] for n in inbox.notices} == {"run_failed"}  # one outage, one problem

        bureau.admin.set_faults(error_share=0.0)
        poll(lambda: [n for n in level(2) if n["state"] == "resolved"], 20, "the level-2 recovery notice")
        assert [n["state"] for n in level(2)] == ["open", "resolved"]
        assert level(2)[1]["title"] == "【郑政钉同步·郑州市审计局】已恢复：通讯录服务不可用"
        daemon.send(signal.SIGTERM)
        assert daemon.wait_exit(10) == 0

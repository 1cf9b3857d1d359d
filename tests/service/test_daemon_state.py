"""The daemon's state failing under it: a full disk is heard (log, a notice sent without the state,
`/healthz`) and resolved when writes work again; a standby's health follows the leader's cycles."""

from __future__ import annotations

import resource
from pathlib import Path

from syncd.demo.daemon import NoticeInbox
from tests.service.daemon_harness import Bureau, people_with, poll, post_in
from tests.service.test_daemon import started
from tests.service.test_daemon_escalation import escalation_toml

SECRET = "state-test-secret"


def test_a_full_state_disk_is_logged_told_once_to_level_1_and_resolved_when_writes_work(
        bureau: Bureau, tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    with NoticeInbox(SECRET) as inbox:
        daemon = bureau.start(extra=escalation_toml(inbox, secret_file, '"webhook"'), piped=True)
        started(daemon, bureau)
        soft, hard = resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE)
        # The state's files may not grow past 4 KiB: every write to the SQLite WAL now fails with EFBIG.
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (4096, hard))
        mark = daemon.mark()
        bureau.write_export(people=people_with("A000002", 职务="副主任"))
        failed = daemon.wait_for("state.unwritable", timeout=20, after=mark)
        assert failed["reason"] and failed["reason"] != failed["error"], failed  # the database's own words
        opened = poll(lambda: [n for n in inbox.notices if n["state"] == "open"], 20, "the open notice by webhook")
        assert [(n["level"], n["kind"]) for n in opened] == [(1, "state_unwritable")]
        assert failed["reason"] in str(opened[0]["text"])
        health = daemon.call("GET", "/healthz")
        assert health.status_code == 503, health.text
        assert failed["reason"] in health.json()["reason"]
        # More cycles fail (every 2 s), and the resync poller every second: still one notice, one error line.
        still = daemon.mark()
        daemon.wait_for("state.still_unwritable", timeout=10, after=still, doing="recording the cycle")
        assert len([n for n in inbox.notices if n["state"] == "open"]) == 1
        assert len(daemon.find("state.unwritable", after=mark)) == 1
        assert post_in(bureau.directory(), "A000002") != "副主任"  # nothing written that was not journaled

        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (soft, hard))
        daemon.wait_for("state.writable_again", timeout=20, after=mark)
        resolved = poll(lambda: [n for n in inbox.notices if n["state"] == "resolved"], 20, "the resolved notice")
        assert [(n["level"], n["kind"]) for n in resolved] == [(1, "state_unwritable")]
        bureau.wait_directory(lambda d: post_in(d, "A000002") == "副主任", 20, "the HR change synced after")
        poll(lambda: daemon.call("GET", "/healthz").status_code == 200, 10, "healthy again")
        assert len([n for n in inbox.notices if n["state"] == "open"]) == 1

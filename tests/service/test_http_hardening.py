"""The daemon's HTTP surface under a hostile neighbour, over real HTTP against `syncd run`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import requests

from syncd.service.http import REQUEST_DEADLINE, SWEEP_SECONDS, WsgiServer
from syncd.service.tokens import add_token, hash_token
from syncd.state.store import MAX_QUEUED_RESYNCS
from tests.console.conftest import csrf_of
from tests.console.harness import Console, build_console, bureau_at, serve
from tests.service.daemon_harness import STARTS_WITHIN, Bureau, DaemonProcess, poll


def test_wrong_tokens_on_the_api_are_limited_per_client_and_a_right_token_still_answers(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    mark = daemon.mark()
    statuses = [daemon.call("GET", "/api/v1/status", token=f"guess-{n}").status_code for n in range(40)]
    assert statuses == [401] * 5 + [429] * 35
    limited = daemon.call("POST", "/api/v1/resync", token="another-guess", json={"all": True})
    assert limited.status_code == 429 and limited.json()["error"] == "too_many_failures"
    assert int(limited.headers["Retry-After"]) > 0
    assert daemon.call("GET", "/api/v1/status", token="hr").status_code == 200  # never refused while limited
    daemon.wait_for("api.auth_limited", after=mark)
    # 41 wrong tokens, 2 log lines: the 5 refusals before the limit are identical lines (the
    # logging writes the first and counts the rest), then one line for the whole limited flood.
    assert len(daemon.find("api.auth_failed", after=mark)) == 1
    assert len(daemon.find("api.auth_limited", after=mark)) == 1
    assert "guess-" not in daemon.log_text()


# -- ids, timestamps and JSON answers, on either database ------------------------------------------


HOSTILE_IDS = ["A%00B", "%00", "A%0AB", "A%09B", "%20A", "A%20", "A%E2%80%AEB", "A%EF%BB%BFB", "A%C2%85B",
               "A" * 201]  # longer than every maximum


@contextmanager
def console_on(tmp_path: Path, state_url: str | None) -> Iterator[Console]:
    """The daemon's app (API and console) served over real HTTP, its state in `state_url` (default SQLite)."""
    with bureau_at(tmp_path) as bureau:
        if state_url is not None:
            text = bureau.config_path.read_text(encoding="utf-8")
            text = re.sub(r'(?m)^url = "sqlite:[^"]*"$', f"url = {json.dumps(state_url)}", text)
            bureau.config_path.write_text(text, encoding="utf-8")
        with serve(build_console(bureau)) as console:
            yield console


def new_token(console: Console, name: str, role: str) -> str:
    """A token added to the served daemon's tokens file (honoured at once)."""
    tokens_file = console.daemon.engine.config.api.tokens_file
    assert tokens_file is not None
    return add_token(tokens_file, name, role)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_hostile_id_in_any_path_or_body_is_422_json_never_500(tmp_path: Path, database: str,
                                                                 request: pytest.FixtureRequest) -> None:
    state_url = request.getfixturevalue("pg_state") if database == "postgresql" else None
    with console_on(tmp_path, state_url) as console:
        operator = new_token(console, "hostile-ops", "operator")
        headers = {"Authorization": f"Bearer {operator}"}
        base = console.base_url
        for bad in HOSTILE_IDS:
            for method, path in [("GET", f"/api/v1/resync/{bad}"), ("POST", f"/api/v1/runs/{bad}/approve"),
                                 ("POST", f"/api/v1/runs/{bad}/reject"), ("POST", f"/api/v1/people/{bad}/freeze"),
                                 ("POST", f"/api/v1/people/{bad}/unfreeze"),
                                 ("POST", f"/api/v1/escalations/{bad}/ack")]:
                answer = requests.request(method, base + path, headers=headers, timeout=10)
                # The escalation key is a <path:…>, whose rule no newline matches: no such route.
                expected = 404 if path.startswith("/api/v1/escalations/") and "%0A" in bad else 422
                assert answer.status_code == expected, (path, answer.status_code, answer.text)
                assert answer.headers["Content-Type"] == "application/json"
                assert "field" in answer.json() or expected == 404
        for body in ({"employee_id": "A\x00B"}, {"department_id": "D\u202e1"}, {"employee_id": "A" * 100_000},
                     {"employee_id": "\ud800"}):
            answer = requests.post(f"{base}/api/v1/resync", headers=headers, timeout=10,
                                   data=json.dumps(body))
            assert answer.status_code in (413, 422), (body, answer.status_code)
            assert "A" * 100 not in answer.text  # a long id is never echoed back
        long_id = requests.get(f"{base}/api/v1/resync/{'A' * 100_000}", headers=headers, timeout=10)
        assert long_id.status_code in (414, 422) and "A" * 100 not in long_id.text
        for by in ("   ", "值班\x00员", "值班\u202e员"):
            answer = requests.post(f"{base}/api/v1/people/A000002/freeze", headers=headers, json={"by": by},
                                   timeout=10)
            assert answer.status_code == 422 and answer.json()["field"] == "by", by
        queued = requests.post(f"{base}/api/v1/resync", headers=headers, json={"employee_id": "A000002"}, timeout=10)
        assert queued.status_code == 202
        read_back = requests.get(f"{base}/api/v1/resync/{queued.json()['id']}", headers=headers, timeout=10)
        assert datetime.fromisoformat(read_back.json()["requested_at"]).utcoffset() is not None


def test_options_unknown_routes_wrong_methods_and_large_bodies_answer_json(tmp_path: Path) -> None:
    with console_on(tmp_path, None) as console:
        base = console.base_url
        hr = new_token(console, "big-bodies", "hr")
        answers = [requests.options(f"{base}/api/v1/status", timeout=10),
                   requests.get(f"{base}/api/v1/no-such-route", timeout=10),
                   requests.delete(f"{base}/api/v1/status", timeout=10),
                   requests.post(f"{base}/api/v1/resync", data=b"{" + b" " * 70_000 + b"}", timeout=10,
                                 headers={"Authorization": f"Bearer {hr}", "Content-Type": "application/json"})]
        assert [a.status_code for a in answers] == [200, 404, 405, 413]
        for answer in answers:
            assert answer.headers["Content-Type"] == "application/json", answer.text
            assert isinstance(answer.json(), dict)
        assert "GET" in answers[0].json()["allow"] and "GET" in answers[2].headers["Allow"]


# -- the tokens file -------------------------------------------------------------------------------


def test_a_tokens_file_others_may_write_is_refused_at_start_at_sighup_and_while_running(bureau: Bureau) -> None:
    tokens_file = bureau.root / "tokens.toml"
    tokens_file.chmod(0o664)
    refused = bureau.start(wait=False)
    assert refused.wait_exit(STARTS_WITHIN) != 0
    assert "group- or world-writable (mode 0664)" in refused.log_text()
    tokens_file.chmod(0o600)
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    assert daemon.call("GET", "/api/v1/status", token="operator").status_code == 200
    tokens_file.chmod(0o606)
    mark = daemon.mark()
    assert daemon.call("GET", "/api/v1/status", token="operator").status_code == 401  # closed at once
    daemon.send(signal.SIGHUP)
    assert daemon.wait_for("config.reload_refused", after=mark)["problems"] == ["api.tokens_file"]
    tokens_file.chmod(0o600)
    assert daemon.call("GET", "/api/v1/status", token="operator").status_code == 200


def test_a_token_removed_by_an_edit_keeping_size_and_mtime_is_refused_by_the_running_daemon(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    assert daemon.call("GET", "/api/v1/status", token="hr").status_code == 200
    tokens_file = bureau.root / "tokens.toml"
    before = tokens_file.stat()
    text = tokens_file.read_text(encoding="utf-8")
    tokens_file.write_text(text.replace(hash_token(bureau.tokens["hr"]), hash_token("someone-else")), encoding="utf-8")
    os.utime(tokens_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert tokens_file.stat().st_size == before.st_size and tokens_file.stat().st_ino == before.st_ino
    assert daemon.call("GET", "/api/v1/status", token="hr").status_code == 401
    assert daemon.call("GET", "/api/v1/status", token="operator").status_code == 200


# -- the resync queue ------------------------------------------------------------------------------


@contextmanager
def served_without_resyncs(tmp_path: Path) -> Iterator[Console]:
    """The daemon's app over real HTTP with nobody carrying out resyncs: what is queued stays queued."""
    with bureau_at(tmp_path) as bureau:
        console = build_console(bureau)
        server = WsgiServer(console.app, "127.0.0.1", 0, threads=4, ident="syncd-queue-test").start()
        console.base_url = f"http://127.0.0.1:{server.port}"
        try:
            yield console
        finally:
            server.stop()
            console.daemon.engine.close()
            console.daemon.store.close()


def test_identical_resyncs_waiting_are_one_and_the_queue_is_capped_with_retry_after(tmp_path: Path) -> None:
    with served_without_resyncs(tmp_path) as console, requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {new_token(console, 'queue-hr', 'hr')}"
        base = console.base_url
        same = {http.post(f"{base}/api/v1/resync", json={"employee_id": "A000002"}, timeout=10).json()["id"]
                for _ in range(300)}
        everything = {http.post(f"{base}/api/v1/resync", json={"all": True, "full": True}, timeout=10).json()["id"]
                      for _ in range(100)}
        assert len(same) == 1 and len(everything) == 1
        # Not identical: another `full`, another person.
        assert http.post(f"{base}/api/v1/resync", json={"employee_id": "A000002", "full": True},
                         timeout=10).json()["id"] not in same
        waiting = [r for r in console.daemon.store.resyncs(limit=0) if r.status == "queued"]
        assert len(waiting) == 3
        statuses = [http.post(f"{base}/api/v1/resync", json={"employee_id": f"B{n:06d}"}, timeout=10).status_code
                    for n in range(MAX_QUEUED_RESYNCS)]
        assert statuses == [202] * (MAX_QUEUED_RESYNCS - 3) + [429] * 3
        refused = http.post(f"{base}/api/v1/resync", json={"department_id": "D0002"}, timeout=10)
        assert refused.status_code == 429 and refused.json()["error"] == "queue_full"
        assert int(refused.headers["Retry-After"]) > 0
        # An identical request is still answered with the one waiting, full queue or not.
        assert http.post(f"{base}/api/v1/resync", json={"employee_id": "A000002"}, timeout=10).status_code == 202
        assert len([r for r in console.daemon.store.resyncs(limit=0) if r.status == "queued"]) == MAX_QUEUED_RESYNCS
        with requests.Session() as browser:  # the console's 立即同步 says so in Chinese
            form = browser.get(f"{base}/signin", timeout=10)
            browser.post(f"{base}/signin", data={"csrf_token": csrf_of(form.text),
                                                 "token": new_token(console, "queue-page", "hr")}, timeout=10)
            page = browser.get(f"{base}/people/A000003", timeout=10)
            clicked = browser.post(f"{base}/people/A000003/resync", data={"csrf_token": csrf_of(page.text)},
                                   allow_redirects=False, timeout=10)
        assert clicked.status_code == 429 and "等待执行的同步请求过多" in clicked.text
        assert clicked.headers["Retry-After"] == refused.headers["Retry-After"]


# -- a server that cannot be starved ---------------------------------------------------------------


SLOW_CLIENTS = 150  # more than waitress's default connection limit (100)


def _healthz(daemon: DaemonProcess) -> int:
    with requests.get(f"{daemon.api}/healthz", timeout=5) as answer:
        return answer.status_code


def test_slow_clients_holding_connections_do_not_silence_healthz_and_are_dropped_at_the_deadline(
        bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            client = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            client.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
            slow.append(client)
        began = time.monotonic()
        # Each trickles a header line a second: waitress's idle timeout would never end them.
        while time.monotonic() - began < REQUEST_DEADLINE + 2 * SWEEP_SECONDS + 2:
            for client in slow:
                with contextlib.suppress(OSError):
                    client.sendall(b"X-Trickle: 1\r\n")
            assert _healthz(daemon) in (200, 503)  # answered while they hold their connections
            time.sleep(1)
        dropped = 0
        for client in slow:
            client.settimeout(5)
            try:
                dropped += client.recv(1) == b""  # the server closed it
            except (ConnectionResetError, TimeoutError):
                dropped += 1
        assert dropped == SLOW_CLIENTS
    finally:
        for client in slow:
            client.close()


def _open_temp_files(pid: int) -> list[str]:
    """Files the process holds open in the temporary directory (waitress spools large bodies there)."""
    fds = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            targets.append(os.readlink(fd))
    # tempfile.TemporaryFile: `/tmp/#1234 (deleted)` (O_TMPFILE) or `/tmp/tmpab12cd (deleted)`.
    return [t for t in targets if os.path.dirname(t.removesuffix(" (deleted)")) == tempfile.gettempdir()]


def test_a_300_mb_body_is_refused_from_its_headers_without_a_temp_file(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as client:
        client.sendall(b"POST /api/v1/resync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 300000000\r\n\r\n")
        with contextlib.suppress(OSError):  # the server may close before all of this is sent
            for _ in range(64):
                client.sendall(b"{" * 16_384)
                assert not _open_temp_files(daemon.pid)
        answer = b""
        # The server closes with our unread bytes in its buffer, so its kernel ends the connection with
        # a reset instead of a FIN: after the answer, a read may raise rather than return b"".
        with contextlib.suppress(ConnectionResetError):
            while chunk := client.recv(65_536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"Content-Type: application/json" in head and json.loads(body)["error"] == "request_entity_too_large"
    assert not _open_temp_files(daemon.pid)
    assert _healthz(daemon) in (200, 503)


def test_four_hung_directory_calls_leave_healthz_metrics_and_signing_in_answering(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"}, target={"timeout": 8, "retry_attempts": 1})
    daemon.wait_for("cycle.finished", trigger="start")
    bureau.admin.set_faults(latency=10)  # the gateway answers nothing within the daemon's timeout
    answers: list[requests.Response] = []

    def freeze() -> None:
        answers.append(requests.post(f"{daemon.api}/api/v1/people/A000002/freeze", timeout=30,
                                     headers={"Authorization": f"Bearer {bureau.tokens['operator']}"}))

    hung = [threading.Thread(target=freeze) for _ in range(4)]
    for thread in hung:
        thread.start()
    try:
        poll(lambda: len(answers) >= 2, 5, "the freezes past the directory's slots refused at once")
        assert [a.status_code for a in answers] == [503, 503]
        assert all(a.json()["error"] == "directory_busy" and int(a.headers["Retry-After"]) > 0 for a in answers)
        for _ in range(5):  # two freezes still wait for the directory
            assert _healthz(daemon) in (200, 503)
            assert daemon.call("GET", "/metrics").status_code == 200
            assert requests.get(f"{daemon.api}/signin", timeout=5).status_code == 200
        assert len(answers) == 2
    finally:
        for thread in hung:
            thread.join(timeout=30)
        bureau.admin.set_faults()
    late = [a for a in answers if a.status_code != 503]
    assert [a.status_code for a in late] == [502, 502]
    assert all("did not answer" in a.json()["message"] for a in late)

"""The daemon part of `syncd demo`: `syncd run` as a real process, an HR edit arriving on schedule,
an escalation when the gateway fails and its recovery notice, a reload, a resync through the HTTP
API, and a clean stop."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from pathlib import Path

import click
import requests
from flask import Flask, request

from connectors.zzd.simulator import SimAdmin
from syncd.config import load
from syncd.service.http import WsgiServer
from syncd.service.tokens import add_token

WAIT_SECONDS = 30.0
WEBHOOK_SECRET = "demo-webhook-secret"


class NoticeInbox:
    """The administrators' webhook receiver of the demo: keeps every notice whose signature checks out."""

    def __init__(self, secret: str) -> None:
        self.notices: list[dict[str, object]] = []
        self._secret = secret.encode()
        app = Flask("syncd-demo-inbox")
        app.add_url_rule("/notices", view_func=self._receive, methods=["POST"])
        self._server = WsgiServer(app, "127.0.0.1", 0, threads=2, ident="demo-inbox")
        self.url = ""

    def _receive(self) -> tuple[str, int]:
        body = request.get_data()
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Syncd-Signature", "")):
            return "bad signature", 401
        self.notices.append(json.loads(body))
        return "", 204

    def __enter__(self) -> NoticeInbox:
        self._server.start()
        self.url = f"http://127.0.0.1:{self._server.port}/notices"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], seconds: float = WAIT_SECONDS) -> float | None:
    """Poll until `check` holds; the seconds it took, or None when it never did."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def _set_post(people: Path, employee_id: str, post: str) -> None:
    with people.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    col = {name: i for i, name in enumerate(rows[0])}
    for row in rows[1:]:
        if row[col["工号"]] == employee_id:
            row[col["职务"]] = post
    with people.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _post_of(admin: SimAdmin, code: str) -> str | None:
    for employee in admin.directory()["employees"]:
        if employee["employeeCode"] == code:
            return next((p.get("govEmpPosJob") for p in employee["positions"] if p["mainJob"]), None)
    return None


def _in_post(people: Path, linked: Collection[str], count: int) -> list[str]:
    """The last `count` ordinary in-post people of the export who are in the directory."""
    with people.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["人员状态"] == "在职" and r["人员角色"] == "普通人员" and r["工号"] in linked]
    return [r["工号"] for r in rows[-count:]]


def run_daemon_demo(config_path: Path, admin: SimAdmin, inbox: NoticeInbox, serve: bool = False,
                    beside: Callable[[str], AbstractContextManager[Callable[[], bool]]] | None = None) -> bool:
    """Start `syncd run`, show an HR edit arrive on schedule and a resync through the API, then stop it.

    `beside(api)`: what else to show while the daemon runs (the city's view, reading this API): entered
    after the resync, left when the daemon stops; what it yields is called to show itself.
    """
    from syncd.state.store import StateStore

    config = load(config_path)
    workdir = config_path.parent
    assert config.api.tokens_file is not None
    token = add_token(config.api.tokens_file, "demo-hr-portal", "hr")
    console_token = add_token(config.api.tokens_file, "demo-operator", "operator")
    api = f"http://{config.api.listen}"
    log_path = workdir / "daemon.log"
    click.secho("\n== The daemon: `syncd run` syncing every 2 s, with the control API on " + api, bold=True)
    with log_path.open("w", encoding="utf-8") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "syncd.cli", "run", "--config", str(config_path)],
                                  stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    stack = contextlib.ExitStack()  # what runs beside the daemon stops before it
    try:
        if wait_until(lambda: healthy(api)) is None:
            click.secho(f"  the daemon did not come up; see {log_path}", fg="red")
            return False
        click.echo(f"  running as pid {daemon.pid}; GET {api}/healthz → ok")
        click.echo(f"  HR console (中文控制台): {api}/ — sign in with the operator token {console_token}")
        store = StateStore(config.state.url)
        links = store.links().people
        store.close()
        edited, resynced = _in_post(workdir / "people.csv", links, 2)

        _set_post(workdir / "people.csv", edited, "二级主任科员（演示）")
        click.echo(f"  HR edits people.csv: {edited} gets a new 职务")
        took = wait_until(lambda: _post_of(admin, links[edited].employee_code) == "二级主任科员（演示）")
        click.echo(f"  … in the directory {took:.1f} s later, by the next incremental cycle" if took is not None
                   else "  … did NOT arrive")

        escalated = _escalation_demo(workdir / "people.csv", edited, admin, inbox)

        config_path.write_text(config_path.read_text(encoding="utf-8").replace('incremental_every = "2s"',
                                                                               'incremental_every = "1h"'),
                               encoding="utf-8")
        daemon.send_signal(signal.SIGHUP)
        click.echo("  configuration changed to one cycle an hour; SIGHUP reloads it without a restart")
        time.sleep(1)

        _set_post(workdir / "people.csv", resynced, "科长（演示）")
        started = time.monotonic()
        answer = requests.post(f"{api}/api/v1/resync", json={"employee_id": resynced},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
        request_id = answer.json()["id"]
        click.echo(f"  HR edits {resynced} and its portal calls POST /api/v1/resync → {answer.status_code}, "
                   f"resync {request_id} queued")
        final: dict[str, object] = {}

        def finished() -> bool:
            final.update(requests.get(f"{api}/api/v1/resync/{request_id}",
                                      headers={"Authorization": f"Bearer {token}"}, timeout=10).json())
            return final.get("status") in ("done", "failed")

        wait_until(finished)
        arrived = _post_of(admin, links[resynced].employee_code) == "科长（演示）"
        click.echo(f"  … resync {final.get('status')} ({final.get('outcome')}) in "
                   f"{time.monotonic() - started:.1f} s; the directory {'holds' if arrived else 'does NOT hold'} "
                   "the new 职务")
        shown = True
        if beside is not None:
            extra = stack.enter_context(beside(api))
            shown = extra()
        if serve:
            # SIGTERM ends the look as Ctrl-C does: Python's default would end this process at once and
            # leave the daemon running; the `finally` below stops it.
            previous = signal.signal(signal.SIGTERM, _interrupt)
            try:
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the look; the daemon is stopped below
                    click.secho(f"\n  Serving until Ctrl-C: the console at {api}/ (token {console_token})",
                                bold=True)
                    if beside is not None:
                        click.echo("  … and what runs beside it (above) until then")
                    daemon.wait()
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        stack.close()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=15)
    click.echo(f"  SIGTERM: the daemon finished what was in flight and stopped with exit code {code} "
               f"(its log: {log_path.name}, kept with --keep DIR)")
    return code == 0 and took is not None and arrived and escalated and shown


def _interrupt(signum: int, frame: object) -> None:
    """A SIGTERM while serving: end the look as Ctrl-C does."""
    raise KeyboardInterrupt


def _escalation_demo(people: Path, employee_id: str, admin: SimAdmin, inbox: NoticeInbox) -> bool:
    """The gateway fails: the unit's admins hear of it (by webhook, since work notifications need the
    gateway), and hear again when it works."""
    admin.set_faults(error_share=1.0)
    _set_post(people, employee_id, "一级主任科员（演示）")
    click.echo("  the gateway starts failing (every call HTTP 500) while HR edits another 职务 …")
    opened = wait_until(lambda: any(n["state"] == "open" for n in inbox.notices))
    for notice in inbox.notices:
        click.echo(f"  … level-{notice['level']} notice by webhook: {notice['title']} (key {notice['key']})")
    admin.set_faults(error_share=0.0)
    click.echo("  the gateway recovers …")
    before = len(admin.notifications())
    resolved = wait_until(lambda: any(n["state"] == "resolved" for n in inbox.notices)
                      or len(admin.notifications()) > before)
    for message in admin.notifications()[before:]:
        text = json.loads(str(message["msg"]))["text"]["content"]
        click.echo(f"  … work notification to accounts {message['receiverIds']}: {text.splitlines()[0]}")
    return opened is not None and resolved is not None


def healthy(api: str) -> bool:
    try:
        return requests.get(f"{api}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False

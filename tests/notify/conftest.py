"""Fixtures of the notice channel tests: real local SMTP and HTTP servers, the simulator, sample notices."""

from __future__ import annotations

import email
import email.policy
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.notify.webhook import SIGNATURE_HEADER, signature
from syncd.reporting.notice import Notice, Recipient

# check-config's fixtures, for trying the channels (test_check_config_channels.py).
from tests.test_check_config import check, gateway  # noqa: F401

# The simulator fixtures of the connector tests, shared here (pytest finds them by name).
from tests.zzd.conftest import admin, client, connect, server, tenant  # noqa: F401

CST = timezone(timedelta(hours=8))
SMTP_USER = "syncd"
SMTP_PASSWORD = "smtp-pass"

ADMINS = (
    Recipient("管理员甲", account_id=9001, email="admin-a@zz.gov.example"),
    Recipient("管理员乙", account_id=9002, email="admin-b@zz.gov.example"),
)


def make_notice(**overrides: Any) -> Notice:
    """A level-1 `run_failed` notice in Chinese to two admins; keyword arguments override any field."""
    fields: dict[str, Any] = {
        "unit": "郑州市审计局", "level": 1, "kind": "run_failed", "key": "run_failed", "state": "open",
        "sequence": "1", "title": "【郑政钉同步】同步失败",
        "text": "自 2026-09-30 09:00 起同步连续失败 3 次，影响 12 条变更（部门 D0002、D0003）。\n"
                "请检查网关与密钥，修复后执行 syncd sync。",
        "since": datetime(2026, 9, 30, 9, 0, tzinfo=CST), "subjects": ("D0002", "D0003"),
        "recipients": ADMINS,
    }
    fields.update(overrides)
    return Notice.create(**fields)


@pytest.fixture
def notice() -> Notice:
    """A sample notice (see `make_notice`)."""
    return make_notice()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- SMTP ------------------------------------------------------------------------------------


@dataclass
class Mail:
    """One message the SMTP server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """A running aiosmtpd server and what it received."""

    host: str
    port: int
    received: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    ca_file: Path | None = None


class _Recorder:
    def __init__(self, smtp: SmtpServer) -> None:
        self._smtp = smtp

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._smtp.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


def _run_smtp(smtp: SmtpServer, **options: Any) -> Iterator[SmtpServer]:
    controller = Controller(_Recorder(smtp), hostname=smtp.host, port=smtp.port, **options)
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on a free loopback port, recording every message."""
    yield from _run_smtp(SmtpServer("127.0.0.1", free_port()))


@pytest.fixture
def smtp_tls_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS (self-signed certificate) and AUTH as SMTP_USER."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    smtp = SmtpServer("127.0.0.1", free_port(), ca_file=cert)

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER
              and data.password.decode() == SMTP_PASSWORD)
        if ok:
            smtp.logins.append(SMTP_USER)
        # handled=False: aiosmtpd answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False)

    yield from _run_smtp(smtp, tls_context=context, require_starttls=True, auth_required=True,
                         authenticator=authenticate)


# -- webhook ---------------------------------------------------------------------------------


@dataclass
class WebhookServer:
    """A running HTTP receiver that checks signatures with `secret_file` and records what it accepted."""

    url: str
    secret_file: Path
    status: int = 204  # what it answers to a well-signed request
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0


def _handler(receiver: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            secret = receiver.secret_file.read_text(encoding="utf-8").strip()
            # What a receiver must do: verify the raw bytes, in constant time, before parsing.
            if not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), signature(secret, body)):
                receiver.bad_signatures += 1
                self._answer(401)
                return
            receiver.headers.append(dict(self.headers.items()))
            receiver.received.append(json.loads(body.decode("utf-8")))
            self._answer(receiver.status)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[WebhookServer]:
    """A webhook receiver on a free loopback port, in a thread, with its secret in a file."""
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text("whsec-测试-1\n", encoding="utf-8")
    receiver = WebhookServer("", secret_file)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/syncd"
    thread = threading.Thread(target=httpd.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


WriteSecret = Callable[[str, str], Path]


@pytest.fixture
def write_secret(tmp_path: Path) -> WriteSecret:
    """Write a secret file under tmp_path: `write_secret(name, text)`."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write

"""`WebhookNotifier`: notices POSTed as signed JSON to a receiver of the operator's choice.

The body is `Notice.as_webhook_json()` as UTF-8 JSON; `X-Syncd-Signature: sha256=<hex>` is the
HMAC-SHA256 of exactly those bytes with the shared secret, so the receiver verifies the raw body
before parsing it. The secret file is re-read on every send, so rotating it needs no restart.
No retries here: the next channel takes a failed notice at once, and the escalation engine sends
it again on its next round.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import requests

from syncd.reporting.notice import Notice, NoticeError

CHANNEL = "webhook"
SIGNATURE_HEADER = "X-Syncd-Signature"


def body_of(notice: Notice) -> bytes:
    """The exact bytes POSTed for `notice`."""
    return json.dumps(notice.as_webhook_json(), ensure_ascii=False).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The `X-Syncd-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256 with `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """POSTs notices to one URL, signed with the secret in `secret_file`."""

    channel = CHANNEL

    def __init__(self, url: str, secret_file: Path, timeout: float = 10.0) -> None:
        self._url = url
        self._secret_file = secret_file
        self._timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def send(self, notice: Notice) -> None:
        """POST `notice`; raise NoticeError unless the receiver answers 2xx."""
        body = body_of(notice)
        try:
            secret = self._secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NoticeError(CHANNEL, f"secret file unreadable ({type(exc).__name__})") from exc
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body)}
        try:
            # A redirect would carry the signed notice somewhere nobody configured: it is a failure.
            response = self._session.post(self._url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.RequestException as exc:
            raise NoticeError(CHANNEL, type(exc).__name__) from exc
        if not 200 <= response.status_code < 300:
            raise NoticeError(CHANNEL, f"HTTP {response.status_code}")

"""Webhook notices against a real local HTTP receiver that checks the signature of the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from connectors.notify.webhook import WebhookNotifier, body_of, signature
from syncd.reporting.notice import Notice, NoticeError
from tests.notify.conftest import WebhookServer, WriteSecret, free_port


def test_a_notice_is_posted_as_signed_json_the_receiver_verifies(webhook_server: WebhookServer,
                                                                   notice: Notice) -> None:
    notifier = WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5)
    notifier.send(notice)
    notifier.close()
    assert webhook_server.bad_signatures == 0
    assert webhook_server.received == [notice.as_webhook_json()]
    assert webhook_server.headers[0]["Content-Type"] == "application/json"


def test_the_body_is_utf8_json_and_the_signature_is_the_hex_hmac_of_exactly_those_bytes(notice: Notice) -> None:
    body = body_of(notice)
    assert "同步失败".encode() in body  # Chinese as UTF-8, not \u escapes
    assert json.loads(body) == notice.as_webhook_json()
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_a_non_2xx_answer_is_a_notice_error(webhook_server: WebhookServer, notice: Notice) -> None:
    webhook_server.status = 500
    with pytest.raises(NoticeError) as info:
        WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5).send(notice)
    assert info.value.channel == "webhook" and info.value.message == "HTTP 500"


def test_a_redirect_is_not_followed_but_failed(webhook_server: WebhookServer, notice: Notice) -> None:
    webhook_server.status = 307
    with pytest.raises(NoticeError, match="HTTP 307"):
        WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5).send(notice)


def test_the_secret_is_re_read_on_every_send(webhook_server: WebhookServer, write_secret: WriteSecret,
                                             notice: Notice) -> None:
    ours = write_secret("ours.secret", webhook_server.secret_file.read_text(encoding="utf-8"))
    notifier = WebhookNotifier(webhook_server.url, ours, timeout=5)
    notifier.send(notice)
    ours.write_text("rotated", encoding="utf-8")  # rotated on our side only: the receiver refuses
    with pytest.raises(NoticeError, match="HTTP 401"):
        notifier.send(notice)
    webhook_server.secret_file.write_text("rotated", encoding="utf-8")  # and now on theirs
    notifier.send(notice)
    assert len(webhook_server.received) == 2 and webhook_server.bad_signatures == 1


def test_a_receiver_that_is_down_is_a_notice_error_naming_only_the_class(write_secret: WriteSecret,
                                                                           notice: Notice) -> None:
    notifier = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", write_secret("s", "k"), timeout=2)
    with pytest.raises(NoticeError) as info:
        notifier.send(notice)
    assert info.value.message == "ConnectionError"


def test_a_missing_secret_file_is_a_notice_error(webhook_server: WebhookServer, write_secret: WriteSecret,
                                                 notice: Notice) -> None:
    secret = write_secret("gone", "k")
    secret.unlink()
    with pytest.raises(NoticeError, match="FileNotFoundError"):
        WebhookNotifier(webhook_server.url, secret, timeout=5).send(notice)
    assert webhook_server.received == []

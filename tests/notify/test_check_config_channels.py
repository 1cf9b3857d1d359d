"""`syncd check-config` tries each escalation channel: the mail relay (EHLO, STARTTLS, login, nothing
sent) against aiosmtpd, the webhook (a signed test notice, only with --send-test-notice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import _toml
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer, free_port

Check = Callable[..., Result]


def escalation(channel: str, **table: object) -> str:
    """An [escalation] section using one channel, and that channel's table, as TOML text."""
    admins = '[{ name = "系统管理员", account_id = 1001, email = "admin@example.gov.cn" }]'
    lines = "".join(f"{key} = {_toml(value)}\n" for key, value in table.items())
    return (f'\n[escalation]\nunit_admins = {admins}\nhigher_admins = {admins}\nchannels = ["{channel}"]\n'
            f"\n[escalation.{channel}]\n{lines}")


def mail_relay(smtp: SmtpServer, tmp_path: Path, password: str) -> str:
    (tmp_path / "smtp-password").write_text(password + "\n")
    return escalation("email", host=smtp.host, port=smtp.port, starttls=True, sender="syncd@example.gov.cn",
                      username=SMTP_USER, password_file="smtp-password", ca_file=str(smtp.ca_file))


def webhook(receiver: WebhookServer) -> str:
    return escalation("webhook", url=receiver.url, secret_file=str(receiver.secret_file))


def test_the_mail_relay_takes_ehlo_starttls_and_the_login_and_nothing_is_sent(
        check: Check, smtp_tls_server: SmtpServer, tmp_path: Path) -> None:
    result = check(extra=mail_relay(smtp_tls_server, tmp_path, SMTP_PASSWORD))
    assert result.exit_code == 0, result.output
    assert "took EHLO, STARTTLS and the login" in result.output
    assert smtp_tls_server.logins == [SMTP_USER]
    assert smtp_tls_server.received == []


def test_a_login_the_relay_refuses_exits_2_naming_the_keys(
        check: Check, smtp_tls_server: SmtpServer, tmp_path: Path) -> None:
    result = check(extra=mail_relay(smtp_tls_server, tmp_path, "Wrong-Smtp-Pw"))
    assert result.exit_code == 2
    assert "escalation.email.username / password_file" in result.output and "refused the login" in result.output
    assert "Wrong-Smtp-Pw" not in result.output
    assert smtp_tls_server.logins == []


def test_a_relay_out_of_reach_exits_1(check: Check) -> None:
    port = free_port()
    result = check(extra=escalation("email", host="127.0.0.1", port=port, starttls=False,
                                    sender="syncd@example.gov.cn"))
    assert result.exit_code == 1
    assert f"escalation.email: the relay 127.0.0.1:{port} did not take a session" in result.output


def test_the_webhook_gets_nothing_without_send_test_notice(check: Check, webhook_server: WebhookServer) -> None:
    result = check(extra=webhook(webhook_server))
    assert result.exit_code == 0, result.output
    assert "--send-test-notice" in result.output
    assert webhook_server.received == [] and webhook_server.bad_signatures == 0


def test_send_test_notice_delivers_one_signed_test_notice(check: Check, webhook_server: WebhookServer) -> None:
    result = check("--send-test-notice", extra=webhook(webhook_server))
    assert result.exit_code == 0, result.output
    assert "accepted a signed test notice" in result.output
    assert webhook_server.bad_signatures == 0
    [notice] = webhook_server.received
    assert notice["kind"] == "test" and "测试通知" in notice["title"]


@pytest.mark.parametrize("status", [500, 404])
def test_a_webhook_that_does_not_answer_2xx_exits_1(check: Check, webhook_server: WebhookServer, status: int) -> None:
    webhook_server.status = status
    result = check("--send-test-notice", extra=webhook(webhook_server))
    assert result.exit_code == 1
    assert f"escalation.webhook.url: the signed test notice was not accepted (webhook: HTTP {status})" in result.output

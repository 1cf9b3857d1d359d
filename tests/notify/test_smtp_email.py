"""Email notices against a real local SMTP server (aiosmtpd): plain, and STARTTLS with login."""

from __future__ import annotations

import pytest

from connectors.notify.smtp_email import EmailNotifier
from syncd.config import EmailConfig
from syncd.reporting.notice import Notice, NoticeError, Recipient
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, WriteSecret, free_port, make_notice

SENDER = "syncd@zz.gov.example"


def plain(server: SmtpServer) -> EmailNotifier:
    return EmailNotifier(EmailConfig(host=server.host, port=server.port, starttls=False, sender=SENDER, timeout=5))


def test_a_notice_arrives_with_to_subject_and_a_chinese_utf8_body(smtp_server: SmtpServer, notice: Notice) -> None:
    plain(smtp_server).send(notice)
    [mail] = smtp_server.received
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ["admin-a@zz.gov.example", "admin-b@zz.gov.example"]
    message = mail.message
    assert message["To"] == "admin-a@zz.gov.example, admin-b@zz.gov.example"
    assert message["Subject"] == "【郑政钉同步】同步失败"
    assert message["Message-ID"] == f"<{notice.id}@zz.gov.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().rstrip("\n") == notice.text


def test_the_same_notice_sent_twice_carries_the_same_message_id(smtp_server: SmtpServer, notice: Notice) -> None:
    notifier = plain(smtp_server)
    notifier.send(notice)
    notifier.send(notice)
    assert len({mail.message["Message-ID"] for mail in smtp_server.received}) == 1


def test_recipients_without_an_address_are_left_out(smtp_server: SmtpServer) -> None:
    notice = make_notice(recipients=(Recipient("甲", account_id=1), Recipient("乙", email="b@zz.gov.example")))
    plain(smtp_server).send(notice)
    assert smtp_server.received[0].rcpt_tos == ["b@zz.gov.example"]


def test_no_recipient_with_an_address_is_a_notice_error(smtp_server: SmtpServer) -> None:
    with pytest.raises(NoticeError) as info:
        plain(smtp_server).send(make_notice(recipients=(Recipient("甲", account_id=1),)))
    assert info.value.channel == "email"
    assert smtp_server.received == []


def test_a_relay_that_is_down_is_a_notice_error_naming_only_the_class(notice: Notice) -> None:
    notifier = EmailNotifier(EmailConfig(host="127.0.0.1", port=free_port(), starttls=False, sender=SENDER, timeout=2))
    with pytest.raises(NoticeError) as info:
        notifier.send(notice)
    assert info.value.channel == "email"
    assert info.value.message == "ConnectionRefusedError"


def test_starttls_and_login_deliver_with_the_password_re_read_on_every_send(
    smtp_tls_server: SmtpServer, write_secret: WriteSecret, notice: Notice,
) -> None:
    password_file = write_secret("smtp.pass", SMTP_PASSWORD + "\n")
    notifier = EmailNotifier(EmailConfig(
        host=smtp_tls_server.host, port=smtp_tls_server.port, starttls=True, ca_file=smtp_tls_server.ca_file,
        username=SMTP_USER, password_file=password_file, sender=SENDER, timeout=5,
    ))
    notifier.send(notice)
    assert smtp_tls_server.logins == [SMTP_USER]
    assert smtp_tls_server.received[0].message["Subject"] == notice.title

    password_file.write_text("rotated-elsewhere", encoding="utf-8")
    with pytest.raises(NoticeError) as info:
        notifier.send(notice)
    assert info.value.message == "SMTPAuthenticationError"
    assert "rotated-elsewhere" not in str(info.value) and SMTP_USER not in str(info.value)


def test_a_relay_that_requires_starttls_refuses_a_plain_session(smtp_tls_server: SmtpServer, notice: Notice) -> None:
    with pytest.raises(NoticeError) as info:
        plain(smtp_tls_server).send(notice)
    assert info.value.message.startswith("SMTP")
    assert smtp_tls_server.received == []


def test_an_untrusted_certificate_is_refused(smtp_tls_server: SmtpServer, notice: Notice) -> None:
    notifier = EmailNotifier(EmailConfig(host=smtp_tls_server.host, port=smtp_tls_server.port, starttls=True,
                                         sender=SENDER, timeout=5))
    with pytest.raises(NoticeError) as info:
        notifier.send(notice)
    assert info.value.message == "SSLCertVerificationError"

"""`EmailNotifier`: notices by email over SMTP, with the standard library's smtplib and email packages.

One connection per notice: notices are rare, and a relay that dropped an idle connection between
two of them would only turn the second into a failure. The password file is re-read on every send,
so that rotating it needs no restart. Errors carry the exception class only: SMTP replies echo
addresses, and the library's messages may hold the login.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import structlog

from syncd.config import EmailConfig
from syncd.reporting.notice import Notice, NoticeError

log = structlog.get_logger(__name__)

CHANNEL = "email"


class EmailNotifier:
    """Sends notices by email to the recipients that have an address, through the relay of `[escalation.email]`."""

    channel = CHANNEL

    def __init__(self, config: EmailConfig) -> None:
        self._config = config

    def message(self, notice: Notice, addresses: list[str]) -> EmailMessage:
        """The email for `notice`: subject the title, body the text, UTF-8; Message-ID from the notice id."""
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = ", ".join(addresses)
        message["Subject"] = notice.title
        message["Date"] = formatdate(localtime=True)
        # The same notice sent twice carries the same Message-ID, so mail clients can drop the repeat.
        domain = parseaddr(self._config.sender)[1].rpartition("@")[2] or "syncd.invalid"
        message["Message-ID"] = f"<{notice.id}@{domain}>"
        # RFC 3834: no out-of-office replies to a machine.
        message["Auto-Submitted"] = "auto-generated"
        # base64, not 8bit: Chinese text must survive relays that do not speak 8BITMIME.
        message.set_content(notice.text, charset="utf-8", cte="base64")
        return message

    def send(self, notice: Notice) -> None:
        """Mail `notice` to its recipients' addresses; raise NoticeError when the relay does not take it."""
        addresses = list(dict.fromkeys(r.email for r in notice.recipients if r.email))
        if not addresses:
            raise NoticeError(CHANNEL, "no recipient has an email address")
        unreachable = sum(1 for r in notice.recipients if not r.email)
        if unreachable:
            log.warning("notice.unreachable", channel=CHANNEL, notice_id=notice.id, recipients=unreachable)
        message = self.message(notice, addresses)
        try:
            with self._session() as smtp:
                refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise NoticeError(CHANNEL, type(exc).__name__) from exc
        if refused:
            # The relay took the message for the others: delivered, but someone will not hear of it.
            log.warning("notice.recipients_refused", channel=CHANNEL, notice_id=notice.id, recipients=len(refused))

    def check(self) -> None:
        """Greet the relay (EHLO), STARTTLS and log in as configured, send nothing, and quit: the
        exception of the step that failed (smtplib's or OSError) as it is."""
        with self._session() as smtp:
            smtp.noop()

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        """A connection to the relay, greeted, encrypted and logged in as configured."""
        config = self._config
        password = config.password()
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            smtp.ehlo()
            if config.starttls:
                cafile = str(config.ca_file) if config.ca_file is not None else None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            if config.username is not None and password is not None:
                smtp.login(config.username, password)
            yield smtp

"""The channels that carry notices (`syncd.reporting.notice.Notifier`): work notification, email, webhook."""

from __future__ import annotations

from connectors.notify.smtp_email import EmailNotifier
from connectors.notify.webhook import WebhookNotifier
from connectors.notify.work_notification import WorkNotifier
from connectors.zzd.client import ContactsClient
from syncd.config import Config
from syncd.reporting.notice import Notifier

__all__ = ["EmailNotifier", "WebhookNotifier", "WorkNotifier", "build_notifiers"]


def build_notifiers(config: Config, client: ContactsClient | None) -> list[Notifier]:
    """The notifiers of `escalation.channels`, in that order; `client` carries work notifications."""
    escalation = config.escalation
    notifiers: list[Notifier] = []
    for channel in escalation.channels:
        if channel == "work_notification":
            if client is None:
                raise ValueError("escalation.channels lists work_notification but no contacts client was given")
            notifiers.append(WorkNotifier(client))
        elif channel == "email":
            assert escalation.email is not None  # validated: channel "email" requires [escalation.email]
            notifiers.append(EmailNotifier(escalation.email))
        else:
            assert escalation.webhook is not None  # validated: channel "webhook" requires [escalation.webhook]
            webhook = escalation.webhook
            notifiers.append(WebhookNotifier(webhook.url, webhook.secret_file, webhook.timeout))
    return notifiers

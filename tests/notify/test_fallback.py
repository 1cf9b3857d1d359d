"""The fallback: with the contacts gateway down, the work notification fails and the notice goes by webhook."""

from __future__ import annotations

from connectors.notify.webhook import WebhookNotifier
from connectors.notify.work_notification import WorkNotifier
from connectors.zzd.client import RetryPolicy
from connectors.zzd.simulator import SimAdmin
from syncd.reporting.notice import Delivery, Notice, send_first
from tests.notify.conftest import WebhookServer
from tests.zzd.conftest import Connect


def test_with_the_gateway_down_the_same_notice_arrives_by_webhook(
    connect: Connect, admin: SimAdmin, webhook_server: WebhookServer, notice: Notice,
) -> None:
    admin.set_faults(error_share=1.0)
    work = WorkNotifier(connect(retry=RetryPolicy.instant(attempts=3)))
    webhook = WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5)

    deliveries = send_first([work, webhook], notice)

    assert deliveries == [Delivery("work_notification", False, "TransientError unavailable HTTP 500"),
                          Delivery("webhook", True)]
    assert [body["id"] for body in webhook_server.received] == [notice.id]
    assert admin.counters()["calls"]["/message/workNotification"] == 3  # retried, then given up
    admin.set_faults()
    assert admin.notifications() == []


def test_with_the_gateway_up_the_webhook_is_not_used(connect: Connect, admin: SimAdmin,
                                                     webhook_server: WebhookServer, notice: Notice) -> None:
    work = WorkNotifier(connect())
    webhook = WebhookNotifier(webhook_server.url, webhook_server.secret_file, timeout=5)
    assert send_first([work, webhook], notice) == [Delivery("work_notification", True)]
    assert webhook_server.received == []
    assert len(admin.notifications()) == 1

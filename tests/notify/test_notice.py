"""Notices: deterministic ids, the published webhook shape, and `send_first` trying channels in order."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
import structlog

from syncd.config import Admin
from syncd.reporting.notice import WEBHOOK_KEYS, Delivery, Notice, NoticeError, Recipient, recipients_of, send_first
from tests.notify.conftest import make_notice


class FakeNotifier:
    """A channel at the edge of the test: delivers, or fails with a given cause."""

    def __init__(self, channel: str, fail_with: Exception | None = None) -> None:
        self.channel = channel
        self.fail_with = fail_with
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> None:
        if self.fail_with is not None:
            raise NoticeError(self.channel, type(self.fail_with).__name__) from self.fail_with
        self.sent.append(notice)


def test_the_same_notice_built_again_has_the_same_id() -> None:
    assert make_notice().id == make_notice(title="另一个标题", text="措辞不同").id


@pytest.mark.parametrize("change", [{"unit": "金水区审计局"}, {"level": 2}, {"key": "auth_failed"},
                                    {"state": "reminder"}, {"sequence": "2"}], ids=lambda c: next(iter(c)))
def test_the_id_differs_by_unit_level_key_state_and_sequence(change: dict[str, object]) -> None:
    assert make_notice(**change).id != make_notice().id


def test_the_webhook_json_has_exactly_the_published_keys_and_no_recipients(notice: Notice) -> None:
    body = notice.as_webhook_json()
    assert tuple(body) == WEBHOOK_KEYS
    assert body["since"] == "2026-09-30T09:00:00+08:00"
    assert body["subjects"] == ["D0002", "D0003"]
    assert body["level"] == 1 and body["state"] == "open"
    assert not any("管理员" in str(value) or "@" in str(value) for value in body.values())


@pytest.mark.parametrize("change", [{"kind": "exploded"}, {"state": "closed"}, {"level": 3},
                                    {"since": datetime(2026, 9, 30, 9, 0)}, {"key": ""}],
                         ids=["kind", "state", "level", "naive_since", "empty_key"])
def test_a_notice_refuses_what_receivers_could_not_read(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_notice(**change)


def test_recipients_come_from_the_configured_admins() -> None:
    admins = [Admin(name="甲", account_id=1, email="a@example.org"), Admin(name="乙")]
    assert recipients_of(admins) == (Recipient("甲", 1, "a@example.org"), Recipient("乙", None, None))


def test_send_first_stops_at_the_first_channel_that_delivers(notice: Notice) -> None:
    first, second, third = FakeNotifier("work_notification"), FakeNotifier("email"), FakeNotifier("webhook")
    assert send_first([first, second, third], notice) == [Delivery("work_notification", True)]
    assert first.sent == [notice] and not second.sent and not third.sent


def test_a_notice_that_fails_on_one_channel_goes_out_on_the_next(notice: Notice) -> None:
    down = FakeNotifier("work_notification", fail_with=ConnectionError())
    webhook = FakeNotifier("webhook")
    deliveries = send_first([down, webhook], notice)
    assert deliveries == [Delivery("work_notification", False, "ConnectionError"), Delivery("webhook", True)]
    assert webhook.sent == [notice]


def test_attempts_are_logged_without_the_text_names_or_addresses(notice: Notice) -> None:
    with structlog.testing.capture_logs() as logs:
        send_first([FakeNotifier("email", fail_with=TimeoutError()), FakeNotifier("webhook")], notice)
    failed, sent = logs
    assert failed["event"] == "notice.failed" and failed["error"] == "TimeoutError"
    assert {k: failed[k] for k in ("channel", "kind", "key", "level")} == {
        "channel": "email", "kind": "run_failed", "key": "run_failed", "level": 1}
    assert sent["event"] == "notice.sent" and sent["channel"] == "webhook"
    shown = repr(logs)
    for secret in (notice.text, notice.title, "管理员甲", "admin-a@zz.gov.example"):
        assert secret not in shown


def test_when_every_channel_fails_every_attempt_is_returned_and_logged_as_undelivered(notice: Notice) -> None:
    channels = [FakeNotifier("work_notification", fail_with=OSError()), FakeNotifier("email", fail_with=OSError())]
    with structlog.testing.capture_logs() as logs:
        deliveries = send_first(channels, notice)
    assert [d.ok for d in deliveries] == [False, False]
    assert logs[-1]["event"] == "notice.undelivered" and logs[-1]["channels"] == ["work_notification", "email"]


def test_a_notice_is_immutable(notice: Notice) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        notice.text = "改"  # type: ignore[misc]

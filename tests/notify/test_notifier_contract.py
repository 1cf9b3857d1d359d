"""Every channel implements the `syncd.reporting.notice.Notifier` contract, checked in one place."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.notify import EmailNotifier, WebhookNotifier, WorkNotifier
from connectors.zzd.client import RetryPolicy
from syncd.config import EmailConfig, EscalationConfig
from syncd.reporting.notice import Notice, NoticeError, Notifier
from tests.notify.conftest import free_port
from tests.zzd.conftest import Connect

CHANNELS = typing.get_args(typing.get_args(EscalationConfig.model_fields["channels"].annotation)[0])

# Each channel pointed at a loopback port where nothing listens.
Unreachable = Callable[[Connect, Path], Notifier]
UNREACHABLE: dict[str, Unreachable] = {
    "work_notification": lambda connect, _tmp: WorkNotifier(
        connect(base_url=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy.instant(attempts=1))),
    "email": lambda _connect, _tmp: EmailNotifier(EmailConfig(
        host="127.0.0.1", port=free_port(), starttls=False, sender="syncd@zz.gov.example", timeout=2)),
    "webhook": lambda _connect, tmp: WebhookNotifier(f"http://127.0.0.1:{free_port()}/", _secret(tmp), timeout=2),
}


def _secret(tmp: Path) -> Path:
    path = tmp / "webhook.secret"
    path.write_text("k", encoding="utf-8")
    return path


def test_every_configurable_channel_has_a_notifier() -> None:
    assert set(UNREACHABLE) == set(CHANNELS)
    assert {cls.channel for cls in (WorkNotifier, EmailNotifier, WebhookNotifier)} == set(CHANNELS)


@pytest.mark.parametrize("cls", [WorkNotifier, EmailNotifier, WebhookNotifier], ids=lambda c: c.__name__)
def test_each_notifier_offers_send_with_the_contract_parameters(cls: type) -> None:
    expected = list(inspect.signature(Notifier.send).parameters)
    assert list(inspect.signature(cls.send).parameters) == expected


@pytest.mark.parametrize("channel", sorted(UNREACHABLE))
def test_each_notifier_raises_notice_error_with_its_channel_and_no_personal_data(
    channel: str, connect: Connect, tmp_path: Path, notice: Notice,
) -> None:
    notifier = UNREACHABLE[channel](connect, tmp_path)
    with pytest.raises(NoticeError) as info:
        notifier.send(notice)
    assert info.value.channel == notifier.channel == channel
    shown = str(info.value)
    for private in (notice.text, notice.title, "管理员甲", "admin-a@zz.gov.example", "9001"):
        assert private not in shown

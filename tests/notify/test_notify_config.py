"""`[escalation.email]` and `[escalation.webhook]`: validated at load, and `build_notifiers` in channel order."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.notify import EmailNotifier, WebhookNotifier, WorkNotifier, build_notifiers
from connectors.zzd.client import ContactsClient
from syncd.config import ConfigError, load
from tests.conftest import config_toml

EMAIL = '[escalation.email]\nhost = "smtp.zz.gov.example"\nsender = "syncd@zz.gov.example"\n'
WEBHOOK = '[escalation.webhook]\nurl = "https://hooks.zz.gov.example/syncd"\nsecret_file = "webhook.secret"\n'


def write(tmp_path: Path, channels: str, *sections: str) -> Path:
    (tmp_path / "webhook.secret").write_text("k", encoding="utf-8")
    (tmp_path / "smtp.pass").write_text("p", encoding="utf-8")
    path = tmp_path / "syncd.toml"
    path.write_text(config_toml() + f"[escalation]\nchannels = {channels}\n" + "".join(sections), encoding="utf-8")
    return path


@pytest.mark.parametrize("channel", ["email", "webhook"])
def test_a_channel_without_its_section_is_an_error_naming_the_key(tmp_path: Path, channel: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, f'["work_notification", "{channel}"]'))
    assert [p.key for p in info.value.problems] == [f"escalation.{channel}"]
    assert f"[escalation.{channel}]" in str(info.value)


def test_secret_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    email = EMAIL + 'username = "syncd"\npassword_file = "smtp.pass"\n'
    config = load(write(tmp_path, '["email", "webhook"]', email, WEBHOOK))
    assert config.escalation.email is not None and config.escalation.webhook is not None
    assert config.escalation.email.password_file == tmp_path / "smtp.pass"
    assert config.escalation.email.password() == "p"
    assert config.escalation.webhook.secret_file == tmp_path / "webhook.secret"
    assert config.escalation.email.port == 587 and config.escalation.email.starttls is True


def test_a_password_in_the_file_itself_is_refused_and_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, '["email"]', EMAIL + 'username = "syncd"\npassword = "hunter2"\n'))
    keys = {p.key for p in info.value.problems}
    assert "escalation.email.password" in keys
    assert "hunter2" not in str(info.value)


def test_a_username_without_a_password_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, '["email"]', EMAIL + 'username = "syncd"\n'))
    assert [p.key for p in info.value.problems] == ["escalation.email.password_file"]


def test_a_missing_webhook_secret_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, '["webhook"]', WEBHOOK.replace("webhook.secret", "nope")))
    assert [p.key for p in info.value.problems] == ["escalation.webhook.secret_file"]


def test_notifiers_are_built_in_the_order_of_the_channels(tmp_path: Path) -> None:
    config = load(write(tmp_path, '["webhook", "work_notification", "email"]', EMAIL, WEBHOOK))
    with ContactsClient("http://127.0.0.1:1", "k", lambda: "s", 1, "syncd") as client:
        notifiers = build_notifiers(config, client)
    assert [type(n) for n in notifiers] == [WebhookNotifier, WorkNotifier, EmailNotifier]
    assert [n.channel for n in notifiers] == list(config.escalation.channels)


def test_work_notification_without_a_client_is_refused(tmp_path: Path) -> None:
    config = load(write(tmp_path, '["work_notification", "webhook"]', WEBHOOK))
    with pytest.raises(ValueError, match="work_notification"):
        build_notifiers(config, None)

"""Work notices against the simulated gateway over HTTP (zzd-api.md §6)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.notify.work_notification import ELLIPSIS, MAX_MSG_BYTES, WorkNotifier, text_message
from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator import SimAdmin
from syncd.reporting.notice import Notice, NoticeError, Recipient
from tests.notify.conftest import make_notice


def content(delivered: dict[str, object]) -> str:
    msg = json.loads(str(delivered["msg"]))
    assert msg["msgtype"] == "text"
    return str(msg["text"]["content"])


def test_a_notice_reaches_the_recipients_accounts_as_title_and_text(client: ContactsClient, admin: SimAdmin,
                                                                      notice: Notice) -> None:
    WorkNotifier(client).send(notice)
    [delivered] = admin.notifications()
    assert delivered["bizMsgId"] == f"{notice.id}-0"
    assert delivered["receiverIds"] == ["9001", "9002"]
    assert content(delivered) == f"{notice.title}\n{notice.text}"


def test_a_long_notice_is_cut_on_a_character_to_2048_bytes_ending_with_an_ellipsis(
    client: ContactsClient, admin: SimAdmin,
) -> None:
    text = "变更未入通讯录：" + "、".join(f"A{n:06d}" for n in range(600))
    notice = make_notice(kind="overdue", key="overdue:2026-10-13", text=text)
    WorkNotifier(client).send(notice)
    [delivered] = admin.notifications()
    sent = content(delivered)
    assert len(str(delivered["msg"]).encode("utf-8")) <= MAX_MSG_BYTES
    assert sent.endswith(ELLIPSIS)
    assert f"{notice.title}\n{notice.text}".startswith(sent[:-1])
    # As much as fits: one more character would not.
    assert len(str(delivered["msg"]).encode("utf-8")) > MAX_MSG_BYTES - len("、".encode()) - len(ELLIPSIS.encode())


@given(title=st.text(max_size=40), text=st.text(max_size=400))
def test_a_text_message_always_fits_and_keeps_a_prefix_of_the_content(title: str, text: str) -> None:
    msg = text_message(title, text, limit=200)
    assert len(msg.encode("utf-8")) <= 200
    sent = json.loads(msg)["text"]["content"]
    full = f"{title}\n{text}"
    assert sent == full or (sent.endswith(ELLIPSIS) and full.startswith(sent[:-1]))


def test_more_than_1000_receivers_go_in_batches_of_1000_with_their_own_biz_msg_id(
    client: ContactsClient, admin: SimAdmin,
) -> None:
    recipients = tuple(Recipient(f"管理员{n}", account_id=100000 + n) for n in range(2500))
    notice = make_notice(recipients=recipients)
    WorkNotifier(client).send(notice)
    delivered = {n["bizMsgId"]: n["receiverIds"] for n in admin.notifications()}
    assert {key: len(ids) for key, ids in delivered.items()} == {
        f"{notice.id}-0": 1000, f"{notice.id}-1": 1000, f"{notice.id}-2": 500}
    assert sorted(int(i) for ids in delivered.values() for i in ids) == [100000 + n for n in range(2500)]


def test_a_notice_sent_again_is_a_duplicate_and_counts_as_delivered(client: ContactsClient, admin: SimAdmin,
                                                                      notice: Notice) -> None:
    notifier = WorkNotifier(client)
    notifier.send(notice)
    notifier.send(replace(notice, resend=True))  # a resend after a crash: refused by bizMsgId, no error
    assert len(admin.notifications()) == 1
    assert client.calls["/message/workNotification"] == 2


def test_a_duplicate_answer_to_a_notice_never_tried_before_is_not_a_delivery(client: ContactsClient,
                                                                             admin: SimAdmin, notice: Notice) -> None:
    # Someone else's message took the id (a restored state reusing ids): the next channel must carry it.
    WorkNotifier(client).send(notice)
    with pytest.raises(NoticeError) as info:
        WorkNotifier(client).send(notice)
    assert "duplicate_message" in info.value.message
    assert len(admin.notifications()) == 1


def test_recipients_without_an_account_are_left_out_and_none_at_all_is_a_notice_error(
    client: ContactsClient, admin: SimAdmin,
) -> None:
    notifier = WorkNotifier(client)
    notifier.send(make_notice(recipients=(Recipient("甲", account_id=7), Recipient("乙", email="b@example.org"))))
    assert admin.notifications()[0]["receiverIds"] == ["7"]
    with pytest.raises(NoticeError) as info:
        notifier.send(make_notice(key="other", recipients=(Recipient("乙", email="b@example.org"),)))
    assert info.value.channel == "work_notification"


def test_a_failing_gateway_is_a_notice_error_naming_the_category_not_the_text(client: ContactsClient,
                                                                               admin: SimAdmin,
                                                                               notice: Notice) -> None:
    admin.set_faults(error_share=1.0)
    with pytest.raises(NoticeError) as info:
        WorkNotifier(client).send(notice)
    assert info.value.message == "TransientError unavailable HTTP 500"
    assert notice.text not in str(info.value)
    admin.set_faults()
    assert admin.notifications() == []

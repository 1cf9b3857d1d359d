"""`WorkNotifier`: notices as Zhengzhengding work notifications (zzd-api.md §6).

A text message to the recipients' accountIds, at most 1000 a call. Each call's `bizMsgId` is the
notice id and the batch's index, so re-sending a notice (after a crash, or after one batch of
several failed) is refused as a duplicate for the batches that went out, which counts as
delivered, and goes out for the rest. A duplicate counts as delivered only for a notice the
engine has tried before (`Notice.resend`): for a first attempt it means the id was used by a
message this state does not know of (a restored state), so the next channel must carry it.
"""

from __future__ import annotations

import json

import structlog

from connectors.zzd.client import ContactsClient
from connectors.zzd.errors import Category, ZzdError
from syncd.domain.target import TargetError
from syncd.reporting.notice import Notice, NoticeError

log = structlog.get_logger(__name__)

CHANNEL = "work_notification"
MAX_MSG_BYTES = 2048
MAX_RECEIVERS = 1000
ELLIPSIS = "…"


def _msg(content: str) -> str:
    # The exact text sent: the client passes a str through unchanged, so the byte count below is
    # the byte count on the wire (before form encoding, which is what the platform limits).
    return json.dumps({"msgtype": "text", "text": {"content": content}}, ensure_ascii=False, separators=(",", ":"))


def _size(content: str) -> int:
    return len(_msg(content).encode("utf-8"))


def text_message(title: str, text: str, limit: int = MAX_MSG_BYTES) -> str:
    """The `msg` JSON of a text notification; content cut on a character, ending "…", to fit `limit` bytes."""
    content = f"{title}\n{text}"
    if _size(content) <= limit:
        return _msg(content)
    # The size grows with every character kept (JSON escapes included), so the longest prefix
    # that fits is found by bisection over characters, never splitting one.
    low, high = 0, len(content)
    while low < high:
        middle = (low + high + 1) // 2
        if _size(content[:middle] + ELLIPSIS) <= limit:
            low = middle
        else:
            high = middle - 1
    cut = content[:low].rstrip() + ELLIPSIS
    if _size(cut) > limit:
        raise ValueError(f"a text message does not fit in {limit} bytes")
    return _msg(cut)


class WorkNotifier:
    """Sends notices as work notifications through the contacts API, to recipients with an account id."""

    channel = CHANNEL

    def __init__(self, client: ContactsClient) -> None:
        self._client = client

    def send(self, notice: Notice) -> None:
        """Send `notice` to its recipients' accounts in batches of 1000; raise NoticeError if a batch fails."""
        receivers = list(dict.fromkeys(r.account_id for r in notice.recipients if r.account_id is not None))
        if not receivers:
            raise NoticeError(CHANNEL, "no recipient has an account id")
        unreachable = sum(1 for r in notice.recipients if r.account_id is None)
        if unreachable:
            log.warning("notice.unreachable", channel=CHANNEL, notice_id=notice.id, recipients=unreachable)
        msg = text_message(notice.title, notice.text)
        for index, start in enumerate(range(0, len(receivers), MAX_RECEIVERS)):
            self._send_batch(f"{notice.id}-{index}", msg, receivers[start:start + MAX_RECEIVERS], notice)

    def _send_batch(self, biz_msg_id: str, msg: str, receivers: list[int], notice: Notice) -> None:
        try:
            self._client.work_notification(biz_msg_id, msg, receiver_ids=receivers)
        except ZzdError as exc:
            if exc.category is Category.DUPLICATE_MESSAGE and notice.resend:
                # This batch went out on an earlier attempt: delivered, not a failure.
                log.info("notice.duplicate", channel=CHANNEL, notice_id=notice.id, biz_msg_id=biz_msg_id)
                return
            if exc.category is Category.DUPLICATE_MESSAGE:
                log.warning("notice.duplicate_unknown", channel=CHANNEL, notice_id=notice.id, biz_msg_id=biz_msg_id)
            raise NoticeError(CHANNEL, f"{type(exc).__name__} {exc.category.value} {exc.code}") from exc
        except TargetError as exc:
            raise NoticeError(CHANNEL, type(exc).__name__) from exc

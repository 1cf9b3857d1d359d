"""Notices to administrators and the channels that carry them (DESIGN.md §7).

The engine builds a `Notice` and hands it to `send_first` with the notifiers of
`escalation.channels` in order: the first channel that delivers it ends the attempt, so a notice
that cannot go one way goes another (the contacts API may be the very thing that is down).
Channels live in `connectors/notify/`; this module knows none of them.

A notice's `id` is derived from which problem it is about (unit, level, key, state and the
engine's `sequence`: the problem's random token and the notice's number), never from the clock nor
from a database row id, which a restored state hands out again: sending the same notice again, after
a crash or a failed attempt, gives the same id, and every channel passes it on (work notification
`bizMsgId`, email `Message-ID`, webhook `id`) so that the receiver can drop the repeat. `resend`
says an earlier attempt of that id is on record: only then is a receiver's "duplicate" a delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

import structlog

from syncd.config import Admin

log = structlog.get_logger(__name__)

Kind = Literal["run_failed", "auth_failed", "held", "records", "refused", "overdue", "quarantined", "calendar",
               "digest", "test", "source_incomplete", "state_unwritable"]
State = Literal["open", "reminder", "resolved"]
Level = Literal[1, 2]

KINDS: tuple[str, ...] = get_args(Kind)
STATES: tuple[str, ...] = get_args(State)
LEVELS: tuple[int, ...] = get_args(Level)

# The webhook body's keys, in this order: the contract published to receivers (issue 9).
WEBHOOK_KEYS = ("id", "unit", "level", "kind", "key", "state", "title", "text", "since", "subjects")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One administrator a notice goes to: by work notification (account_id) or email."""

    name: str
    account_id: int | None = None
    email: str | None = None


def recipients_of(admins: Iterable[Admin]) -> tuple[Recipient, ...]:
    """The recipients of an escalation level configured as `escalation.unit_admins` / `higher_admins`."""
    return tuple(Recipient(admin.name, admin.account_id, admin.email) for admin in admins)


def notice_id(unit: str, level: int, key: str, state: str, sequence: str) -> str:
    """The deterministic id of a notice: the same problem, level, state and sequence give the same id."""
    # The unit is part of it because units share a tenant, and bizMsgId is unique per tenant; the
    # level because the level-2 notice of a problem is a different message from its level-1 one.
    text = "\x1f".join((unit, str(level), key, state, sequence))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Notice:
    """One message about one problem to one escalation level; `text` is Chinese and says what to do."""

    id: str
    unit: str
    level: Level
    kind: Kind
    key: str
    state: State
    title: str
    text: str
    since: datetime
    subjects: tuple[str, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    resend: bool = False  # an earlier attempt of this id is recorded: a "duplicate" answer means delivered

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {self.state!r}")
        if not self.id or not self.key:
            raise ValueError("id and key must not be empty")
        # A naive time means a different moment to every receiver outside this host's zone.
        if self.since.tzinfo is None or self.since.utcoffset() is None:
            raise ValueError("since must carry a time zone")

    @classmethod
    def create(
        cls, *, unit: str, level: Level, kind: Kind, key: str, state: State, sequence: str, title: str,
        text: str, since: datetime, subjects: Iterable[str] = (), recipients: Iterable[Recipient] = (),
        resend: bool = False,
    ) -> Notice:
        """A notice whose id is `notice_id(unit, level, key, state, sequence)`."""
        return cls(
            id=notice_id(unit, level, key, state, sequence), unit=unit, level=level, kind=kind, key=key,
            state=state, title=title, text=text, since=since, subjects=tuple(subjects),
            recipients=tuple(recipients), resend=resend,
        )

    def as_webhook_json(self) -> dict[str, Any]:
        """The webhook body as a JSON-able dict: exactly the keys of `WEBHOOK_KEYS`, no recipients."""
        return {
            "id": self.id, "unit": self.unit, "level": self.level, "kind": self.kind, "key": self.key,
            "state": self.state, "title": self.title, "text": self.text, "since": self.since.isoformat(),
            "subjects": list(self.subjects),
        }


class NoticeError(Exception):
    """A channel could not deliver a notice; the message names the failure, never the text or a recipient."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.message = message


class Notifier(Protocol):
    """A channel that delivers notices: `send` returns when delivered, or raises NoticeError."""

    channel: str

    def send(self, notice: Notice) -> None:
        """Deliver `notice` to its recipients; raise NoticeError when it cannot."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to send a notice on one channel: `error` is empty when it went out."""

    channel: str
    ok: bool
    error: str = ""


def send_first(notifiers: Sequence[Notifier], notice: Notice) -> list[Delivery]:
    """Try the channels in order until one delivers; return every attempt (the last is the success, if any)."""
    deliveries: list[Delivery] = []
    for notifier in notifiers:
        fields = {"channel": notifier.channel, "notice_id": notice.id, "kind": notice.kind, "key": notice.key,
                  "level": notice.level, "state": notice.state}
        try:
            notifier.send(notice)
        except NoticeError as exc:
            cause = exc.__cause__
            log.warning("notice.failed", **fields, error=type(cause or exc).__name__)
            deliveries.append(Delivery(notifier.channel, False, exc.message))
            continue
        log.info("notice.sent", **fields)
        deliveries.append(Delivery(notifier.channel, True))
        return deliveries
    log.error("notice.undelivered", notice_id=notice.id, kind=notice.kind, key=notice.key, level=notice.level,
              state=notice.state, channels=[n.channel for n in notifiers])
    return deliveries

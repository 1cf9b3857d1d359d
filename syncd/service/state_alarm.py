"""A state that cannot be written (a full disk, a read-only file, a lock, a database gone away), heard anyway.

Escalation keeps its problems in the state, so it cannot tell of the state itself: every cycle
would fail to store the problem it opens and nobody would hear. The alarm lives in memory
instead: each failure is logged (`state.unwritable`, with the database's own reason), level 1 is
told once by a notice sent straight through the channels, `/healthz` says why, and the first
write that works again resolves it (with a resolved notice when the open one went out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from syncd.config import Config
from syncd.reporting.messages import PROBLEM_TITLES, duration_text, notice_text, notice_title
from syncd.reporting.notice import Notice, Notifier, State, recipients_of, send_first
from syncd.state import StateUnavailable

log = structlog.get_logger(__name__)

KEY = "state_unwritable"
RETRY_S = 60.0  # an open notice no channel delivered is tried again after this
# The database out of reach (down, restarting, a dropped connection, no pooled connection free), as
# opposed to a statement it refused: asking again later may succeed.
OUT_OF_REACH = (OperationalError, InterfaceError, PoolTimeout)


def database_reason(exc: SQLAlchemyError) -> str:
    """The database's own words for the failure (`database or disk is full`), first line only."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def unreachable(exc: SQLAlchemyError) -> StateUnavailable:
    """A database out of reach (one of `OUT_OF_REACH`) as the StateUnavailable the API and the console answer 503."""
    return StateUnavailable(database_reason(exc), refused=False)


class StateAlarm:
    """Whether the state can be written now; an outage logged and told to level 1 once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._since: datetime | None = None
        self._told = False
        self._tried = -RETRY_S  # time.monotonic() of the last try to tell level 1

    @property
    def reason(self) -> str | None:
        """Why the state cannot be written, None while it can."""
        return self._reason

    def failed(self, exc: SQLAlchemyError, config: Config, notifiers: Sequence[Notifier], doing: str) -> None:
        """A write (or the connection for one) failed: log it, and tell level 1 unless already told."""
        reason = database_reason(exc)
        with self._lock:
            # Once per outage (and again when the reason changes): the resync poller fails every second.
            if reason != self._reason:
                log.error("state.unwritable", reason=reason, error=type(exc).__name__, doing=doing)
            else:
                log.debug("state.still_unwritable", reason=reason, doing=doing)
            self._reason = reason
            if self._since is None:
                self._since = datetime.now(UTC)
            if self._told or time.monotonic() - self._tried < RETRY_S:
                return
            self._tried = time.monotonic()
            self._told = self._send(config, notifiers, "open", notice_text(
                "state_unwritable.what", unit=config.unit.name, error=reason) + "\n"
                + notice_text("open.action", action=notice_text("state_unwritable.action")))

    def succeeded(self, config: Config, notifiers: Sequence[Notifier]) -> None:
        """A write went through: an open alarm is resolved (and level 1 told, when it heard of it)."""
        if self._reason is None:
            return
        with self._lock:
            if self._reason is None or self._since is None:
                return
            since, told = self._since, self._told
            log.info("state.writable_again", was=self._reason, since=since.isoformat())
            if told:
                zone = ZoneInfo(config.schedule.timezone)
                now = datetime.now(UTC)
                self._send(config, notifiers, "resolved", notice_text(
                    "resolved", unit=config.unit.name, what=PROBLEM_TITLES[KEY], key=KEY,
                    opened=since.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    resolved=now.astimezone(zone).strftime("%Y-%m-%d %H:%M"), duration=duration_text(now - since)))
            self._reason, self._since, self._told, self._tried = None, None, False, -RETRY_S

    def _send(self, config: Config, notifiers: Sequence[Notifier], state: State, text: str) -> bool:
        """Send one notice straight through the channels; whether one delivered it."""
        assert self._since is not None
        recipients = recipients_of(config.escalation.unit_admins)
        # As the escalation judges it: work notification and email need recipients, a webhook does not.
        if not notifiers or not (recipients or any(n.channel == "webhook" for n in notifiers)):
            return False
        notice = Notice.create(
            unit=config.unit.name, level=1, kind="state_unwritable", key=KEY, state=state,
            # One outage, one id per state: a channel that sees the open notice twice can drop it.
            sequence=str(int(self._since.timestamp())), title=notice_title(state, KEY, config.unit.name), text=text,
            since=self._since.astimezone(ZoneInfo(config.schedule.timezone)),
            recipients=recipients)
        return any(delivery.ok for delivery in send_first(notifiers, notice))

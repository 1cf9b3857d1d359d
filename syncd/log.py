"""Logging: structlog configured once, stdlib loggers through the same formatter, personal data masked.

Personnel data is controlled information (郑审〔2021〕44号 Article 15): unless
`logging.show_personal_data` is on, values under personal keys are replaced and any text that looks
like a mobile or an ID-card number is masked wherever it appears in an event.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

PERSONAL_KEYS = frozenset({
    "name", "employee_name", "employeeName", "mobile", "mobiles", "govEmpCellPhoneNo", "phone",
    "office_phone", "id_card", "姓名", "手机号", "办公电话", "leader_duties",
})
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
_ID_CARD = re.compile(r"(?<![\dXx])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dXx])")
MASK = "***"


def mask_text(text: str) -> str:
    """Text with anything shaped like a mobile or an ID-card number replaced."""
    return _MOBILE.sub(MASK, _ID_CARD.sub(MASK, text))


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: MASK if k in PERSONAL_KEYS else _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_mask_value(v) for v in value]
    return value


def mask_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace personal fields and mobile/ID-card shaped text."""
    for key, value in list(event_dict.items()):
        event_dict[key] = MASK if key in PERSONAL_KEYS else _mask_value(value)
    return event_dict


def keep_escalation_level(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: a caller's `level` (an escalation level) becomes `escalation_level`, so the
    log level written after it does not overwrite it."""
    if "level" in event_dict:
        event_dict["escalation_level"] = event_dict.pop("level")
    return event_dict


def name_foreign_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor for stdlib records (APScheduler, urllib3, Python warnings): a stable event
    name, the library's text under `message` (it may hold times and ids: it is no event name)."""
    if event_dict.get("_from_structlog") is False:
        record = event_dict.get("_record")
        event_dict["message"] = str(event_dict.get("event", ""))
        event_dict["event"] = "python.warning" if record is not None and record.name == "py.warnings" \
            else "third_party.log"
    return event_dict


class RepeatLimiter:
    """structlog processor: a warning or error identical to one logged less than `window` seconds ago
    is dropped; the next one let through says how many were (`repeated`). A failure every second then
    costs a line a minute, and a different failure still shows at once."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # key → (last written, dropped since)

    def __call__(self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Drop the event (structlog.DropEvent) or let it through."""
        if method not in ("warning", "error", "critical", "exception"):
            return event_dict
        key = repr(sorted((k, repr(v)) for k, v in event_dict.items() if k != "timestamp"))
        now = self._clock()
        with self._lock:
            last, dropped = self._seen.get(key, (None, 0))
            if last is not None and now - last < self._window:
                self._seen[key] = (last, dropped + 1)
                raise structlog.DropEvent
            if len(self._seen) > 10_000:  # bounded: forget what is past its window
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._window}
            self._seen[key] = (now, 0)
        if dropped:
            event_dict["repeated"] = dropped
        return event_dict


def configure(fmt: str = "auto", level: str = "info", show_personal_data: bool = False) -> None:
    """Configure structlog and the stdlib root logger once; call again to reconfigure."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        keep_escalation_level,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
    ]
    if not show_personal_data:
        shared.append(mask_personal_data)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, RepeatLimiter(), *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[name_foreign_event, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    # Python's warnings as JSON lines too (`python.warning`), not bare text; re-armed on every call, as
    # whatever replaced `warnings.showwarning` since (a test runner) would otherwise keep it.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # urllib3 at debug would print full URLs and headers; it is only useful when debugging transport.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    # Alembic and APScheduler narrate every migration check and job run at info; the daemon logs its own
    # scheduler events (skipped, coalesced, failed), so only their warnings matter to an operator.
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))

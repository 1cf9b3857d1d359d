"""Logging: structlog configured once, stdlib loggers through the same formatter, personal data masked.

Personnel data is controlled information (郑审〔2021〕44号 Article 15): unless
`logging.show_personal_data` is on, values under personal keys are replaced and any text that looks
like a mobile or an ID-card number is masked wherever it appears in an event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
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


def configure(fmt: str = "auto", level: str = "info", show_personal_data: bool = False) -> None:
    """Configure structlog and the stdlib root logger once; call again to reconfigure."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
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
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # urllib3 at debug would print full URLs and headers; it is only useful when debugging transport.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    # Alembic and APScheduler narrate every migration check and job run at info; the daemon logs its own
    # scheduler events (skipped, coalesced, failed), so only their warnings matter to an operator.
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))

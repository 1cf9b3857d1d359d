"""Error categories of zzd-api.md §3 and the one place where responses become data or typed errors.

Codes map to categories through one table (`CodeTable`): the defaults below, extended or
overridden by configuration (`[target] error_codes = {code = "category"}`), because the real
tenant's codes are learned on first contact. A code nobody knows is `invalid`: failing that one
object is safe, retrying an unknown refusal is not.

Messages carried by the exceptions are the server's text with every personal value of the
request (names, mobiles, phones) and anything shaped like a mobile or ID-card number masked, so
an exception can be logged or journaled as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError

from syncd.domain.target import TargetError
from syncd.log import MASK, mask_text


class Category(StrEnum):
    """What kind of failure a code means, and so what the caller does (zzd-api.md §3)."""

    AUTH = "auth"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    SCOPE = "scope"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"
    STATE = "state"
    DUPLICATE_MESSAGE = "duplicate_message"


class ZzdError(TargetError):
    """A refused or failed call: `category` (§3), the platform's `code`, a message free of personal data."""

    def __init__(self, category: Category, code: str, message: str, path: str = "") -> None:
        super().__init__(f"{category.value} {code} on {path or '?'}: {message}")
        self.category = category
        self.code = code
        self.message = message
        self.path = path


class AuthError(ZzdError):
    """Configuration or clock problem (key, secret, timestamp): stop the run and escalate, never retry."""


class TransientError(ZzdError):
    """Throttled or unavailable: retry later.

    `maybe_applied` is False only when the request certainly did not reach the service (throttled
    at the gateway, connection refused): only then may a write be re-sent without looking first.
    """

    def __init__(
        self, category: Category, code: str, message: str, path: str = "",
        retry_after: float | None = None, maybe_applied: bool = True,
    ) -> None:
        super().__init__(category, code, message, path)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class ScopeError(ZzdError):
    """The organisation is outside the app's scope: record the failure on that object, do not retry."""


class NotFoundError(ZzdError):
    """The object is gone: re-resolve the link, then re-create if it is truly gone."""


class ConflictError(ZzdError):
    """Another object holds the mobile, name or extOrgCode: adopt it if it is the same, else report."""


class InvalidError(ZzdError):
    """A bug or a bad record: fail this object with the message, never retry."""


class StateError(ZzdError):
    """The directory is not in the state the call needs (not empty, already inactive …): re-plan."""


class DuplicateMessageError(ZzdError):
    """The notice with this bizMsgId was already delivered: treat as success."""


ERROR_CLASSES: Mapping[Category, type[ZzdError]] = {
    Category.AUTH: AuthError,
    Category.THROTTLED: TransientError,
    Category.UNAVAILABLE: TransientError,
    Category.SCOPE: ScopeError,
    Category.NOT_FOUND: NotFoundError,
    Category.CONFLICT: ConflictError,
    Category.INVALID: InvalidError,
    Category.STATE: StateError,
    Category.DUPLICATE_MESSAGE: DuplicateMessageError,
}

# HTTP failures without a recognisable body get the code `HTTP <status>`, so configuration can
# re-map them like any platform code.
DEFAULT_CODES: Mapping[str, Category] = {
    "SignatureDoesNotMatch": Category.AUTH,
    "OPF-B001-05-16-0009": Category.AUTH,
    "InvalidApiKey": Category.AUTH,
    "InvalidTimestamp": Category.AUTH,
    "NonceReused": Category.AUTH,
    "Throttling.User": Category.THROTTLED,
    "HTTP 429": Category.THROTTLED,
    "HTTP 503": Category.THROTTLED,
    "300037": Category.SCOPE,
    "MFH-B003-02-16-0037": Category.SCOPE,
    "SIM-EMP-NOT-FOUND": Category.NOT_FOUND,
    "SIM-ORG-NOT-FOUND": Category.NOT_FOUND,
    "SIM-PARENT-NOT-FOUND": Category.NOT_FOUND,
    "SIM-POSITION-NOT-FOUND": Category.NOT_FOUND,
    "SIM-ACCOUNT-NOT-FOUND": Category.NOT_FOUND,
    "SIM-MOBILE-EXISTS": Category.CONFLICT,
    "SIM-ORG-NAME-DUP": Category.CONFLICT,
    "SIM-EXT-CODE-EXISTS": Category.CONFLICT,
    "SIM-POSITION-EXISTS": Category.CONFLICT,
    "SIM-PARAM-MISSING": Category.INVALID,
    "SIM-PARAM-INVALID": Category.INVALID,
    "SIM-PAGE-SIZE": Category.INVALID,
    "SIM-LIST-TOO-LONG": Category.INVALID,
    "ApiNotFound": Category.INVALID,
    "SIM-ORG-NOT-EMPTY": Category.STATE,
    "SIM-EMP-INACTIVE": Category.STATE,
    "SIM-EMP-ACTIVE": Category.STATE,
    "SIM-LAST-POSITION": Category.STATE,
    "SIM-BIZMSGID-DUP": Category.DUPLICATE_MESSAGE,
}


class CodeTable:
    """The code → category table: the defaults, extended or overridden by configuration."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        known = {c.value for c in Category}
        bad = {code: name for code, name in (overrides or {}).items() if name not in known}
        if bad:
            raise ValueError(f"unknown error categories {bad}; expected one of {sorted(known)}")
        self._codes: dict[str, Category] = dict(DEFAULT_CODES)
        self._codes.update({code: Category(name) for code, name in (overrides or {}).items()})

    def category(self, *codes: str | None) -> Category | None:
        """The category of the first of `codes` that the table knows, or None."""
        for code in codes:
            if code and code in self._codes:
                return self._codes[code]
        return None


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful call's `content.data` and its paging fields (None when the call is not paged)."""

    data: Any
    current_page: int | None = None
    page_size: int | None = None
    total_size: int | None = None


def unwrap(
    path: str, send: Callable[[], requests.Response], codes: CodeTable, personal: Collection[str] = (),
) -> Reply:
    """Send one request and return its data, or raise the typed error for what went wrong.

    The only place where transport failures, HTTP statuses, gateway errors and business errors
    are told apart. `personal` holds the request's personal values, masked in any message.
    """
    try:
        response = send()
    except requests.ConnectionError as exc:
        raise TransientError(
            Category.UNAVAILABLE, type(exc).__name__, "connection failed", path,
            maybe_applied=not _never_sent(exc),
        ) from exc
    except requests.Timeout as exc:
        raise TransientError(Category.UNAVAILABLE, type(exc).__name__, "no response in time", path) from exc
    except requests.RequestException as exc:
        raise TransientError(Category.UNAVAILABLE, type(exc).__name__, "request failed", path) from exc

    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code == 200:
            raise TransientError(Category.UNAVAILABLE, "BadResponse", "response is not a JSON object", path)
        raise _http_error(path, response, codes)

    if body.get("success") is not True:
        code = str(body.get("Code") or body.get("code") or "")
        biz = str(body.get("bizErrorCode") or "")
        category = codes.category(code, biz)
        if category is None:
            if response.status_code != 200:
                raise _http_error(path, response, codes, code or biz)
            category = Category.INVALID
        message = _clean(str(body.get("Message") or body.get("message") or ""), personal)
        raise _error(category, code or biz or f"HTTP {response.status_code}", message, path, response)

    content = body.get("content")
    if not isinstance(content, dict):
        raise TransientError(Category.UNAVAILABLE, "BadResponse", "response has no content object", path)
    if content.get("success") is not True:
        code = str(content.get("responseCode") or "")
        biz = str(body.get("bizErrorCode") or "")
        category = codes.category(code, biz) or Category.INVALID
        message = _clean(str(content.get("responseMessage") or ""), personal)
        raise _error(category, code or biz or "unknown", message, path, response)
    return Reply(
        data=content.get("data"),
        current_page=_int(content.get("currentPage")),
        page_size=_int(content.get("pageSize")),
        total_size=_int(content.get("totalSize")),
    )


def _http_error(path: str, response: requests.Response, codes: CodeTable, code: str = "") -> ZzdError:
    status = response.status_code
    http_code = f"HTTP {status}"
    category = codes.category(http_code)
    if category is None:
        if status >= 500:
            category = Category.UNAVAILABLE
        elif status in (401, 403):
            category = Category.AUTH
        else:
            category = Category.INVALID
    return _error(category, code or http_code, f"HTTP status {status}", path, response)


def _error(category: Category, code: str, message: str, path: str, response: requests.Response) -> ZzdError:
    cls = ERROR_CLASSES[category]
    if cls is TransientError:
        # A request throttled by the gateway itself (429 or its Throttling.User envelope) was turned
        # away before the service saw it. A bare 503 may come from a balancer behind which the write
        # landed: throttled for pacing, but maybe applied.
        turned_away = category is Category.THROTTLED and code != "HTTP 503"
        return TransientError(
            category, code, message, path,
            retry_after=retry_after(response.headers.get("Retry-After")),
            maybe_applied=not turned_away,
        )
    return cls(category, code, message, path)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _never_sent(exc: requests.ConnectionError) -> bool:
    # Only a connection that was never established proves the request did not land; urllib3
    # reports it as a ConnectTimeoutError (NewConnectionError is one) inside MaxRetryError.
    if isinstance(exc, requests.ConnectTimeout):
        return True
    inner = exc.args[0] if exc.args else None
    return isinstance(getattr(inner, "reason", None), ConnectTimeoutError)


def _clean(message: str, personal: Collection[str]) -> str:
    for value in sorted((v for v in personal if v), key=len, reverse=True):
        message = message.replace(value, MASK)
    return mask_text(message)[:300]


def _int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None

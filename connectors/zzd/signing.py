"""Request signing of the Zhengzhengding gateway (zzd-api.md §1).

The same functions sign requests in the client and verify them in the simulator, so the two can
only agree with each other by also agreeing with the binding test vectors of §1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone

SIGNATURE_VERSION = "1.0"
CHINA_TZ = timezone(timedelta(hours=8))

# A parameter value as the client holds it: one value, or a list sent as repeated keys.
ParamValue = str | int | Iterable[str]
Params = Mapping[str, ParamValue]

HEADER_API_KEY = "apiKey"
HEADER_TIMESTAMP = "X-Hmac-Auth-Timestamp"
HEADER_NONCE = "X-Hmac-Auth-Nonce"
HEADER_VERSION = "X-Hmac-Auth-Version"
HEADER_SIGNATURE = "X-Hmac-Auth-Signature"


def param_pairs(params: Params) -> list[tuple[str, str]]:
    """The (key, value) pairs that are signed and sent: lists expanded, empty names and values dropped."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if not key:
            continue
        values = [value] if isinstance(value, str | int) else list(value)
        pairs.extend((key, str(v)) for v in values if str(v) != "")
    return pairs


def canonical_params(pairs: Iterable[tuple[str, str]]) -> str:
    """`key=value` joined by `&`: keys case-insensitively ordered, a repeated key's values ascending."""
    kept = [(key, value) for key, value in pairs if key and value]
    # Keys that differ only in case keep a stable order by falling back to the exact key.
    kept.sort(key=lambda pair: (pair[0].lower(), pair[0], pair[1]))
    return "&".join(f"{key}={value}" for key, value in kept)


def string_to_sign(method: str, timestamp: str, nonce: str, path: str, pairs: Iterable[tuple[str, str]]) -> str:
    """METHOD, timestamp, nonce, path and (when any parameter remains) the canonical parameters."""
    parts = [method.upper(), timestamp, nonce, path]
    canonical = canonical_params(pairs)
    if canonical:
        parts.append(canonical)
    return "\n".join(parts)


def signature(secret: str, text: str) -> str:
    """base64(HMAC-SHA256(secret, text)), both UTF-8."""
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def make_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 with milliseconds and the +08:00 offset, e.g. `2026-11-25T09:30:00.000+08:00`."""
    moment = now if now is not None else datetime.now(UTC)
    return moment.astimezone(CHINA_TZ).isoformat(timespec="milliseconds")


# The 4 digits after the milliseconds: a counter from a random start, not a fresh random number, so
# that concurrent calls of one process in the same millisecond never share a nonce (random digits
# did, about once in 10,000 such pairs, and the gateway refused the second as NonceReused).
_SEQUENCE = itertools.count(secrets.randbelow(10_000))


def make_nonce(now_ms: int | None = None) -> str:
    """13-digit epoch milliseconds followed by 4 digits that differ for every call of this process."""
    millis = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    return f"{millis:013d}{next(_SEQUENCE) % 10_000:04d}"


def signed_headers(
    app_key: str, secret: str, method: str, path: str, pairs: Iterable[tuple[str, str]],
    now: datetime | None = None,
) -> dict[str, str]:
    """The five gateway headers for one request."""
    moment = now if now is not None else datetime.now(UTC)
    timestamp = make_timestamp(moment)
    nonce = make_nonce(int(moment.timestamp() * 1000))
    return {
        HEADER_API_KEY: app_key,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_VERSION: SIGNATURE_VERSION,
        HEADER_SIGNATURE: signature(secret, string_to_sign(method, timestamp, nonce, path, pairs)),
    }

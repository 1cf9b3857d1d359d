"""Bearer tokens for the control API and the console: a TOML file of hashed tokens with roles.

The file holds only SHA-256 hashes, so reading it does not reveal a token; the token itself is
printed once by `syncd token add`. The daemon re-reads the file when it changes, so adding or
removing a token needs no restart.

```toml
[[token]]
name = "hr-portal"
role = "hr"            # auditor: read status and compliance | hr: resync too | operator: everything
sha256 = "<hex SHA-256 of the token>"
```
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
import time
import tomllib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import structlog

log = structlog.get_logger(__name__)

Role = Literal["hr", "operator", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)
_ENTRY_KEYS = frozenset({"name", "role", "sha256", "created"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Names end up in logs and in `requested_by`; letters (any script), digits and . _ @ - keep them readable.
_NAME = re.compile(r"^[\w.@-]{1,64}$")
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0  # seconds
MAX_ADDRESSES = 10_000  # addresses whose failures are remembered; the oldest are forgotten first


class TokensError(ValueError):
    """The tokens file is malformed, or a token cannot be added to it; the message names the file."""


@dataclass(frozen=True, slots=True)
class Token:
    """Who presented a valid token: the entry's name and role."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class _Entry:
    token: Token
    digest: bytes


def hash_token(token: str) -> str:
    """The hex SHA-256 the tokens file stores for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(path: Path, text: str) -> list[_Entry]:
    """The entries of a tokens file, or TokensError naming the file and the entry at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokensError(f"{path}: not valid TOML: {exc}") from exc
    if unknown := set(data) - {"token"}:
        raise TokensError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected only [[token]] entries")
    raw = data.get("token", [])
    if not isinstance(raw, list):
        raise TokensError(f"{path}: `token` must be an array of tables ([[token]]), got {type(raw).__name__}")
    entries: list[_Entry] = []
    names: set[str] = set()
    digests: set[str] = set()
    for number, item in enumerate(raw, start=1):
        entries.append(_parse_entry(path, number, item, names, digests))
    return entries


def _parse_entry(path: Path, number: int, item: Any, names: set[str], digests: set[str]) -> _Entry:
    """One `[[token]]` table, checked; `names` and `digests` collect what earlier entries used."""
    where = f"{path}: [[token]] entry {number}"
    if not isinstance(item, dict):
        raise TokensError(f"{where}: must be a table, got {type(item).__name__}")
    name = item.get("name")
    if isinstance(name, str):
        where = f"{where} ({name!r})"
    if unknown := set(item) - _ENTRY_KEYS:
        raise TokensError(f"{where}: unknown key(s) {sorted(unknown)}; expected name, role, sha256, created")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokensError(f"{where}: `name` must be 1-64 letters, digits or . _ @ -, got {name!r}")
    if name in names:
        raise TokensError(f"{where}: duplicate name {name!r}")
    role = item.get("role")
    if role not in ROLES:
        raise TokensError(f"{where}: `role` must be one of {', '.join(ROLES)}, got {role!r}")
    digest = item.get("sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
        raise TokensError(f"{where}: `sha256` must be 64 hex digits (the SHA-256 of the token)")
    digest = digest.lower()
    # Two names for one token would make `requested_by` depend on file order.
    if digest in digests:
        raise TokensError(f"{where}: the same token hash appears in an earlier entry")
    created = item.get("created")
    if created is not None and not isinstance(created, datetime):
        raise TokensError(f"{where}: `created` must be a TOML date-time, got {created!r}")
    names.add(name)
    digests.add(digest)
    return _Entry(Token(name, role), bytes.fromhex(digest))


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when it does not exist; TokensError when it cannot be read or others may write it."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISREG(mode) and mode & 0o022:
                # Whoever may write the file may grant themselves the operator role.
                raise TokensError(f"{path}: group- or world-writable (mode {stat.S_IMODE(mode):04o}); "
                                  f"refused: make it writable by its owner only (chmod 600 {path})")
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokensError(f"{path}: cannot be read: {exc.strerror}") from exc


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokensError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def load_tokens(path: Path) -> list[Token]:
    """The tokens a file grants (no hashes), or TokensError; a missing file grants none."""
    data = _read_bytes(path)
    return [] if data is None else [entry.token for entry in _parse(path, _decode(path, data))]


class TokenStore:
    """The tokens file, read again at every look-up and parsed again whenever its content changes.

    The content is compared by its SHA-256, not by size and modification time: an edit that keeps
    both (or a file replaced within the same clock tick) still takes effect at the next request,
    so a removed token stops working at once, and there is nothing left for SIGHUP to refresh.
    """

    def __init__(self, path: Path | None) -> None:
        """Load `path` now, so a malformed or group/world-writable file stops the daemon at start (TokensError)."""
        self.path = path
        self._lock = threading.Lock()
        self._digest: bytes | None = None  # SHA-256 of the content parsed; None: no file
        self._entries: list[_Entry] = []
        self._error: str | None = None  # the last reload failure logged, so a broken file is logged once
        if path is not None:
            data = _read_bytes(path)
            if data is None:
                log.warning("tokens.file_missing", path=str(path))
            else:
                self._entries = _parse(path, _decode(path, data))
                self._digest = hashlib.sha256(data).digest()

    def _refresh(self) -> None:
        """Parse the file again if its content changed since the last read."""
        if self.path is None:
            return
        try:
            data = _read_bytes(self.path)
        except TokensError as exc:
            self._fail_closed(None, exc)
            return
        digest = None if data is None else hashlib.sha256(data).digest()
        if digest == self._digest and self._error is None:
            return
        with self._lock:
            if digest == self._digest and self._error is None:
                return
            try:
                entries = [] if data is None else _parse(self.path, _decode(self.path, data))
            except TokensError as exc:
                self._fail_closed(digest, exc)
                return
            self._entries, self._digest, self._error = entries, digest, None
        log.info("tokens.reloaded", path=str(self.path), count=len(entries))

    def _fail_closed(self, digest: bytes | None, exc: TokensError) -> None:
        """Accept no token until the file is readable and valid again."""
        # Keeping the old tokens could keep a token valid that was just removed from the file.
        self._entries, self._digest = [], digest
        if str(exc) != self._error:
            self._error = str(exc)
            log.error("tokens.reload_failed", path=str(self.path), error=str(exc))

    def lookup(self, token: str) -> Token | None:
        """The entry granted by this token, or None."""
        self._refresh()
        digest = hashlib.sha256(token.encode()).digest()
        found: Token | None = None
        # Compare against every entry without stopping early, so timing does not tell which one matched.
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.token
        return found

    def holds(self, name: str, role: str, fingerprint: str) -> bool:
        """Whether the file still grants a token `name` with `role` whose hex SHA-256 begins with `fingerprint`."""
        self._refresh()
        return bool(fingerprint) and any(
            entry.token.name == name and entry.token.role == role and entry.digest.hex().startswith(fingerprint)
            for entry in self._entries)


class FailureLimiter:
    """Wrong tokens per client address within a sliding window: the console's sign-in and the API's bearer.

    An address is limited while its last `max_failures` wrong tokens all lie within the last `window`
    seconds (so a flood stays limited). The limit is for wrong tokens only: a right token is always accepted (a flood
    of guesses from HR's own proxy must not lock HR out) and does not lift the limit for the guesser
    behind the same proxy. Tokens are too long to guess, so the limit's job is to keep floods out of
    the log and tell a misconfigured client to stop.
    """

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """A limiter on `clock` (monotonic seconds; tests move their own)."""
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        # address → the times of its last `max_failures` failures (and how many more came while limited)
        self._failures: OrderedDict[str, tuple[deque[float], int]] = OrderedDict()

    def _recent(self, address: str, now: float) -> tuple[deque[float], int]:
        times, beyond = self._failures.get(address, (deque(maxlen=self.max_failures), 0))
        while times and now - times[0] >= self.window:
            times.popleft()
        return times, beyond if len(times) >= self.max_failures else 0

    def retry_after(self, address: str) -> float:
        """Seconds until a wrong token from `address` is looked at again; 0 when it is not limited."""
        with self._lock:
            now = self._clock()
            times, _ = self._recent(address, now)
            if len(times) < self.max_failures:
                return 0.0
            return self.window - (now - times[0])

    def failed(self, address: str) -> int:
        """Count a wrong token; how many the address has sent in a row (1 … `max_failures` before the limit)."""
        with self._lock:
            now = self._clock()
            times, beyond = self._recent(address, now)
            if len(times) >= self.max_failures:
                beyond += 1
            times.append(now)
            self._failures[address] = (times, beyond)
            self._failures.move_to_end(address)  # most recent last, so the oldest are forgotten first
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
            return len(times) + beyond


def add_token(path: Path, name: str, role: str) -> str:
    """Append a new token for `name` with `role` to the tokens file (created 0600) and return it."""
    if not _NAME.match(name):
        raise TokensError(f"{path}: token name must be 1-64 letters, digits or . _ @ -, got {name!r}")
    if role not in ROLES:
        raise TokensError(f"{path}: role must be one of {', '.join(ROLES)}, got {role!r}")
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        # Two `syncd token add` at once must not both pass the duplicate check.
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            text = handle.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokensError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        existing = _parse(path, text)
        if any(entry.token.name == name for entry in existing):
            raise TokensError(f"{path}: a token named {name!r} already exists; choose another name")
        created = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        # json.dumps gives a valid TOML basic string for any name (quotes and backslashes escaped).
        entry = (f"[[token]]\nname = {json.dumps(name, ensure_ascii=False)}\nrole = {json.dumps(role)}\n"
                 f'sha256 = "{hash_token(token)}"\ncreated = {created}\n')
        separator = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        handle.seek(0, os.SEEK_END)
        handle.write((separator + entry).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return token

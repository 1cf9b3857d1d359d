"""Signing in to the console: an API token exchanged once for a session cookie, and the role checks.

A token (role hr or operator, from the API's tokens file) is presented once on the sign-in form and
never stored: the session, a cookie Flask signs with the daemon's secret key, holds the token's
name, its role, a fingerprint of its hash and when it was signed in. Every request checks that
the session is under eight hours old and that its token is still in the tokens file, so removing a
token from the file ends its sessions too. The role check is the API's own (`role_allows`, the
same grants `requires` applies); the decorated view is marked with its role like an API view.

Failed sign-ins are counted per remote address: past `MAX_FAILURES` within `FAILURE_WINDOW` the
address is refused without looking at what it sent, until the window has passed. Behind a reverse
proxy every user has the proxy's address, so the limit then applies to them together.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
import tomllib
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import structlog
from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

from syncd.service.api import EXTENSION, ApiServices, role_allows
from syncd.service.tokens import ROLES, Role, Token

log = structlog.get_logger(__name__)

CONSOLE_EXTENSION = "syncd.console"
SESSION_LIFETIME = timedelta(hours=8)
SESSION_COOKIE = "syncd_console"
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0  # seconds
MAX_ADDRESSES = 10_000  # addresses whose failures are remembered; the oldest are forgotten first
MAX_NEXT_LENGTH = 2048  # a `next` longer than any console URL is refused
# A `next`: `/` alone, or `/` then anything but another separator (`//host` is another site).
_NEXT = re.compile(r"/(?:[^/\\].*)?", re.DOTALL)
_FINGERPRINT = 16  # hex digits of the token's SHA-256 kept in the session

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


class SignInLimiter:
    """Failed sign-ins per remote address within a sliding window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may now."""
        with self._lock:
            now = self._clock()
            failures = self._recent(address, now)
            if len(failures) < self.max_failures:
                return 0.0
            return self.window - (now - failures[-self.max_failures])

    def failed(self, address: str) -> int:
        """Count a failed sign-in; how many the address has within the window."""
        with self._lock:
            now = self._clock()
            failures = self._recent(address, now)
            failures.append(now)
            self._failures.pop(address, None)
            self._failures[address] = failures  # most recent last, so the oldest are forgotten first
            while len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
            return len(failures)

    def succeeded(self, address: str) -> None:
        """A good sign-in forgets the address's failures."""
        with self._lock:
            self._failures.pop(address, None)


class _Grants:
    """The (name, role, hash fingerprint) entries of the tokens file, re-read when the file changes."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._entries: frozenset[tuple[str, str, str]] = frozenset()

    def holds(self, name: str, role: str, fingerprint: str) -> bool:
        """Whether the file still grants this token (a file that cannot be read grants nothing)."""
        if self._path is None:
            return False
        try:
            st = self._path.stat()
        except OSError:
            return False
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if signature != self._signature:
                self._entries = self._read()
                self._signature = signature
            return (name, role, fingerprint) in self._entries

    def _read(self) -> frozenset[tuple[str, str, str]]:
        assert self._path is not None
        try:
            data = tomllib.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return frozenset()  # the API's TokenStore fails closed on such a file too
        entries = data.get("token", [])
        if not isinstance(entries, list):
            return frozenset()
        return frozenset((str(e.get("name")), str(e.get("role")), str(e.get("sha256", "")).lower()[:_FINGERPRINT])
                         for e in entries if isinstance(e, dict))


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, `Secure` whenever the request came over HTTPS (or always, when asked)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request is HTTPS."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (request.is_secure if request else False)


@dataclass
class ConsoleAuth:
    """The console's sign-in state kept on the app: the limiter, the tokens file's grants, the clock."""

    limiter: SignInLimiter
    grants: _Grants
    clock: Callable[[], float] = time.time  # wall-clock seconds: session ages survive a restart's monotonic reset
    lifetime: timedelta = SESSION_LIFETIME


def configure_sessions(app: Flask, secret_key: bytes, secure_cookies: bool, auth: ConsoleAuth) -> None:
    """Session cookie: signed with `secret_key`, HttpOnly, SameSite=Strict, Secure over HTTPS, 8 hours."""
    app.secret_key = secret_key
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=auth.lifetime,
        # The eight hours run from signing in, not from the last click.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.extensions[CONSOLE_EXTENSION] = auth


def _auth() -> ConsoleAuth:
    auth: ConsoleAuth = current_app.extensions[CONSOLE_EXTENSION]
    return auth


def sign_in(presented: str) -> Token | None:
    """Exchange a token for a session; None (and a logged failure) when the token is not valid."""
    services: ApiServices = current_app.extensions[EXTENSION]
    token = services.tokens.lookup(presented) if presented else None
    address = request.remote_addr or "-"
    auth = _auth()
    if token is None or token.role not in ROLES:
        failures = auth.limiter.failed(address)
        # Never the token: only that it was empty or unknown, from where, and how often.
        log.warning("console.signin_failed", reason="empty" if not presented else "unknown", remote_addr=address,
                    failures=failures)
        return None
    auth.limiter.succeeded(address)
    session.clear()
    session.permanent = True
    session["who"] = token.name
    session["role"] = token.role
    session["key"] = fingerprint(presented)
    session["since"] = int(auth.clock())
    log.info("console.signed_in", token_name=token.name, role=token.role, remote_addr=address)
    return token


def sign_out() -> None:
    """End the session."""
    name = session.get("who")
    session.clear()
    if name:
        log.info("console.signed_out", token_name=name, remote_addr=request.remote_addr)


def signed_in_token() -> Token | None:
    """The token this request's session was signed in with, while the session is valid."""
    name, role, key, since = (session.get(k) for k in ("who", "role", "key", "since"))
    if not (isinstance(name, str) and isinstance(role, str) and isinstance(key, str) and isinstance(since, int)):
        return None
    auth = _auth()
    if auth.clock() - since >= auth.lifetime.total_seconds():
        log.info("console.session_expired", token_name=name)
        session.clear()
        g.session_expired = True
        return None
    if role not in ROLES or not auth.grants.holds(name, role, key):
        log.warning("console.session_revoked", token_name=name, reason="the token is no longer in the tokens file")
        session.clear()
        g.session_expired = True
        return None
    return Token(name, role)  # type: ignore[arg-type]


def fingerprint(token: str) -> str:
    """What the session keeps of a token: the start of its SHA-256 (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:_FINGERPRINT]


def _safe_next(path: str | None) -> str | None:
    """A same-origin path to return to after signing in, or None (no open redirect).

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so `/%09/evil.example`
    becomes `//evil.example`: the path, raw and percent-decoded (twice, for a proxy that decodes
    once), must be a single `/` then a non-separator, with no backslash and no control or format
    character anywhere.
    """
    if not path or len(path) > MAX_NEXT_LENGTH:
        return None
    once = unquote(path)
    for form in (path, once, unquote(once)):
        if not _NEXT.fullmatch(form) or "\\" in form or any(unicodedata.category(c)[0] in "CZ" and c != " "
                                                       for c in form):
            return None
    return path


def console_requires(role: Role) -> Callable[[F], F]:
    """A console view: a signed-in session (else the sign-in page) whose role allows `role` (else the 403 page).

    The role check is the API's (`syncd.service.api.role_allows`); `g.token` holds the session's token,
    as it holds the bearer token in an API view, so actions are logged under the same name.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            token = signed_in_token()
            if token is None:
                expired = bool(g.get("session_expired"))
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("console.signin", next=_safe_next(target),
                                        why="expired" if expired else "required"), code=303)
            g.token = token
            if not role_allows(token.role, role):
                log.warning("console.forbidden", token_name=token.name, role=token.role, needed=role,
                            route=request.url_rule.rule if request.url_rule else None)
                abort(403)
            return view(*args, **kwargs)

        wrapper.syncd_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def next_path() -> str | None:
    """The `next` path of a sign-in request, when it is a safe one."""
    return _safe_next(request.values.get("next"))


def new_auth(tokens_file: Path | None, clock: Callable[[], float] = time.time,
             lifetime: timedelta = SESSION_LIFETIME, limiter: SignInLimiter | None = None) -> ConsoleAuth:
    """The sign-in state for a tokens file."""
    return ConsoleAuth(limiter or SignInLimiter(), _Grants(tokens_file), clock, lifetime)

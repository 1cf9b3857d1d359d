"""Signing in to the console: an API token exchanged once for a session cookie, and the role checks.

A token (from the tokens file; for the unit console role hr or operator, for the city bureau's any
role) is presented once on the sign-in form and
never stored: the session, a cookie Flask signs with the daemon's secret key, holds the token's
name, its role, a fingerprint of its hash, when it was signed in and a random session id. The
daemon remembers the ids of the sessions it opened (in memory: the key, and so every session, is
new at each start); signing out forgets the id, so a copy of the cookie taken before is worthless.
Every request checks that the session is known, under eight hours old and that its token is still
in the tokens file, so removing a token from the file ends its sessions too. The role check is the
API's own (`role_allows`, the same grants `requires` applies); the decorated view is marked with
its role like an API view.

Wrong tokens are counted per remote address (`syncd.service.tokens.FailureLimiter`): past the limit
a wrong token is answered 429 without a log line each, but a right token is always accepted.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import structlog
from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

from syncd.reporting import messages
from syncd.service.api import role_allows
from syncd.service.tokens import ROLES, Role, Token, TokenStore
from syncd.service.tokens import FailureLimiter as SignInLimiter

log = structlog.get_logger(__name__)

CONSOLE_EXTENSION = "syncd.console"
SESSION_LIFETIME = timedelta(hours=8)
SESSION_COOKIE = "syncd_console"
MAX_SESSIONS = 10_000  # live sessions remembered; past it the oldest is signed out
MAX_NEXT_LENGTH = 2048  # a `next` longer than any console URL is refused
# A `next`: `/` alone, or `/` then anything but another separator (`//host` is another site).
_NEXT = re.compile(r"/(?:[^/\\].*)?", re.DOTALL)
_FINGERPRINT = 16  # hex digits of the token's SHA-256 kept in the session

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, `Secure` whenever the request came over HTTPS (or always, when asked)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured so, or when this request is HTTPS."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (request.is_secure if request else False)


class _OpenSessions:
    """The ids of the sessions this daemon opened and has not seen end, with when each expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: OrderedDict[str, float] = OrderedDict()  # oldest first

    def open(self, now: float, lifetime: float) -> str:
        """A new session id, valid until `now + lifetime` unless closed."""
        sid = secrets.token_urlsafe(18)
        with self._lock:
            while self._expiry and (len(self._expiry) >= MAX_SESSIONS or next(iter(self._expiry.values())) <= now):
                self._expiry.popitem(last=False)
            self._expiry[sid] = now + lifetime
        return sid

    def is_open(self, sid: str, now: float) -> bool:
        """Whether `sid` was opened here, not closed and not expired."""
        with self._lock:
            return self._expiry.get(sid, now) > now

    def close(self, sid: str) -> None:
        """Forget `sid`: its cookie opens nothing any more."""
        with self._lock:
            self._expiry.pop(sid, None)


@dataclass
class ConsoleAuth:
    """A console's sign-in state on the app: the limiter, the open sessions, the tokens file's grants, the clock."""

    limiter: SignInLimiter
    grants: TokenStore  # the tokens that may sign in (the unit console: the API's tokens file, read on its own)
    clock: Callable[[], float] = time.time  # wall-clock seconds: session ages survive a restart's monotonic reset
    lifetime: timedelta = SESSION_LIFETIME
    home: str = "console"  # the blueprint of the pages: its `signin` and `overview` views
    least_role: Role = "hr"  # a token must allow this to sign in (the unit console: no auditor)
    cookie: str = SESSION_COOKIE  # the session cookie's name
    sessions: _OpenSessions = field(default_factory=_OpenSessions)


def configure_sessions(app: Flask, secret_key: bytes, secure_cookies: bool, auth: ConsoleAuth) -> None:
    """Session cookie: signed with `secret_key`, HttpOnly, SameSite=Strict, Secure over HTTPS, 8 hours."""
    app.secret_key = secret_key
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=auth.cookie,
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
    """Exchange a token for a session; None (and a counted failure) when the token is not valid."""
    auth = _auth()
    token = auth.grants.lookup(presented) if presented else None
    address = request.remote_addr or "-"
    if token is None or token.role not in ROLES:
        failures = auth.limiter.failed(address)
        if failures <= auth.limiter.max_failures:
            # Never the token: only that it was empty or unknown, from where, and how often.
            log.warning("console.signin_failed", reason="empty" if not presented else "unknown",
                        remote_addr=address, failures=failures)
        elif failures == auth.limiter.max_failures + 1:  # one line for the whole flood
            log.warning("console.signin_limited", remote_addr=address,
                        retry_after_s=round(auth.limiter.retry_after(address)))
        return None
    if not role_allows(token.role, auth.least_role):
        # An auditor's token reads a unit's API (status, compliance), not the unit's people: no session.
        log.warning("console.signin_refused", reason="role", role=token.role, token_name=token.name,
                    remote_addr=address)
        return None
    now = auth.clock()
    session.clear()
    session.permanent = True
    session["who"] = token.name
    session["role"] = token.role
    session["key"] = fingerprint(presented)
    session["since"] = int(now)
    session["sid"] = auth.sessions.open(now, auth.lifetime.total_seconds())
    log.info("console.signed_in", token_name=token.name, role=token.role, remote_addr=address)
    return token


def sign_out() -> None:
    """End the session here and for any copy of its cookie."""
    name, sid = session.get("who"), session.get("sid")
    if isinstance(sid, str):
        _auth().sessions.close(sid)
    session.clear()
    if name:
        log.info("console.signed_out", token_name=name, remote_addr=request.remote_addr)


def signed_in_token() -> Token | None:
    """The token this request's session was signed in with, while the session is valid."""
    name, role, key, since, sid = (session.get(k) for k in ("who", "role", "key", "since", "sid"))
    if not (isinstance(name, str) and isinstance(role, str) and isinstance(key, str) and isinstance(since, int)
            and isinstance(sid, str)):
        return None
    auth = _auth()
    now = auth.clock()
    if now - since >= auth.lifetime.total_seconds():
        log.info("console.session_expired", token_name=name)
        session.clear()
        g.session_expired = True
        return None
    if not auth.sessions.is_open(sid, now):
        log.info("console.session_revoked", token_name=name, reason="signed out (or the daemon restarted)")
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
                return redirect(url_for(f"{_auth().home}.signin", next=_safe_next(target),
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
             lifetime: timedelta = SESSION_LIFETIME, limiter: SignInLimiter | None = None, *,
             home: str = "console", least_role: Role = "hr", cookie: str = SESSION_COOKIE) -> ConsoleAuth:
    """The sign-in state for a tokens file, for the pages of blueprint `home`."""
    return ConsoleAuth(limiter or SignInLimiter(), TokenStore(tokens_file), clock, lifetime, home=home,
                       least_role=least_role, cookie=cookie)


def add_signin_views(pages: Blueprint) -> None:
    """`/signin` (the form and its post) and `/signout` on `pages`, whose `overview` view follows signing in."""
    overview = f"{pages.name}.overview"

    def signin() -> ResponseReturnValue:
        """The sign-in form (already signed in: on to the overview)."""
        if signed_in_token() is not None:
            return redirect(next_path() or url_for(overview), code=303)
        why = request.args.get("why")
        notice = messages.console_text("signin.expired") if why == "expired" else None
        return render_template("signin.html", notice=notice, next=next_path())

    def signin_post() -> ResponseReturnValue:
        """Exchange a token for a session; wrong tokens from an address past its limit are answered 429."""
        auth = _auth()
        limited = auth.limiter.retry_after(request.remote_addr or "-") > 0
        presented = request.form.get("token", "").strip()
        token = sign_in(presented)  # a right token signs in even while the address is limited
        if token is not None:
            return redirect(next_path() or url_for(overview), code=303)
        if limited:
            wait = auth.limiter.retry_after(request.remote_addr or "-")
            minutes = max(1, -(-int(wait) // 60))
            body = render_template("signin.html", error=messages.console_text("signin.limited", minutes=minutes),
                                   next=next_path())
            return body, 429, {"Retry-After": str(int(wait) + 1)}
        key = "signin.empty" if not presented else "signin.failed"
        return render_template("signin.html", error=messages.console_text(key), next=next_path()), 401

    def signout() -> ResponseReturnValue:
        """End the session."""
        sign_out()
        flash(messages.console_text("signed_out"))
        return redirect(url_for(f"{pages.name}.signin"), code=303)

    pages.add_url_rule("/signin", view_func=signin, methods=["GET"])
    pages.add_url_rule("/signin", endpoint="signin_post", view_func=signin_post, methods=["POST"])
    pages.add_url_rule("/signout", view_func=signout, methods=["POST"])

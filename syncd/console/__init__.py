"""The HR console (DESIGN.md §8): Chinese web pages served by the daemon beside the control API.

`register_console` adds the pages to the API's Flask app, so one server, one token file and one
set of `Control` methods serve both. Sessions are signed with a key the daemon makes at each start
(`new_secret_key`): a restart signs everyone out, and no key that could forge an operator's session
is ever written to the state (whose backups travel) or to disk.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from flask import Flask, Response, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from syncd import messages
from syncd.console import onboard as _onboard_page  # noqa: F401  (its routes join the blueprint)
from syncd.console.auth import SESSION_LIFETIME, SignInLimiter, configure_sessions, new_auth
from syncd.console.data import ConsoleData, read_directory_person
from syncd.console.snapshots import SnapshotCache, read_hr
from syncd.console.views import DATA_EXTENSION, UNIT_EXTENSION, ZONE_EXTENSION, console
from syncd.service.api import ApiError, queue_full
from syncd.state.store import ResyncQueueFull

__all__ = ["ConsoleData", "SnapshotCache", "new_secret_key", "read_directory_person", "read_hr", "register_console"]

log = structlog.get_logger(__name__)

# Scripts and styles only from this server (the console has no inline script); nothing may frame it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_API_PATHS = ("/api/", "/healthz", "/metrics")
_ERRORS = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method", 413: "too_large"}


def new_secret_key() -> bytes:
    """A fresh key to sign this daemon's console sessions with."""
    return secrets.token_bytes(32)


def is_api_path(path: str) -> bool:
    """Whether a path belongs to the JSON API (which answers in JSON, never with a page)."""
    return any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in _API_PATHS)


def register_console(app: Flask, data: ConsoleData, secret_key: bytes, *, tokens_file: Path | None,
                     unit_name: str = "", timezone: str = "Asia/Shanghai", secure_cookies: bool = False,
                     clock: Callable[[], float] = time.time, lifetime: timedelta = SESSION_LIFETIME,
                     limiter: SignInLimiter | None = None) -> None:
    """Serve the console at `/` on the API's app (`create_api`), reading from `data`.

    `tokens_file` is the API's (`api.tokens_file`): the tokens that may sign in. `secure_cookies`
    marks the session cookie Secure even when the request reached this server over plain HTTP (a
    TLS proxy in front); over HTTPS it is Secure anyway. `clock`, `lifetime` and `limiter` are for tests.
    """
    configure_sessions(app, secret_key, secure_cookies, new_auth(tokens_file, clock, lifetime, limiter))
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # the console's forms only: the API authenticates with bearer tokens
        WTF_CSRF_TIME_LIMIT=int(lifetime.total_seconds()),  # a form stays valid as long as the session
        # With Referrer-Policy: no-referrer the browser sends no Referer to check; the token in the
        # session, the SameSite=Strict cookie and the CSP's form-action do that job.
        WTF_CSRF_SSL_STRICT=False,
    )
    CSRFProtect(app)  # checked by the console's own before_request, for its forms alone
    app.extensions[DATA_EXTENSION] = data
    app.extensions[ZONE_EXTENSION] = ZoneInfo(timezone)
    app.extensions[UNIT_EXTENSION] = unit_name
    app.register_blueprint(console)
    for template in console.jinja_loader.list_templates() if console.jinja_loader else ():
        app.jinja_env.get_template(template)  # compiled now, not on someone's first visit
    json_errors = app.error_handler_spec[None][None].get(HTTPException)

    def _page_or_json(exc: HTTPException) -> ResponseReturnValue:
        """An unknown path or method: JSON under the API's paths, the Chinese page elsewhere."""
        if is_api_path(request.path) and json_errors is not None:
            return json_errors(exc)
        return _error_page(exc)

    app.register_error_handler(404, _page_or_json)
    app.register_error_handler(405, _page_or_json)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if not is_api_path(request.path):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.path.startswith("/static/"):
                response.headers["Cache-Control"] = "no-store"  # pages hold personal data
        return response


def _error_page(exc: HTTPException) -> ResponseReturnValue:
    """A Chinese error page keeping the error's status and headers (Allow, Retry-After)."""
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        log.warning("console.csrf_refused", route=request.url_rule.rule if request.url_rule else None,
                    remote_addr=request.remote_addr)
        text = messages.console_text("csrf")
    elif code == 403:
        token = g.get("token")
        text = messages.console_text("forbidden", role=messages.label(messages.ROLES, token.role if token else None))
    else:
        text = messages.console_text(_ERRORS.get(code, "bad_request"))
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return render_template("error.html", code=code, text=text), code, headers


def _api_error_page(exc: ApiError) -> ResponseReturnValue:
    """An input check the console shares with the API refused the request (a malformed id)."""
    log.info("console.refused", error=exc.error, field=exc.extra.get("field"))
    code = 404 if exc.status == 404 else 400
    return render_template("error.html", code=code, text=messages.console_text(_ERRORS[code])), code


def _internal_error(exc: Exception) -> ResponseReturnValue:
    """Anything unexpected: the Chinese 500 page; only the class is logged (messages may hold personal data)."""
    log.error("console.error", error=type(exc).__name__, route=request.url_rule.rule if request.url_rule else None)
    return render_template("error.html", code=500, text=messages.console_text("error")), 500


def _queue_full_page(exc: ResyncQueueFull) -> ResponseReturnValue:
    """A resync refused because too many wait already: the Chinese page, 429 with the API's Retry-After."""
    error = queue_full(exc)
    return render_template("error.html", code=429, text=messages.console_text("resync.queue_full")), 429, error.headers


console.register_error_handler(HTTPException, _error_page)
console.register_error_handler(ResyncQueueFull, _queue_full_page)
console.register_error_handler(ApiError, _api_error_page)
console.register_error_handler(Exception, _internal_error)

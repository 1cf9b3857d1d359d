"""The HR console (DESIGN.md §8): Chinese web pages served by the daemon beside the control API.

`register_console` adds the pages to the API's Flask app, so one server, one token file and one
set of `Control` methods serve both. Sessions are signed with a key the daemon makes at each start
(`new_secret_key`): a restart signs everyone out, and no key that could forge an operator's session
is ever written to the state (whose backups travel) or to disk. The web shell (sessions, CSRF,
headers, error pages) is `syncd.console.web`, shared with the city bureau's console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from syncd.console import onboard as _onboard_page  # noqa: F401  (its routes join the blueprint)
from syncd.console.auth import SESSION_LIFETIME, SignInLimiter, new_auth
from syncd.console.data import ConsoleData, read_directory_person
from syncd.console.snapshots import SnapshotCache, read_hr
from syncd.console.views import DATA_EXTENSION, UNIT_EXTENSION, ZONE_EXTENSION, console
from syncd.console.web import CSP, ERRORS, error_page, new_secret_key, page_errors, secure_pages, server_error_page
from syncd.reporting import messages
from syncd.service.api import STATE_RETRY_AFTER, ApiError, queue_full
from syncd.service.http import json_error
from syncd.service.state_alarm import OUT_OF_REACH, unreachable
from syncd.state import StateUnavailable
from syncd.state.store import ResyncQueueFull

__all__ = ["CSP", "ConsoleData", "SnapshotCache", "is_api_path", "new_secret_key", "read_directory_person", "read_hr",
           "register_console", "server_error"]

log = structlog.get_logger(__name__)

_API_PATHS = ("/api/", "/healthz", "/metrics")


def is_api_path(path: str) -> bool:
    """Whether a path belongs to the JSON API (which answers in JSON, never with a page)."""
    return any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in _API_PATHS)


def server_error(path: str | None, code: int, reason: str, detail: str) -> tuple[list[tuple[str, str]], bytes]:
    """waitress's own refusal of a request (`WsgiServer`'s `error_answer`): the API's JSON or the Chinese page."""
    if path is None or is_api_path(path):  # no path: a request too malformed to tell whose it was
        return json_error(path, code, reason, detail)
    return server_error_page(path, code, reason, detail)


def register_console(app: Flask, data: ConsoleData, secret_key: bytes, *, tokens_file: Path | None,
                     unit_name: str = "", timezone: str = "Asia/Shanghai", secure_cookies: bool = False,
                     clock: Callable[[], float] = time.time, lifetime: timedelta = SESSION_LIFETIME,
                     limiter: SignInLimiter | None = None) -> None:
    """Serve the console at `/` on the API's app (`create_api`), reading from `data`.

    `tokens_file` is the API's (`api.tokens_file`): the tokens that may sign in. `secure_cookies`
    marks the session cookie Secure even when the request reached this server over plain HTTP (a
    TLS proxy in front); over HTTPS it is Secure anyway. `clock`, `lifetime` and `limiter` are for tests.
    """
    secure_pages(app, secret_key, secure_cookies, new_auth(tokens_file, clock, lifetime, limiter), is_api_path)
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
        return error_page(exc)

    app.register_error_handler(404, _page_or_json)
    app.register_error_handler(405, _page_or_json)


def _api_error_page(exc: ApiError) -> ResponseReturnValue:
    """An input check the console shares with the API refused the request (a malformed id)."""
    log.info("console.refused", error=exc.error, field=exc.extra.get("field"))
    code = 404 if exc.status == 404 else 400
    return render_template("error.html", code=code, text=messages.console_text(ERRORS[code])), code


def _queue_full_page(exc: ResyncQueueFull) -> ResponseReturnValue:
    """A resync refused because too many wait already: the Chinese page, 429 with the API's Retry-After."""
    error = queue_full(exc)
    return render_template("error.html", code=429, text=messages.console_text("resync.queue_full")), 429, error.headers


def _state_unavailable_page(exc: Exception) -> ResponseReturnValue:
    """The state database out of reach, told as the API tells it: the Chinese 503 page with its Retry-After."""
    # One line, no traceback: the outage itself is told by state.unwritable and /healthz, and the
    # logging setup keeps an identical line to one a minute.
    unavailable = exc if isinstance(exc, StateUnavailable) else unreachable(exc)  # type: ignore[arg-type]
    log.warning("console.state_unavailable", route=request.url_rule.rule if request.url_rule else None,
                reason=str(unavailable))
    return (render_template("error.html", code=503, text=messages.console_text("state_unavailable")), 503,
            {"Retry-After": str(STATE_RETRY_AFTER)})


page_errors(console)
console.register_error_handler(ResyncQueueFull, _queue_full_page)
for _out_of_reach in (StateUnavailable, *OUT_OF_REACH):  # what a page read, or a Control call, fails with
    console.register_error_handler(_out_of_reach, _state_unavailable_page)
console.register_error_handler(ApiError, _api_error_page)

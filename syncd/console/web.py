"""What every syncd console shares: signed sessions, CSRF on forms, security headers and Chinese error pages.

The unit console (`syncd.console.register_console`) and the city bureau's console
(`syncd.console.city.create_city_app`) are both built with `secure_pages`, so they have the same
cookie rules, the same Content-Security-Policy and the same sign-in (`syncd.console.auth`).
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable

import structlog
from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from syncd.console.auth import ConsoleAuth, configure_sessions
from syncd.reporting import messages

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
ERRORS = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method", 413: "too_large"}
# The page waitress answers itself with (a body too large, a malformed request): no Flask, no template, no session.
_SERVER_PAGE = ('<!doctype html>\n<html lang="zh-CN">\n<head><meta charset="utf-8"><title>{text}</title></head>\n'
                '<body><h1>{code}</h1><p id="error-text">{text}</p><p><a href="/">{home}</a></p></body>\n</html>\n')


def new_secret_key() -> bytes:
    """A fresh key to sign this process's console sessions with."""
    return secrets.token_bytes(32)


def secure_pages(app: Flask, secret_key: bytes, secure_cookies: bool, auth: ConsoleAuth,
                 is_json_path: Callable[[str], bool] = lambda path: False) -> None:
    """Sessions, CSRF and security headers for the pages of `app`; paths `is_json_path` accepts are left alone.

    `secure_cookies` marks the session cookie Secure even when the request reached this server over
    plain HTTP (a TLS proxy in front); over HTTPS it is Secure anyway.
    """
    configure_sessions(app, secret_key, secure_cookies, auth)
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # the pages' forms only: an API beside them authenticates with bearer tokens
        WTF_CSRF_TIME_LIMIT=int(auth.lifetime.total_seconds()),  # a form stays valid as long as the session
        # With Referrer-Policy: no-referrer the browser sends no Referer to check; the token in the
        # session, the SameSite=Strict cookie and the CSP's form-action do that job.
        WTF_CSRF_SSL_STRICT=False,
    )
    CSRFProtect(app)  # checked by each console blueprint's own before_request, for its forms alone

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if not is_json_path(request.path):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if not request.path.startswith("/static/"):
                response.headers["Cache-Control"] = "no-store"  # pages hold controlled information
        return response


def check_csrf() -> None:
    """Every form post carries the session's CSRF token (Flask-WTF), the sign-in form too."""
    if request.method == "POST":
        current_app.extensions["csrf"].protect()


def error_page(exc: HTTPException) -> ResponseReturnValue:
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
        text = messages.console_text(ERRORS.get(code, "bad_request"))
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return render_template("error.html", code=code, text=text), code, headers


def internal_error(exc: Exception) -> ResponseReturnValue:
    """Anything unexpected: the Chinese 500 page; only the class is logged (messages may hold personal data)."""
    log.error("console.error", error=type(exc).__name__, route=request.url_rule.rule if request.url_rule else None)
    return render_template("error.html", code=500, text=messages.console_text("error")), 500


def server_error_page(path: str | None, code: int, reason: str, detail: str) -> tuple[list[tuple[str, str]], bytes]:
    """waitress's own refusal of a request as the Chinese error page, with the pages' security headers."""
    text = html.escape(messages.console_text(ERRORS.get(code, "bad_request")))
    body = _SERVER_PAGE.format(code=code, text=text, home=html.escape(messages.console_text("error.home"))).encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), *SECURITY_HEADERS.items(), ("Cache-Control", "no-store")]
    return headers, body


def page_errors(blueprint: Blueprint) -> None:
    """Chinese error pages for `blueprint`'s views: HTTP errors, a refused form and anything unexpected."""
    blueprint.before_request(check_csrf)
    blueprint.register_error_handler(HTTPException, error_page)
    blueprint.register_error_handler(Exception, internal_error)

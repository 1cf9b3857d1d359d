"""The control API: JSON over HTTP for HR's systems and operators, served by the daemon.

Every action goes through a `Control`; this module only authenticates, checks roles, validates
bodies and turns results and errors into JSON. `requires` is the one authorisation point, which
the console reuses. No response is ever an HTML page or a stack trace.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar, cast

import structlog
from flask import Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from syncd.domain.target import DirectoryEntry, TargetError
from syncd.service.control import Control, ResyncScope, StateUnavailable
from syncd.service.http import MAX_BODY_BYTES
from syncd.service.metrics import Metrics
from syncd.service.openapi import (
    BY_MAX_LENGTH,
    BY_PATTERN,
    ID_MAX_LENGTH,
    ID_PATTERN,
    KEY_MAX_LENGTH,
    openapi_document,
)
from syncd.service.tokens import FailureLimiter, Role, Token, TokenStore
from syncd.state.store import ResyncQueueFull
from syncd.version import __version__

log = structlog.get_logger(__name__)

EXTENSION = "syncd"
DIRECTORY_CALLS = 2  # directory calls from requests at once: the other server threads stay free for the rest
DIRECTORY_BUSY_RETRY_AFTER = 5  # seconds
QUEUE_FULL_RETRY_AFTER = 30  # seconds: the queue drains by a resync every few seconds
STATE_RETRY_AFTER = 10  # seconds: the daemon tries the database every few seconds; a restart takes about that
# What each role may do: operator includes everything hr may, hr everything auditor (read-only) may.
ROLE_GRANTS: dict[Role, frozenset[Role]] = {"auditor": frozenset({"auditor"}), "hr": frozenset({"hr", "auditor"}),
                                            "operator": frozenset({"hr", "operator", "auditor"})}
# RFC 6750 b64token; anything else in the header is not a token we could have issued.
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9._~+/-]+=*) *$", re.IGNORECASE)
_SCOPE_FIELDS: tuple[tuple[str, str], ...] = (("employee_id", "employee"), ("department_id", "department"),
                                              ("all", "all"))
_ID = re.compile(ID_PATTERN)  # the OpenAPI document's own patterns, so the two cannot disagree
_BY = re.compile(BY_PATTERN)
FIRST_YEAR, LAST_YEAR = 2000, 2999  # a period's days: far enough from date.min and date.max to count in
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_RESYNC_FIELDS = frozenset({"employee_id", "department_id", "all", "full"})
_FREEZE_FIELDS = frozenset({"by"})

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


class DirectoryBusy(TargetError):
    """Every slot for directory calls from requests is taken (calls to a slow directory): ask again later."""

    category = "busy"


class BoundedControl:
    """A `Control` whose live directory calls (freeze, unfreeze, a person's live read) take one of a few
    slots, and are refused at once (`DirectoryBusy`) when none is free.

    waitress answers every request on a handful of threads; a directory that does not answer would
    otherwise hold them all, and `/healthz`, `/metrics` and signing in would wait behind it.
    """

    def __init__(self, control: Control, slots: int = DIRECTORY_CALLS) -> None:
        """Wrap `control`; at most `slots` directory calls at once."""
        self._control = control
        self._slots = threading.BoundedSemaphore(slots)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._control, name)  # every other method is the wrapped Control's own

    def _directory_call(self, call: Callable[..., Any], *args: Any) -> Any:
        if not self._slots.acquire(blocking=False):
            log.warning("api.directory_busy", slots=DIRECTORY_CALLS)
            raise DirectoryBusy("every slot for directory calls is taken")
        try:
            return call(*args)
        finally:
            self._slots.release()

    def set_frozen(self, employee_id: str, frozen: bool, by: str) -> str:
        """`Control.set_frozen` in a slot."""
        run_id: str = self._directory_call(self._control.set_frozen, employee_id, frozen, by)
        return run_id

    def directory_person(self, employee_id: str) -> DirectoryEntry | None:
        """`Control.directory_person` in a slot."""
        entry: DirectoryEntry | None = self._directory_call(self._control.directory_person, employee_id)
        return entry


@dataclass(frozen=True, slots=True)
class ApiServices:
    """What the views need, kept in `app.extensions["syncd"]` for the console's views too."""

    control: Control
    tokens: TokenStore
    metrics: Metrics
    limiter: FailureLimiter = field(default_factory=FailureLimiter)  # wrong bearer tokens per client address


class ApiError(Exception):
    """An error answer: status, stable error code, message and extra JSON keys (e.g. `field`)."""

    def __init__(self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        """Build the error; `extra` keys go into the JSON body."""
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> Response:
        """The JSON response for this error."""
        response = jsonify({"error": self.error, "message": self.message, **self.extra})
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def invalid(field: str, message: str) -> ApiError:
    """A 422 naming the field at fault (`body` for the body as a whole)."""
    return ApiError(422, "invalid_request", message, field=field)


def _unauthorized(reason: str, message: str, limited: bool) -> ApiError:
    """A 401, or a 429 when the client address was past its limit of failures before this one."""
    services: ApiServices = current_app.extensions[EXTENSION]
    address = request.remote_addr or "-"
    failures = services.limiter.failed(address)
    # The remote address helps spot a misconfigured client or someone guessing; the token is never logged.
    if failures <= services.limiter.max_failures:
        log.warning("api.auth_failed", reason=reason, remote_addr=address, method=request.method, route=_route())
    elif failures == services.limiter.max_failures + 1:  # one line for the whole flood
        log.warning("api.auth_limited", remote_addr=address, retry_after_s=round(services.limiter.retry_after(address)))
    if limited:
        wait = services.limiter.retry_after(address)
        return ApiError(429, "too_many_failures", "too many requests without a valid token from this address; "
                        "a valid token is still accepted", headers={"Retry-After": str(int(wait) + 1)})
    challenge = "Bearer" if reason == "missing" else 'Bearer error="invalid_token"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def authenticate() -> Token:
    """The token of the current request, or ApiError 401 (429 from an address sending many wrong ones)."""
    services: ApiServices = current_app.extensions[EXTENSION]
    limited = services.limiter.retry_after(request.remote_addr or "-") > 0
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthorized("missing", "an Authorization: Bearer <token> header is required", limited)
    match = _BEARER.match(header)
    if not match:
        raise _unauthorized("malformed", "the Authorization header must be: Bearer <token>", limited)
    token = services.tokens.lookup(match.group(1))
    if token is None:
        raise _unauthorized("unknown", "the token is not valid", limited)
    return token


def role_allows(held: Role, needed: Role) -> bool:
    """Whether a token with role `held` may do what needs role `needed`."""
    return needed in ROLE_GRANTS[held]


def requires(role: Role) -> Callable[[F], F]:
    """Route decorator: a valid bearer token whose role allows `role` (else 401/403), kept in `g.token`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            token = authenticate()
            g.token = token
            if not role_allows(token.role, role):
                log.warning("api.auth_failed", reason="role", token_name=token.name, role=token.role,
                            needed=role, remote_addr=request.remote_addr, method=request.method, route=_route())
                raise ApiError(403, "forbidden", f"this needs the {role} role; the token has {token.role}")
            return view(*args, **kwargs)

        wrapper.syncd_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def required_role(view: Callable[..., Any]) -> Role | None:
    """The role a view was decorated with by `requires`; None for a public view."""
    return getattr(view, "syncd_role", None)


def _route() -> str | None:
    """The matched URL rule (`/api/v1/resync/<id>`), never the concrete path with its ids."""
    return request.url_rule.rule if request.url_rule is not None else None


def _json_body(required: bool) -> dict[str, Any]:
    """The request body as a JSON object; `{}` for an empty optional body; else a 422 on `body`."""
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise invalid("body", "a JSON object is required")
        return {}
    try:
        body = json.loads(data)
    # ValueError covers bad JSON and bad UTF-8; RecursionError a body nested thousands deep.
    except (ValueError, RecursionError):
        raise invalid("body", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("body", "the body must be a JSON object")
    return body


def _reject_unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """A 422 on the first field not in `allowed`, so a typo is not silently ignored."""
    for key in body:
        if key not in allowed:
            raise invalid(key, f"unknown field; expected {', '.join(sorted(allowed))}")


def _identifier(field: str, value: Any, max_length: int = ID_MAX_LENGTH) -> str:
    """An id (body or path): a non-empty string, no surrounding space, no control or format character."""
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if not value:
        raise invalid(field, "must not be empty")
    # The length first: a 100,000-character id is neither matched nor echoed back.
    if len(value) > max_length:
        raise invalid(field, f"must be at most {max_length} characters")
    if not _ID.fullmatch(value):
        raise invalid(field, "must not have surrounding spaces or control or format characters")
    return value


def parse_resync(body: dict[str, Any]) -> tuple[ResyncScope, bool]:
    """The scope and `full` flag of a resync body, or a 422 naming the field."""
    _reject_unknown(body, _RESYNC_FIELDS)
    given = [name for name, _ in _SCOPE_FIELDS if name in body]
    if not given:
        raise invalid("body", "give one of employee_id, department_id or all")
    if len(given) > 1:
        raise invalid(given[1], f"give only one of employee_id, department_id or all; got {', '.join(given)}")
    [name] = given
    kind = dict(_SCOPE_FIELDS)[name]
    if kind == "all":
        if body["all"] is not True:
            raise invalid("all", "must be true")
        scope = ResyncScope("all")
    else:
        scope = ResyncScope(kind, _identifier(name, body[name]))  # type: ignore[arg-type]
    full = body.get("full", False)
    if not isinstance(full, bool):
        raise invalid("full", "must be true or false")
    return scope, full


def _day(name: str) -> date:
    """A query parameter that must be a date, YYYY-MM-DD; else a 422 naming it."""
    value = request.args.get(name)
    if value is None:
        raise invalid(name, "required: a date, YYYY-MM-DD")
    if not _DAY.fullmatch(value):
        raise invalid(name, "must be a date, YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise invalid(name, "is not a date of the calendar") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise invalid(name, f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return day


def _requested_by(body: dict[str, Any], token: Token) -> str:
    """The `by` of a freeze body, default the token's name."""
    _reject_unknown(body, _FREEZE_FIELDS)
    if "by" not in body:
        return token.name
    by = body["by"]
    if not isinstance(by, str):
        raise invalid("by", "must be a string")
    if len(by) > BY_MAX_LENGTH:
        raise invalid("by", f"must be at most {BY_MAX_LENGTH} characters")
    if not _BY.fullmatch(by):
        raise invalid("by", "must be non-blank text without control or format characters")
    return by


def _http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (unknown route, wrong method, body too large) as JSON, headers kept."""
    code = exc.code or 500
    error = re.sub(r"\W+", "_", (exc.name or "error").lower()).strip("_")
    response = jsonify({"error": error, "message": exc.description or ""})
    response.status_code = code
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def queue_full(exc: ResyncQueueFull) -> ApiError:
    """The 429 of a resync refused because too many wait already."""
    log.warning("api.resync_queue_full", route=_route())
    return ApiError(429, "queue_full", f"{exc}; ask again later", headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)})


def state_unavailable(exc: StateUnavailable) -> ApiError:
    """The 503 of a request whose state database is out of reach (PostgreSQL down or restarting)."""
    # A line, not a traceback: the state's outage is told by state.unwritable and /healthz; an
    # identical line per poll is limited to one a minute by the logging setup.
    log.warning("api.state_unavailable", route=_route(), reason=str(exc))
    return ApiError(503, "state_unavailable", "the state database cannot be reached now; ask again later",
                    headers={"Retry-After": str(STATE_RETRY_AFTER)})


def _internal_error(exc: Exception) -> Response:
    """Anything unexpected: a 500 without details; the class alone is logged (messages may hold personal data)."""
    log.error("api.error", error=type(exc).__name__, method=request.method, route=_route())
    response = jsonify({"error": "internal", "message": "internal error; see the daemon's log"})
    response.status_code = 500
    return response


class _ApiApp(Flask):
    """Flask, answering OPTIONS in JSON too (`{"allow": [...]}` beside the Allow header)."""

    def make_default_options_response(self) -> Response:
        """The methods of the matched URL, as JSON."""
        default = super().make_default_options_response()
        response = jsonify({"allow": sorted(default.allow)})
        response.headers["Allow"] = default.headers["Allow"]
        return response


def create_api(control: Control, tokens: TokenStore, metrics: Metrics, limiter: FailureLimiter | None = None) -> Flask:
    """The Flask app of the control API, ready for waitress (`limiter`: for tests, on their clock)."""
    app = _ApiApp(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    control = cast(Control, BoundedControl(control))
    app.extensions[EXTENSION] = ApiServices(control, tokens, metrics, limiter or FailureLimiter())
    app.register_error_handler(ApiError, lambda exc: exc.response())
    app.register_error_handler(ResyncQueueFull, lambda exc: queue_full(exc).response())
    app.register_error_handler(StateUnavailable, lambda exc: state_unavailable(exc).response())
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    document = openapi_document(__version__)

    @app.before_request
    def _start_clock() -> None:
        g.started = time.monotonic()

    @app.after_request
    def _log_request(response: Response) -> Response:
        token: Token | None = g.get("token")
        started: float | None = g.get("started")
        log.debug("api.request", method=request.method, route=_route(), status=response.status_code,
                  token_name=token.name if token else None,
                  duration_ms=round((time.monotonic() - started) * 1000, 1) if started is not None else None)
        return response

    @app.post("/api/v1/resync")
    @requires("hr")
    def post_resync() -> ResponseReturnValue:
        scope, full = parse_resync(_json_body(required=True))
        resync = control.request_resync(scope, full, requested_by=g.token.name)
        return resync.as_json(), 202, {"Location": f"/api/v1/resync/{resync.id}"}

    @app.get("/api/v1/resync/<id>")
    @requires("hr")
    def get_resync(id: str) -> ResponseReturnValue:
        resync = control.resync(_identifier("id", id))
        if resync is None:
            raise ApiError(404, "not_found", f"no resync request {id}")
        return resync.as_json()

    @app.get("/api/v1/status")
    @requires("auditor")
    def get_status() -> ResponseReturnValue:
        return control.status()

    @app.get("/api/v1/compliance")
    @requires("auditor")
    def get_compliance() -> ResponseReturnValue:
        start, end = _day("from"), _day("to")
        if end < start:
            raise invalid("to", "must not be before from")
        return control.compliance(start, end)

    def decide(run_id: str, approve: bool) -> ResponseReturnValue:
        _identifier("run_id", run_id)
        try:
            decided = control.decide(run_id, approve, by=g.token.name)
        except LookupError:
            raise ApiError(404, "not_found", f"no run {run_id}") from None
        if decided == 0:
            raise ApiError(409, "conflict", f"run {run_id} has no changes waiting for a decision")
        return {"run_id": run_id, "decided": decided}

    @app.post("/api/v1/runs/<run_id>/approve")
    @requires("operator")
    def approve_run(run_id: str) -> ResponseReturnValue:
        return decide(run_id, approve=True)

    @app.post("/api/v1/runs/<run_id>/reject")
    @requires("operator")
    def reject_run(run_id: str) -> ResponseReturnValue:
        return decide(run_id, approve=False)

    def set_frozen(employee_id: str, frozen: bool) -> ResponseReturnValue:
        _identifier("employee_id", employee_id)
        by = _requested_by(_json_body(required=False), g.token)
        try:
            run_id = control.set_frozen(employee_id, frozen, by=by)
        except LookupError:
            raise ApiError(404, "not_found", f"{employee_id} is not a person syncd manages") from None
        except DirectoryBusy:
            raise ApiError(503, "directory_busy", "other directory calls are still waiting for the directory; "
                           "ask again later", headers={"Retry-After": str(DIRECTORY_BUSY_RETRY_AFTER)}) from None
        except TargetError as exc:
            log.warning("api.directory_refused", category=exc.category, error=type(exc).__name__, route=_route())
            what = ("did not answer or is unavailable" if exc.category == "unavailable"
                    else "refused the change")
            raise ApiError(502, "directory_refused", f"the directory {what}", category=exc.category) from None
        return {"employee_id": employee_id, "frozen": frozen, "run_id": run_id}

    @app.post("/api/v1/people/<employee_id>/freeze")
    @requires("operator")
    def freeze_person(employee_id: str) -> ResponseReturnValue:
        return set_frozen(employee_id, frozen=True)

    @app.post("/api/v1/people/<employee_id>/unfreeze")
    @requires("operator")
    def unfreeze_person(employee_id: str) -> ResponseReturnValue:
        return set_frozen(employee_id, frozen=False)

    @app.get("/api/v1/escalations")
    @requires("hr")
    def get_escalations() -> ResponseReturnValue:
        return control.escalations()

    @app.post("/api/v1/escalations/<path:key>/ack")
    @requires("operator")
    def acknowledge(key: str) -> ResponseReturnValue:
        _identifier("key", key, KEY_MAX_LENGTH)
        by = _requested_by(_json_body(required=False), g.token)
        if not control.acknowledge(key, by=by):
            raise ApiError(404, "not_found", f"no open problem {key}")
        return {"key": key, "acknowledged": True, "by": by}

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        health = control.health()
        return health.as_json(), 200 if health.ok else 503

    @app.get("/metrics")
    def get_metrics() -> ResponseReturnValue:
        body, content_type = metrics.render(request.headers.get("Accept", ""))
        return Response(body, content_type=content_type)

    @app.get("/api/v1/openapi.json")
    def get_openapi() -> ResponseReturnValue:
        return document

    return app

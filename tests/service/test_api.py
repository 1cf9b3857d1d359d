"""The control API: routes, roles, validation and JSON errors, against a fake Control."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from syncd.domain.target import DirectoryEntry, TargetError
from syncd.engine.freeze import NotLinked
from syncd.service.api import create_api, required_role
from syncd.service.control import Control, Health, ResyncRequest, ResyncScope, StateUnavailable
from syncd.service.metrics import Metrics
from syncd.service.tokens import TokenStore, add_token
from syncd.version import __version__

WHEN = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


class DirectoryScopeError(TargetError):
    """What a connector raises when the organisation is outside the app's scope."""

    category = "scope"


@dataclass
class FakeControl:
    """A Control that records calls and answers from its fields."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    resyncs: dict[str, ResyncRequest] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=lambda: {"R-held": 3, "R-done": 0})
    linked: set[str] = field(default_factory=lambda: {"A000001"})
    healthy: bool = True
    status_error: Exception | None = None
    directory_error: TargetError | None = None

    def request_resync(self, scope: ResyncScope, full: bool, requested_by: str) -> ResyncRequest:
        self.calls.append(("request_resync", (scope, full, requested_by)))
        request = ResyncRequest(f"rs-{len(self.resyncs) + 1}", scope, full, "queued", requested_by, WHEN)
        self.resyncs[request.id] = request
        return request

    def resync(self, request_id: str) -> ResyncRequest | None:
        self.calls.append(("resync", (request_id,)))
        return self.resyncs.get(request_id)

    def status(self) -> dict[str, Any]:
        self.calls.append(("status", ()))
        if self.status_error:
            raise self.status_error
        return {"runs": [{"run_id": "R1", "outcome": "success"}], "held": [], "overdue": [], "resyncs": [],
                "daemon": {"running": True}}

    def decide(self, run_id: str, approve: bool, by: str) -> int:
        self.calls.append(("decide", (run_id, approve, by)))
        if run_id not in self.held:
            raise LookupError(run_id)
        return self.held[run_id]

    def set_frozen(self, employee_id: str, frozen: bool, by: str) -> str:
        self.calls.append(("set_frozen", (employee_id, frozen, by)))
        if self.directory_error:
            raise self.directory_error
        if employee_id not in self.linked:
            raise NotLinked(employee_id)
        return "R-freeze"

    def health(self) -> Health:
        return Health(self.healthy, WHEN if self.healthy else None, "success" if self.healthy else "failed")

    def directory_person(self, employee_id: str) -> DirectoryEntry | None:
        self.calls.append(("directory_person", (employee_id,)))
        if self.directory_error:
            raise self.directory_error
        if employee_id not in self.linked:
            raise NotLinked(employee_id)
        return DirectoryEntry("GE_1", "A", "GO_1", {"post": "科员"})

    def escalations(self) -> dict[str, Any]:
        self.calls.append(("escalations", ()))
        return {"open": [{"key": "run_failed", "level": 1}], "resolved": []}

    def acknowledge(self, key: str, by: str) -> bool:
        self.calls.append(("acknowledge", (key, by)))
        return key == "run_failed"

    def compliance(self, start: date, end: date) -> dict[str, Any]:
        self.calls.append(("compliance", (start, end)))
        return {"unit": "示例局", "from": start.isoformat(), "to": end.isoformat()}


@dataclass
class Api:
    """The app under test, its fake control and a token per role."""

    app: Flask
    client: FlaskClient
    control: FakeControl
    metrics: Metrics
    hr: str
    operator: str

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.open(path, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    path = tmp_path / "tokens.toml"
    hr, operator = add_token(path, "hr-portal", "hr"), add_token(path, "ops", "operator")
    control, metrics = FakeControl(), Metrics()
    app = create_api(control, TokenStore(path), metrics)
    return Api(app, app.test_client(), control, metrics, hr, operator)


def test_the_fake_control_has_the_protocols_signatures() -> None:
    names = [name for name, _ in inspect.getmembers(Control, inspect.isfunction) if not name.startswith("_")]
    assert names
    for name in names:
        assert inspect.signature(getattr(FakeControl, name)) == inspect.signature(getattr(Control, name)), name


# --- resync ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "scope", "full"), [
    ({"employee_id": "A000001"}, ResyncScope("employee", "A000001"), False),
    ({"department_id": "D0003", "full": True}, ResyncScope("department", "D0003"), True),
    ({"all": True, "full": False}, ResyncScope("all"), False),
])
def test_a_resync_is_queued_in_the_tokens_name(api: Api, body: dict[str, Any], scope: ResyncScope,
                                               full: bool) -> None:
    response = api.call("POST", "/api/v1/resync", api.hr, json=body)
    assert response.status_code == 202
    assert response.json["id"] == "rs-1" and response.json["status"] == "queued"
    assert response.json == api.control.resyncs["rs-1"].as_json()
    assert response.headers["Location"] == "/api/v1/resync/rs-1"
    assert api.control.calls == [("request_resync", (scope, full, "hr-portal"))]


def test_an_operator_may_resync_too(api: Api) -> None:
    response = api.call("POST", "/api/v1/resync", api.operator, json={"all": True})
    assert response.status_code == 202
    assert api.control.calls[0][1][2] == "ops"


def test_a_resync_request_is_read_back_by_id(api: Api) -> None:
    api.call("POST", "/api/v1/resync", api.hr, json={"employee_id": "A000001"})
    response = api.call("GET", "/api/v1/resync/rs-1", api.hr)
    assert response.status_code == 200
    assert response.json == {"id": "rs-1", "status": "queued", "run_id": None, "outcome": None,
                             "scope": "employee", "subject": "A000001", "full": False,
                             "requested_at": WHEN.isoformat(), "exit_code": None, "message": ""}


def test_an_unknown_resync_id_is_404(api: Api) -> None:
    response = api.call("GET", "/api/v1/resync/rs-404", api.hr)
    assert response.status_code == 404 and response.json["error"] == "not_found"


MALFORMED = [
    pytest.param(b"not json", "body", id="not-json"),
    pytest.param(b"", "body", id="empty-body"),
    pytest.param(b"[1, 2]", "body", id="array"),
    pytest.param(b'"A000001"', "body", id="string"),
    pytest.param(b"[" * 100_00 + b"]" * 100_00, "body", id="deeply-nested"),
    pytest.param(b"\xff\xfe{", "body", id="bad-encoding"),
    pytest.param({}, "body", id="no-scope"),
    pytest.param({"full": True}, "body", id="only-full"),
    pytest.param({"employee_id": "A000001", "department_id": "D0003"}, "department_id", id="two-scopes"),
    pytest.param({"employee_id": "A000001", "all": True}, "all", id="employee-and-all"),
    pytest.param({"employee_id": ""}, "employee_id", id="empty-employee"),
    pytest.param({"employee_id": " A000001"}, "employee_id", id="spaced-employee"),
    pytest.param({"employee_id": 1001}, "employee_id", id="numeric-employee"),
    pytest.param({"employee_id": None}, "employee_id", id="null-employee"),
    pytest.param({"employee_id": "A" * 65}, "employee_id", id="long-employee"),
    pytest.param({"department_id": ""}, "department_id", id="empty-department"),
    pytest.param({"department_id": ["D0003"]}, "department_id", id="list-department"),
    pytest.param({"all": False}, "all", id="all-false"),
    pytest.param({"all": "yes"}, "all", id="all-string"),
    pytest.param({"all": 1}, "all", id="all-one"),
    pytest.param({"all": True, "full": "yes"}, "full", id="full-string"),
    pytest.param({"all": True, "full": 1}, "full", id="full-one"),
    pytest.param({"employeeId": "A000001"}, "employeeId", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field"), MALFORMED)
def test_a_malformed_resync_is_422_naming_the_field(api: Api, body: bytes | dict[str, Any], field: str) -> None:
    if isinstance(body, bytes):
        response = api.call("POST", "/api/v1/resync", api.hr, data=body, content_type="application/json")
    else:
        response = api.call("POST", "/api/v1/resync", api.hr, json=body)
    assert response.status_code == 422
    assert response.json["error"] == "invalid_request" and response.json["field"] == field
    assert response.json["message"]
    assert api.control.calls == []


def test_a_body_over_the_limit_is_413_json(api: Api) -> None:
    body = json.dumps({"employee_id": "A000001", "pad": "x" * 100_000})
    response = api.call("POST", "/api/v1/resync", api.hr, data=body, content_type="application/json")
    assert response.status_code == 413 and response.is_json
    assert api.control.calls == []


# --- status, decisions, freezes ---------------------------------------------------------------------

def test_status_is_the_controls(api: Api) -> None:
    response = api.call("GET", "/api/v1/status", api.hr)
    assert response.status_code == 200 and response.json["runs"] == [{"run_id": "R1", "outcome": "success"}]


@pytest.mark.parametrize(("action", "approve"), [("approve", True), ("reject", False)])
def test_an_operator_decides_a_held_run(api: Api, action: str, approve: bool) -> None:
    response = api.call("POST", f"/api/v1/runs/R-held/{action}", api.operator)
    assert response.status_code == 200 and response.json == {"run_id": "R-held", "decided": 3}
    assert api.control.calls == [("decide", ("R-held", approve, "ops"))]


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_deciding_an_unknown_run_is_404(api: Api, action: str) -> None:
    response = api.call("POST", f"/api/v1/runs/R-nope/{action}", api.operator)
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_deciding_a_run_with_nothing_held_is_409(api: Api) -> None:
    response = api.call("POST", "/api/v1/runs/R-done/approve", api.operator)
    assert response.status_code == 409
    assert response.json["error"] == "conflict" and "R-done" in response.json["message"]


@pytest.mark.parametrize(("action", "frozen"), [("freeze", True), ("unfreeze", False)])
def test_an_operator_freezes_in_the_tokens_name_by_default(api: Api, action: str, frozen: bool) -> None:
    response = api.call("POST", f"/api/v1/people/A000001/{action}", api.operator)
    assert response.status_code == 200
    assert response.json == {"employee_id": "A000001", "frozen": frozen, "run_id": "R-freeze"}
    assert api.control.calls == [("set_frozen", ("A000001", frozen, "ops"))]


def test_a_freeze_records_who_asked(api: Api) -> None:
    response = api.call("POST", "/api/v1/people/A000001/freeze", api.operator, json={"by": "张明 (phone lost)"})
    assert response.status_code == 200
    assert api.control.calls == [("set_frozen", ("A000001", True, "张明 (phone lost)"))]


@pytest.mark.parametrize(("body", "field"), [
    ({"by": ""}, "by"), ({"by": 7}, "by"), ({"by": "x" * 129}, "by"), ({"who": "x"}, "who"), ([], "body"),
])
def test_a_malformed_freeze_body_is_422(api: Api, body: Any, field: str) -> None:
    response = api.call("POST", "/api/v1/people/A000001/freeze", api.operator, json=body)
    assert response.status_code == 422 and response.json["field"] == field
    assert api.control.calls == []


def test_freezing_an_unknown_person_is_404(api: Api) -> None:
    response = api.call("POST", "/api/v1/people/B999999/freeze", api.operator)
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_a_directory_refusal_is_502_with_its_category(api: Api) -> None:
    api.control.directory_error = DirectoryScopeError("organisation GO_x not visible to app for 13800000001")
    response = api.call("POST", "/api/v1/people/A000001/unfreeze", api.operator)
    assert response.status_code == 502
    assert response.json["error"] == "directory_refused" and response.json["category"] == "scope"
    assert "13800000001" not in response.get_data(as_text=True)


# --- auth ---------------------------------------------------------------------------------------------

PROTECTED = [("POST", "/api/v1/resync"), ("GET", "/api/v1/resync/rs-1"), ("GET", "/api/v1/status"),
             ("POST", "/api/v1/runs/R-held/approve"), ("POST", "/api/v1/runs/R-held/reject"),
             ("POST", "/api/v1/people/A000001/freeze"), ("POST", "/api/v1/people/A000001/unfreeze")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401_with_a_bearer_challenge(api: Api, method: str, path: str) -> None:
    with capture_logs() as logs:
        response = api.call(method, path, json={"all": True})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert [e["reason"] for e in logs if e["event"] == "api.auth_failed"] == ["missing"]
    assert api.control.calls == []


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_an_unknown_token_is_401_and_is_never_logged(api: Api, method: str, path: str) -> None:
    guess = "guessed-token-value"
    with capture_logs() as logs:
        response = api.call(method, path, guess, json={"all": True})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    [event] = [e for e in logs if e["event"] == "api.auth_failed"]
    assert event["log_level"] == "warning" and event["reason"] == "unknown" and "remote_addr" in event
    assert guess not in repr(logs)
    assert api.control.calls == []


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer two words", "token"])
def test_a_malformed_authorization_header_is_401(api: Api, header: str) -> None:
    response = api.client.get("/api/v1/status", headers={"Authorization": header})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"


def test_the_scheme_is_case_insensitive(api: Api) -> None:
    response = api.client.get("/api/v1/status", headers={"Authorization": f"bearer {api.hr}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/runs/R-held/approve", "/api/v1/runs/R-held/reject",
                                  "/api/v1/people/A000001/freeze", "/api/v1/people/A000001/unfreeze"])
def test_hr_may_not_decide_or_freeze(api: Api, path: str) -> None:
    with capture_logs() as logs:
        response = api.call("POST", path, api.hr)
    assert response.status_code == 403 and response.json["error"] == "forbidden"
    assert [(e["reason"], e["token_name"]) for e in logs if e["event"] == "api.auth_failed"] == [("role", "hr-portal")]
    assert api.control.calls == []


def test_a_token_added_while_running_is_accepted(api: Api, tmp_path: Path) -> None:
    token = add_token(tmp_path / "tokens.toml", "late-comer", "hr")
    response = api.call("GET", "/api/v1/status", token)
    assert response.status_code == 200


# --- public endpoints -------------------------------------------------------------------------------

def test_healthz_is_200_when_ok_and_503_when_failing(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "last_success": WHEN.isoformat(), "last_outcome": "success",
                             "version": __version__}
    api.control.healthy = False
    response = api.client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "failing", "last_success": None, "last_outcome": "failed",
                             "version": __version__}


def test_status_answers_503_state_unavailable_with_retry_after_while_the_state_is_out_of_reach(api: Api) -> None:
    api.control.status_error = StateUnavailable("connection refused", refused=False)
    with capture_logs() as logs:
        response = api.call("GET", "/api/v1/status", api.hr)
    assert response.status_code == 503
    assert response.json["error"] == "state_unavailable" and "connection refused" not in response.json["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert [(e["event"], e["log_level"]) for e in logs if e["log_level"] != "debug"] == [
        ("api.state_unavailable", "warning")]
    assert logs[0]["reason"] == "connection refused" and logs[0]["route"] == "/api/v1/status"


def test_the_openapi_document_lists_the_503_of_an_unreachable_state_for_status(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json
    answer = document["paths"]["/api/v1/status"]["get"]["responses"]["503"]
    assert answer == {"$ref": "#/components/responses/StateUnavailable"}
    described = document["components"]["responses"]["StateUnavailable"]
    assert "state_unavailable" in described["description"] and "Retry-After" in described["headers"]


def test_metrics_are_served_without_a_token(api: Api) -> None:
    api.metrics.observe_cycle("success", 1.5, {"join.done": 2})
    api.metrics.count_api_call("ok")
    response = api.client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    for name in ("syncd_last_success_timestamp_seconds", "syncd_cycles_total", "syncd_changes_total",
                 "syncd_api_calls_total", "syncd_cycle_duration_seconds", "syncd_held_changes",
                 "syncd_overdue_changes", "syncd_build_info"):
        assert name in text, name


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_openapi_document_lists_exactly_the_served_routes_and_roles(api: Api) -> None:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.1")
    served: dict[str, set[str]] = {}
    roles: dict[tuple[str, str], str | None] = {}
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _openapi_path(rule.rule)
        methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
        served.setdefault(path, set()).update(methods)
        for method in methods:
            roles[path, method] = required_role(api.app.view_functions[rule.endpoint])
    documented = {path: set(item) for path, item in document["paths"].items()}
    assert documented == served
    for (path, method), role in roles.items():
        operation = document["paths"][path][method]
        assert operation.get("x-syncd-role") == role, (path, method)
        assert operation["security"] == ([{"bearer": []}] if role else []), (path, method)
        assert "responses" in operation
        for name in re.findall(r"{([^}]+)}", path):
            assert name in {p["name"] for p in operation["parameters"]}, (path, name)
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}


def test_every_reference_in_the_openapi_document_resolves(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json
    refs = re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document))
    assert refs
    for ref in refs:
        node = document
        for part in ref.split("/"):
            node = node[part]


# --- errors -------------------------------------------------------------------------------------------

def test_an_unknown_route_is_404_json(api: Api) -> None:
    response = api.call("GET", "/api/v2/nothing", api.operator)
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_a_wrong_method_is_405_json_with_allow(api: Api) -> None:
    response = api.call("DELETE", "/api/v1/resync", api.operator)
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
    response = api.call("GET", "/api/v1/runs/R-held/approve", api.operator)
    assert response.status_code == 405 and response.is_json


def test_an_unexpected_error_is_500_json_without_details(api: Api) -> None:
    api.control.status_error = RuntimeError("db exploded near A000001 13800000001")
    with capture_logs() as logs:
        response = api.call("GET", "/api/v1/status", api.hr)
    assert response.status_code == 500 and response.is_json and response.json["error"] == "internal"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "exploded" not in text and "RuntimeError" not in text
    [event] = [e for e in logs if e["event"] == "api.error"]
    assert event["error"] == "RuntimeError" and event["log_level"] == "error"
    assert "exploded" not in repr(logs) and "exc_info" not in event


def test_each_request_is_logged_at_debug_by_route_without_token_or_body(api: Api) -> None:
    with capture_logs() as logs:
        api.call("POST", "/api/v1/resync", api.hr, json={"employee_id": "A000123"})
    [event] = [e for e in logs if e["event"] == "api.request"]
    assert event["log_level"] == "debug"
    assert (event["method"], event["route"], event["status"], event["token_name"]) == (
        "POST", "/api/v1/resync", 202, "hr-portal")
    assert api.hr not in repr(logs) and "A000123" not in repr(logs)


def test_escalations_are_read_by_hr(api: Api) -> None:
    response = api.call("GET", "/api/v1/escalations", api.hr)
    assert response.status_code == 200
    assert response.json["open"] == [{"key": "run_failed", "level": 1}]


def test_an_operator_acknowledges_an_open_problem_and_hr_may_not(api: Api) -> None:
    assert api.call("POST", "/api/v1/escalations/run_failed/ack", api.hr).status_code == 403
    response = api.call("POST", "/api/v1/escalations/run_failed/ack", api.operator, json={"by": "值班员"})
    assert response.status_code == 200
    assert response.json == {"key": "run_failed", "acknowledged": True, "by": "值班员"}
    assert ("acknowledge", ("run_failed", "值班员")) in api.control.calls


def test_acknowledging_a_problem_that_is_not_open_is_404(api: Api) -> None:
    response = api.call("POST", "/api/v1/escalations/held:R9/ack", api.operator)
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_compliance_passes_the_period_to_the_control(api: Api) -> None:
    response = api.call("GET", "/api/v1/compliance?from=2026-09-28&to=2026-10-09", api.hr)
    assert response.status_code == 200
    assert api.control.calls == [("compliance", (date(2026, 9, 28), date(2026, 10, 9)))]

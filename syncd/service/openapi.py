"""The OpenAPI 3.1 description of the control API, served at `/api/v1/openapi.json`.

Written by hand next to the routes; `tests/service/test_api.py` checks that it lists exactly the
routes, methods and roles the Flask app serves, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

ID_MAX_LENGTH = 64
KEY_MAX_LENGTH = 200  # an escalation's key (`records:D0003`, `digest:2024-05-06`)
BY_MAX_LENGTH = 128
# What no id and no `by` may hold: control characters, invisible format characters (U+200B…, the
# U+202E that reverses text on screen, U+FEFF), line separators and lone surrogates (which neither
# PostgreSQL nor a log line could take). Written so that Python's `re` (the server's check) and the
# ECMAScript regex of JSON Schema (the document's) read it alike.
_NOT_TEXT = (r"\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
             r"\ufff9-\ufffb\ud800-\udfff")
# An id: no surrounding space, no character of _NOT_TEXT.
ID_PATTERN = rf"^[^\s{_NOT_TEXT}](?:[^{_NOT_TEXT}]*[^\s{_NOT_TEXT}])?$"
# A `by`: not blank, no character of _NOT_TEXT.
BY_PATTERN = rf"^[^{_NOT_TEXT}]*[^\s{_NOT_TEXT}][^{_NOT_TEXT}]*$"

_BEARER = [{"bearer": []}]
_PUBLIC: list[dict[str, list[str]]] = []


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _operation(summary: str, role: str | None, responses: dict[str, Any], *,
               body: dict[str, Any] | None = None, body_required: bool = True,
               parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One operation; `role` None for an endpoint that needs no token."""
    operation: dict[str, Any] = {"summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {"application/json": {"schema": body}}}
    if role is None:
        operation["security"] = _PUBLIC
    else:
        operation["security"] = _BEARER
        operation["x-syncd-role"] = role
        responses = {**responses, "401": _error("Unauthorized"), "403": _error("Forbidden"),
                     "429": responses.get("429", _error("TooManyFailures")),
                     "503": responses.get("503", _error("StateUnavailable"))}
    operation["responses"] = {**responses, "500": _error("Internal")}
    return operation


def _path_parameter(name: str, description: str, max_length: int = ID_MAX_LENGTH) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": ID_PATTERN}}


def _query_day(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": True, "description": description,
            "schema": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}}


_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH, "pattern": ID_PATTERN}
_NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "ResyncBody": {
        "type": "object",
        "description": "Exactly one of employee_id, department_id or all.",
        "additionalProperties": False,
        "properties": {
            "employee_id": {**_IDENTIFIER, "description": "HR employee id (工号)"},
            "department_id": {**_IDENTIFIER,
                              "description": "HR department id (部门编号); the department and its people"},
            "all": {"const": True, "description": "everyone and every department"},
            "full": {"type": "boolean", "default": False,
                     "description": "compare with the directory too (drift check), not only with the last payload"},
        },
        "oneOf": [{"required": ["employee_id"]}, {"required": ["department_id"]}, {"required": ["all"]}],
    },
    "ResyncRequest": {
        "type": "object",
        "required": ["id", "status", "scope", "full", "requested_at"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["queued", "running", "done", "failed"]},
            "run_id": _NULLABLE_STRING,
            "outcome": {**_NULLABLE_STRING, "description": "success | partial | failed | held | skipped, or an error"},
            "scope": {"enum": ["employee", "department", "all"]},
            "subject": {**_NULLABLE_STRING, "description": "the employee or department id; null for all"},
            "full": {"type": "boolean"},
            "requested_at": {"type": "string", "format": "date-time"},
            "exit_code": {"type": ["integer", "null"]},
            "message": {"type": "string"},
        },
    },
    "Status": {
        "type": "object",
        "description": "Last runs, held runs, overdue changes, resyncs, open escalations and the daemon itself.",
        "properties": {
            "runs": {"type": "array", "items": {"type": "object"}},
            "held": {"type": "array", "items": {"type": "object"}},
            "overdue": {"type": "array", "items": {"type": "object"}},
            "resyncs": {"type": "array", "items": {"type": "object"}},
            "escalations": {"type": "array", "items": {"type": "object"},
                            "description": "open problems (without their notices: GET /api/v1/escalations)"},
            "daemon": {"type": "object"},
        },
    },
    "Compliance": {
        "type": "object",
        "description": "Article 9 figures of the unit: the personnel changes HR made in the period (by the day "
                       "they were detected; departments and freezes not counted), how many reached the directory "
                       "within escalation.deadline_workdays working days (Chinese holidays and make-up days "
                       "counted), and the unit's state now.",
        "required": ["unit", "from", "to", "changes", "on_time", "on_time_share", "pending", "median_workdays",
                     "max_workdays", "overdue", "completeness_share", "in_post", "open_problems", "held"],
        "properties": {
            "unit": {"type": "string", "description": "unit.name"},
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "changes": {"type": "integer", "minimum": 0,
                        "description": "changes detected in the period, each once however often retried; "
                                       "withdrawn ones (HR took them back, an operator rejected them) not counted"},
            "on_time": {"type": "integer", "minimum": 0, "description": "in the directory by their due date"},
            "on_time_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                              "description": "on_time / (changes - pending); null when none is decided yet"},
            "pending": {"type": "integer", "minimum": 0, "description": "not in the directory yet, not due yet"},
            "median_workdays": {"type": ["number", "null"], "minimum": 0,
                                "description": "median working days from detection to the directory"},
            "max_workdays": {"type": ["integer", "null"], "minimum": 0, "description": "the longest, in working days"},
            "overdue": {"type": "integer", "minimum": 0,
                        "description": "changes of the period still not in the directory past their due date"},
            "completeness_share": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                                   "description": "in-post people with all eleven fields valid, in the latest "
                                                  "complete HR read; null when none"},
            "in_post": {"type": "integer", "minimum": 0},
            "open_problems": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                              "description": "open escalation problems by level (\"1\", \"2\")"},
            "held": {"type": "integer", "minimum": 0, "description": "held changes nobody has decided"},
        },
    },
    "Decision": {
        "type": "object",
        "required": ["run_id", "decided"],
        "properties": {"run_id": {"type": "string"},
                       "decided": {"type": "integer", "minimum": 1, "description": "changes approved or rejected"}},
    },
    "FreezeBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"by": {"type": "string", "minLength": 1, "maxLength": BY_MAX_LENGTH, "pattern": BY_PATTERN,
                              "description": "who asked (journalled); default the token's name"}},
    },
    "FreezeResult": {
        "type": "object",
        "required": ["employee_id", "frozen", "run_id"],
        "properties": {"employee_id": {"type": "string"}, "frozen": {"type": "boolean"}, "run_id": {"type": "string"}},
    },
    "Escalations": {
        "type": "object",
        "required": ["open", "resolved"],
        "properties": {"open": {"type": "array", "items": {"type": "object"}},
                       "resolved": {"type": "array", "items": {"type": "object"}}},
    },
    "Acknowledged": {
        "type": "object",
        "required": ["key", "acknowledged", "by"],
        "properties": {"key": {"type": "string"}, "acknowledged": {"const": True}, "by": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status", "last_success", "last_outcome", "version"],
        "properties": {"status": {"enum": ["ok", "failing"]},
                       "last_success": {"type": ["string", "null"], "format": "date-time"},
                       "last_outcome": _NULLABLE_STRING, "version": {"type": "string"}},
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "stable code: unauthorized, forbidden, invalid_request, "
                                                       "not_found, conflict, directory_refused, directory_busy, "
                                                       "queue_full, state_unavailable, internal, …"},
            "message": {"type": "string"},
            "field": {"type": "string",
                      "description": "invalid_request: the field at fault (`body` for the whole body)"},
            "category": {"type": "string", "description": "directory_refused: the directory's error category"},
        },
    },
}

_ERROR_RESPONSES: dict[str, Any] = {
    "Unauthorized": {**_json(_ref("Error"), "No token, or a token the tokens file does not hold"),
                     "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "Forbidden": _json(_ref("Error"), "The token's role does not allow this"),
    "TooManyFailures": {**_json(_ref("Error"), "This address sent too many requests without a valid token; "
                                               "wait `Retry-After` seconds (a valid token is still accepted)"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    "Invalid": _json(_ref("Error"), "The body is not JSON, not an object, or a field is wrong (named in `field`)"),
    "NotFound": _json(_ref("Error"), "Unknown id"),
    "StateUnavailable": {**_json(_ref("Error"), "The state database cannot be reached now (`state_unavailable`: "
                                                "PostgreSQL down or restarting); ask again after `Retry-After` "
                                                "seconds"),
                         "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    "Internal": _json(_ref("Error"), "Unexpected error; details are in the daemon's log"),
}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the control API."""
    employee = _path_parameter("employee_id", "HR employee id (工号)")
    run = _path_parameter("run_id", "The held run's id")
    decided = {"200": _json(_ref("Decision"), "The run's held changes were decided"),
               "404": _error("NotFound"),
               "409": _json(_ref("Error"), "The run has no changes waiting for a decision"), "422": _error("Invalid")}
    frozen = {"200": _json(_ref("FreezeResult"), "Done; the run id journals it"),
              "404": _error("NotFound"), "422": _error("Invalid"),
              "502": _json(_ref("Error"), "The directory refused or did not answer (`category` says why)"),
              "503": {**_json(_ref("Error"), "Other directory calls are still waiting for the directory "
                                             "(`directory_busy`), or the state database cannot be reached now "
                                             "(`state_unavailable`); ask again after `Retry-After` seconds"),
                      "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}
    paths: dict[str, Any] = {
        "/api/v1/resync": {"post": _operation(
            "Queue a resync of one person, one department or everything", "hr",
            {"202": {**_json(_ref("ResyncRequest"), "Queued (or the identical request already waiting); "
                                                      "poll the Location"),
                     "headers": {"Location": {"schema": {"type": "string"}}}},
             "422": _error("Invalid"),
             "429": {**_json(_ref("Error"), "Too many resyncs wait already (`queue_full`), or this address sent "
                                            "too many requests without a valid token; wait `Retry-After` seconds"),
                     "headers": {"Retry-After": {"schema": {"type": "integer"}}}}},
            body=_ref("ResyncBody"))},
        "/api/v1/resync/{id}": {"get": _operation(
            "A resync request and how it ended", "hr",
            {"200": _json(_ref("ResyncRequest"), "The request"), "404": _error("NotFound"), "422": _error("Invalid")},
            parameters=[_path_parameter("id", "The id returned when the resync was queued")])},
        "/api/v1/status": {"get": _operation(
            "Last runs, held runs, overdue changes, resyncs", "auditor", {"200": _json(_ref("Status"), "Status")})},
        "/api/v1/compliance": {"get": _operation(
            "Article 9 figures for the changes detected in a period", "auditor",
            {"200": _json(_ref("Compliance"), "The figures"),
             "422": _json(_ref("Error"), "`from` or `to` missing, not a date, or `to` before `from` "
                                         "(named in `field`)")},
            parameters=[_query_day("from", "First day of the period (in schedule.timezone)"),
                        _query_day("to", "Last day of the period, included")])},
        "/api/v1/runs/{run_id}/approve": {"post": _operation(
            "Approve the held changes of a run", "operator", decided, parameters=[run])},
        "/api/v1/runs/{run_id}/reject": {"post": _operation(
            "Reject the held changes of a run", "operator", decided, parameters=[run])},
        "/api/v1/people/{employee_id}/freeze": {"post": _operation(
            "Freeze a person's login now (a lost phone)", "operator", frozen,
            body=_ref("FreezeBody"), body_required=False, parameters=[employee])},
        "/api/v1/people/{employee_id}/unfreeze": {"post": _operation(
            "Unfreeze a person's login", "operator", frozen,
            body=_ref("FreezeBody"), body_required=False, parameters=[employee])},
        "/api/v1/escalations": {"get": _operation(
            "Open and recently resolved problems, with every notice sent about them", "hr",
            {"200": _json(_ref("Escalations"), "Problems")})},
        "/api/v1/escalations/{key}/ack": {"post": _operation(
            "Acknowledge an open problem: its reminders stop, its level-2 deadline does not", "operator",
            {"200": _json(_ref("Acknowledged"), "Acknowledged"), "404": _error("NotFound"), "422": _error("Invalid")},
            body=_ref("FreezeBody"), body_required=False,
            parameters=[_path_parameter("key", "The problem's key", KEY_MAX_LENGTH)])},
        "/api/v1/openapi.json": {"get": _operation(
            "This document", None, {"200": _json({"type": "object"}, "OpenAPI 3.1")})},
        "/healthz": {"get": _operation(
            "Whether the service is doing its job", None,
            {"200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Failing")})},
        "/metrics": {"get": _operation(
            "Prometheus metrics", None,
            {"200": {"description": "Prometheus text (or OpenMetrics when asked for by Accept)",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "syncd control API", "version": version,
                 "description": "Manual resyncs, status, held-run decisions and login freezes of the "
                                "HR → Zhengzhengding directory sync. Roles: auditor may read status and the "
                                "Article 9 figures; hr may resync too; operator may do everything."},
        "servers": [{"url": "/"}],
        "security": _BEARER,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `syncd token add NAME --role auditor|hr|operator`"}},
            "schemas": SCHEMAS,
            "responses": _ERROR_RESPONSES,
        },
    }

"""The console's safety without a browser: CSRF, sessions and their cookie, headers, sign-in limits, roles."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests
from flask import Flask
from structlog.testing import capture_logs
from werkzeug.test import TestResponse

from syncd.console import CSP, is_api_path, register_console
from syncd.console.auth import SESSION_COOKIE, SESSION_LIFETIME, SignInLimiter
from syncd.console.web import SECURITY_HEADERS
from syncd.reporting import messages
from syncd.service.api import create_api, required_role
from tests.console.conftest import csrf_of, sign_in
from tests.console.harness import Bureau, Console, build_console


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(bureau: Bureau, clock: Clock) -> Iterator[Console]:
    """The console on a clock the test moves, with a sign-in limiter on it too."""
    built = build_console(bureau, clock=clock, limiter=SignInLimiter(clock=clock))
    try:
        yield built
    finally:
        built.daemon.engine.close()
        built.daemon.store.close()


def queued(console: Console) -> int:
    return len([r for r in console.daemon.store.resyncs() if r.status == "queued"])


# -- CSRF -------------------------------------------------------------------------------------------


def test_a_form_post_without_the_csrf_token_is_refused_and_does_nothing(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    response = client.post("/people/A000002/resync", data={})
    assert response.status_code == 400
    assert "表单已过期或来源不明" in response.text
    assert queued(console) == 0


def test_a_form_post_with_another_sessions_csrf_token_is_refused(console: Console, bureau: Bureau) -> None:
    other = console.app.test_client()
    sign_in(other, bureau.tokens["hr"])
    foreign = csrf_of(other.get("/people/A000002").text)
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    assert client.post("/people/A000002/resync", data={"csrf_token": foreign}).status_code == 400
    assert queued(console) == 0


def test_the_same_post_with_the_pages_csrf_token_queues_the_resync_in_the_tokens_name(console: Console,
                                                                                     bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    token = csrf_of(client.get("/people/A000002").text)
    response = client.post("/people/A000002/resync", data={"csrf_token": token})
    assert response.status_code == 303
    [request] = console.daemon.store.resyncs()
    assert (request.scope.kind, request.scope.value, request.requested_by) == ("employee", "A000002", "hr-portal")
    assert response.headers["Location"] == f"/people/A000002?resync={request.id}"


def test_signing_in_needs_the_forms_csrf_token_too(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    response = client.post("/signin", data={"token": bureau.tokens["hr"]})
    assert response.status_code == 400
    assert client.get("/").status_code == 303  # not signed in


def test_the_json_api_needs_no_csrf_token(console: Console, bureau: Bureau) -> None:
    response = console.app.test_client().post("/api/v1/resync", json={"employee_id": "A000002"},
                                              headers={"Authorization": f"Bearer {bureau.tokens['hr']}"})
    assert response.status_code == 202


# -- sessions and the cookie ------------------------------------------------------------------------


def cookie_header(response: TestResponse) -> str:
    [cookie] = [value for value in response.headers.getlist("Set-Cookie") if value.startswith(SESSION_COOKIE + "=")]
    return str(cookie)


def test_the_session_cookie_is_httponly_samesite_strict_for_eight_hours_and_holds_no_token(
        console: Console, bureau: Bureau) -> None:
    response = sign_in(console.app.test_client(), bureau.tokens["hr"])
    assert response.status_code == 303
    cookie = cookie_header(response)
    assert SESSION_LIFETIME.total_seconds() == 8 * 3600
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires is not None
    lifetime = parsedate_to_datetime(expires.group(1)).timestamp() - time.time()
    assert abs(lifetime - 8 * 3600) < 120
    assert bureau.tokens["hr"] not in cookie


def test_the_cookie_is_secure_over_https(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    form = client.get("/signin", base_url="https://console.example")
    response = client.post("/signin", base_url="https://console.example",
                           data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"]})
    assert response.status_code == 303
    assert "Secure" in cookie_header(response)


def test_the_cookie_is_secure_behind_a_tls_proxy_when_configured(console: Console, bureau: Bureau) -> None:
    services = console.app.extensions["syncd"]
    app = create_api(services.control, services.tokens, services.metrics)
    register_console(app, console.data, b"s" * 32, tokens_file=bureau.config.api.tokens_file, secure_cookies=True)
    assert "Secure" in cookie_header(sign_in(app.test_client(), bureau.tokens["hr"]))


def test_a_session_expires_eight_hours_after_signing_in_however_active(timed: Console, bureau: Bureau,
                                                                      clock: Clock) -> None:
    client = timed.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    for _ in range(7):
        clock.now += 3600
        assert client.get("/runs").status_code == 200  # in use all day
    clock.now += 3599
    assert client.get("/runs").status_code == 200
    clock.now += 1
    response = client.get("/runs")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/signin?next=/runs")
    assert "why=expired" in response.headers["Location"]
    assert "登录已过期" in client.get(response.headers["Location"]).text
    clock.now -= 3600  # a session that ended stays ended, even if the clock is put back
    assert client.get("/runs").status_code == 303


def test_a_session_ends_when_its_token_is_removed_from_the_tokens_file(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    assert client.get("/runs").status_code == 200
    tokens_file = bureau.root / "tokens.toml"
    text = tokens_file.read_text(encoding="utf-8")
    kept = "[[token]]" + text.split("[[token]]")[2]  # only the operator's entry
    tokens_file.write_text(kept, encoding="utf-8")
    with capture_logs() as logs:
        assert client.get("/runs").status_code == 303
    assert any(e["event"] == "console.session_revoked" for e in logs)


def test_signing_out_ends_the_session(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = client.get("/runs")
    assert client.post("/signout", data={"csrf_token": csrf_of(page.text)}).status_code == 303
    assert client.get("/runs").status_code == 303


def test_a_sign_in_returns_to_the_page_asked_for_but_never_off_site(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    form = client.get("/signin?next=/runs")
    response = client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"],
                                            "next": "/runs"})
    assert response.headers["Location"] == "/runs"
    client = console.app.test_client()
    form = client.get("/signin")
    response = client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"],
                                            "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


# -- sign-in limits ---------------------------------------------------------------------------------


def test_failed_sign_ins_are_limited_per_address_and_logged_without_the_token(timed: Console, bureau: Bureau,
                                                                            clock: Clock) -> None:
    client = timed.app.test_client()
    with capture_logs() as logs:
        for n in range(5):
            form = client.get("/signin")
            response = client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": f"guess-{n}"})
            assert response.status_code == 401 and "令牌无效" in response.text
        for n in range(3):
            form = client.get("/signin")
            limited = client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": f"more-{n}"})
            assert limited.status_code == 429  # a wrong token, until the window has passed
    assert "登录失败次数过多" in limited.text and int(limited.headers["Retry-After"]) > 0
    failed = [e for e in logs if e["event"] == "console.signin_failed"]
    assert [e["failures"] for e in failed] == [1, 2, 3, 4, 5]
    assert len([e for e in logs if e["event"] == "console.signin_limited"]) == 1  # one line for the flood
    assert all(e["remote_addr"] == "127.0.0.1" for e in failed)
    assert not any("guess-" in repr(e) or "more-" in repr(e) or bureau.tokens["hr"] in repr(e) for e in logs)
    form = client.get("/signin")  # the right token is never refused, limited or not
    assert client.post("/signin", data={"csrf_token": csrf_of(form.text),
                                        "token": bureau.tokens["hr"]}).status_code == 303
    client = timed.app.test_client()
    form = client.get("/signin")
    assert client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": "again"}).status_code == 429
    other = timed.app.test_client()  # another address is not held back
    form = other.get("/signin", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.post("/signin", data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"]},
                      environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 303
    clock.now += 301
    form = client.get("/signin")
    assert client.post("/signin", data={"csrf_token": csrf_of(form.text),
                                        "token": bureau.tokens["hr"]}).status_code == 303


# -- headers ----------------------------------------------------------------------------------------


PAGES = ["/", "/completeness", "/completeness?d=D0002", "/people", "/people/A000002", "/departments/D0001",
         "/departments/D0003", "/runs", "/held", "/no-such-page", "/people/nobody"]


@pytest.mark.parametrize("path", [*PAGES, "/signin", "/static/console/console.css", "/completeness/report.xlsx"])
def test_every_console_response_has_the_security_headers(console: Console, bureau: Bureau, path: str) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["operator"])
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CSP
    assert "unsafe-inline" not in CSP and "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_with_personal_data_are_not_cached(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    assert client.get("/people/A000002").headers["Cache-Control"] == "no-store"


def test_the_templates_have_no_inline_script_and_no_outside_resource() -> None:
    templates = Path(__file__).resolve().parents[2] / "syncd" / "console" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script" not in text, template.name
        assert not re.search(r"\son[a-z]+=", text), template.name  # no onclick= and the like
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template.name
        assert "style=\"" not in text, template.name  # the CSP allows no inline style either


# -- roles and the one authorisation point ----------------------------------------------------------


def console_rules(app: Flask) -> list[tuple[str, str, object]]:
    return [(rule.rule, rule.endpoint, app.view_functions[rule.endpoint]) for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("console.") and rule.endpoint != "console.static"]


def test_every_console_page_needs_a_role_and_the_decisions_need_an_operator(console: Console) -> None:
    roles = {rule: required_role(view) for rule, _, view in console_rules(console.app)}
    public = {rule for rule, role in roles.items() if role is None}
    assert public == {"/signin", "/signout"}
    assert {rule for rule, role in roles.items() if role == "operator"} == {
        "/held", "/held/<run_id>/<decision>", "/held/run-now", "/onboard", "/onboard/review.xlsx"}
    assert all(not is_api_path(rule) for rule in roles)


def test_hr_gets_the_chinese_403_page_and_cannot_decide(console: Console, bureau: Bureau) -> None:
    held = bureau.cycle()  # nothing held; the run id exists
    assert held.run_id is not None
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = client.get("/held")
    assert page.status_code == 403 and "无权访问" in page.text and "仅限运维人员" in page.text
    token = csrf_of(client.get("/runs").text)
    with capture_logs() as logs:
        refused = client.post(f"/held/{held.run_id}/approve", data={"csrf_token": token})
    assert refused.status_code == 403
    assert any(e["event"] == "console.forbidden" and e["needed"] == "operator" for e in logs)
    assert not any(e["event"] == "run.decided" for e in logs)


def test_an_unknown_page_is_a_chinese_404_and_an_unknown_api_route_stays_json(console: Console,
                                                                             bureau: Bureau) -> None:
    client = console.app.test_client()
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "页面不存在" in page.text and page.mimetype == "text/html"
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api.json == {"error": "not_found", "message": api.json["message"]}
    assert client.post("/healthz").status_code == 405 and client.post("/healthz").is_json


def test_a_form_too_large_for_the_server_is_the_chinese_413_page_with_the_consoles_headers(served: Console) -> None:
    # waitress refuses it from its Content-Length, before Flask sees it: the page comes from the server itself.
    answer = requests.post(f"{served.base_url}/people/search", data={"q": "x" * 70 * 1024}, timeout=10)
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.encoding == "utf-8" and '<html lang="zh-CN">' in answer.text
    assert messages.console_text("too_large") in answer.text and "Request Entity" not in answer.text
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value, name
    assert answer.headers["Cache-Control"] == "no-store"
    api = requests.post(f"{served.base_url}/api/v1/resync", data=b"{" + b" " * 70_000 + b"}", timeout=10,
                        headers={"Content-Type": "application/json"})
    assert api.status_code == 413 and api.json()["error"] == "request_entity_too_large"


def test_a_malformed_id_is_refused_by_the_apis_own_check(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    token = csrf_of(client.get("/runs").text)
    response = client.post("/departments/" + "D" * 100 + "/resync", data={"csrf_token": token})
    assert response.status_code == 400 and "请求无效" in response.text
    assert queued(console) == 0


# -- no name or mobile in a URL or a log ------------------------------------------------------------


def test_a_search_by_name_is_a_post_whose_name_is_not_in_the_log(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    token = csrf_of(client.get("/people").text)
    with capture_logs() as logs:
        found = client.post("/people/search", data={"csrf_token": token, "q": "阿依古丽"})
    assert found.status_code == 200 and "A000005" in found.text
    [event] = [e for e in logs if e["event"] == "console.person_search"]
    assert event["by"] == "name" and "query" not in event and event["hits"] == 1
    assert "阿" not in repr(logs)
    by_id = client.post("/people/search", data={"csrf_token": token, "q": "A000005"})
    assert by_id.status_code == 303 and by_id.headers["Location"] == "/people/A000005"


def test_no_link_on_any_page_carries_a_name_or_a_mobile(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["operator"])
    names = {"张明", "李华", "王芳", "赵强", "阿依古丽", "陈刚"}
    for path in PAGES:
        links = re.findall(r'(?:href|action|src)="([^"]*)"', client.get(path).text)
        for link in links:
            assert not re.search(r"1[3-9]\d{9}", link), (path, link)
            assert not any(name in link for name in names), (path, link)


"""Signing in and out over real HTTP, as a hostile neighbour would try it: redirects, revoked cookies, floods."""

from __future__ import annotations

from urllib.parse import quote

import requests

from tests.console.conftest import csrf_of
from tests.console.harness import Bureau, Console

# Each is the `next` value the server sees (after the query string's own decoding).
HOSTILE_NEXT = [
    "//evil.example/x", "///evil.example/x", "/\t/evil.example/x", "/\n/evil.example/x", "/\r/evil.example/x",
    "/%09/evil.example/x", "/%0a/evil.example/x", "/%0d%0aSet-Cookie:x=1", "/%2f/evil.example/x",
    "/%252f/evil.example/x", "/%5cevil.example/x", "/\\evil.example/x", "\\\\evil.example/x", "/\\/evil.example",
    "https://evil.example/", "http:evil.example", "javascript:alert(1)", "evil.example/x", " /runs",
    "/\x00/evil.example", "/%00/runs", "/runs\x7f", "/%e2%80%ae/evil.example", "/\u202e/runs", "/\u2028/runs",
    "/" + "a" * 5000,
]
SAFE_NEXT = ["/runs", "/people/A000002", "/completeness?d=D0002", "/"]


def _signin_url(base_url: str, next_value: str) -> str:
    return f"{base_url}/signin?next={quote(next_value, safe='')}"


def _post_sign_in(base_url: str, token: str, next_value: str) -> requests.Response:
    """A fresh client: the sign-in form (with `next` in its URL), then the form posted with `next`."""
    with requests.Session() as client:
        form = client.get(_signin_url(base_url, next_value), timeout=10)
        assert form.status_code == 200, (next_value, form.status_code)
        assert "evil.example" not in form.text, next_value  # a refused `next` is not carried in the form
        return client.post(f"{base_url}/signin", data={"csrf_token": csrf_of(form.text), "token": token,
                                                        "next": next_value}, allow_redirects=False, timeout=10)


def test_every_hostile_next_lands_on_the_overview_and_none_answers_500(served: Console, bureau: Bureau) -> None:
    for value in HOSTILE_NEXT:
        response = _post_sign_in(served.base_url, bureau.tokens["hr"], value)
        assert response.status_code == 303, (value, response.status_code)
        assert response.headers["Location"] == "/", (value, response.headers["Location"])


def test_a_signed_in_user_following_a_hostile_sign_in_link_stays_on_the_site(served: Console,
                                                                            bureau: Bureau) -> None:
    with requests.Session() as client:
        form = client.get(f"{served.base_url}/signin", timeout=10)
        client.post(f"{served.base_url}/signin", data={"csrf_token": csrf_of(form.text), "token": bureau.tokens["hr"]},
                    timeout=10)
        for value in HOSTILE_NEXT:
            response = client.get(_signin_url(served.base_url, value), allow_redirects=False, timeout=10)
            assert response.status_code == 303, (value, response.status_code)
            assert response.headers["Location"] == "/", (value, response.headers["Location"])


def test_a_same_site_next_is_followed_after_signing_in(served: Console, bureau: Bureau) -> None:
    for value in SAFE_NEXT:
        response = _post_sign_in(served.base_url, bureau.tokens["hr"], value)
        assert response.status_code == 303 and response.headers["Location"] == value, value


def test_a_page_asked_for_with_control_characters_in_its_path_does_not_become_a_redirect_off_site(
        served: Console) -> None:
    response = requests.get(f"{served.base_url}/%09/evil.example/x", allow_redirects=False, timeout=10)
    assert response.status_code in (303, 404)
    assert "evil.example" not in response.headers.get("Location", "")


def _signed_in(base_url: str, token: str) -> requests.Session:
    client = requests.Session()
    form = client.get(f"{base_url}/signin", timeout=10)
    response = client.post(f"{base_url}/signin", data={"csrf_token": csrf_of(form.text), "token": token},
                           allow_redirects=False, timeout=10)
    assert response.status_code == 303
    return client


def test_a_cookie_copied_before_signing_out_opens_nothing_afterwards(served: Console, bureau: Bureau) -> None:
    client = _signed_in(served.base_url, bureau.tokens["hr"])
    copied = dict(client.cookies)
    page = client.get(f"{served.base_url}/people/A000002", timeout=10)
    assert page.status_code == 200
    other = _signed_in(served.base_url, bureau.tokens["hr"])  # another session of the same token
    signed_out = client.post(f"{served.base_url}/signout", data={"csrf_token": csrf_of(page.text)},
                             allow_redirects=False, timeout=10)
    assert signed_out.status_code == 303
    with requests.Session() as thief:
        thief.cookies.update(copied)
        reused = thief.get(f"{served.base_url}/people/A000002", allow_redirects=False, timeout=10)
    assert reused.status_code == 303 and reused.headers["Location"].startswith("/signin")
    # Only that session ended: the other one, signed in with the same token, still opens the page.
    assert other.get(f"{served.base_url}/people/A000002", allow_redirects=False, timeout=10).status_code == 200
    other.close()
    client.close()


def test_a_flood_of_wrong_tokens_is_limited_but_never_refuses_the_right_one(served: Console, bureau: Bureau) -> None:
    statuses = []
    with requests.Session() as flooder:
        for n in range(12):
            form = flooder.get(f"{served.base_url}/signin", timeout=10)
            statuses.append(flooder.post(f"{served.base_url}/signin", allow_redirects=False, timeout=10,
                                         data={"csrf_token": csrf_of(form.text), "token": f"guess-{n}"}).status_code)
    assert statuses == [401] * 5 + [429] * 7
    client = _signed_in(served.base_url, bureau.tokens["hr"])  # same address, during the lockout
    assert client.get(f"{served.base_url}/runs", allow_redirects=False, timeout=10).status_code == 200
    client.close()

"""Personal data by need (art. 15): HR sees mobiles masked until it reveals one; reveals and look-ups are logged."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.console.conftest import Browser, csrf_of, sign_in
from tests.console.harness import Bureau, Console
from tests.console.test_pages import visible_text


def test_hr_sees_a_mobile_masked_until_it_reveals_it_and_the_reveal_is_logged(console: Console,
                                                                               bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    with capture_logs() as logs:
        page = client.get("/people/A000002").text
    assert "13800000002" not in page and "138****0002" in visible_text(page)
    [viewed] = [e for e in logs if e["event"] == "console.person_viewed"]
    assert viewed["employee_id"] == "A000002" and viewed["token_name"] == "hr-portal"
    assert "李华" not in repr(logs) and "13800000002" not in repr(logs)

    with capture_logs() as logs:
        revealed = client.post("/people/A000002/reveal", data={"csrf_token": csrf_of(page)}).text
    assert "13800000002" in revealed
    [event] = [e for e in logs if e["event"] == "console.personal_data_viewed"]
    assert (event["token_name"], event["employee_id"], event["field"]) == ("hr-portal", "A000002", "mobile")
    assert "13800000002" not in repr(logs) and "李华" not in repr(logs)
    assert "13800000002" not in client.get("/people/A000002").text  # one click shows it once
    assert client.post("/people/A000002/reveal").status_code == 400  # no CSRF token, no reveal


def test_run_pages_mask_changed_mobiles_for_hr_and_reveal_one_person_with_a_logged_click(
        console: Console, bureau: Bureau) -> None:
    path = bureau.root / "people.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("13800000002", "13900000002"), encoding="utf-8")
    changed = bureau.cycle()
    assert changed.outcome == "success" and changed.run_id is not None
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = client.get(f"/runs/{changed.run_id}").text
    assert "13900000002" not in page and "139****0002" in visible_text(page)
    with capture_logs() as logs:
        revealed = client.post(f"/runs/{changed.run_id}/reveal?page=1",
                               data={"csrf_token": csrf_of(page), "employee_id": "A000002"}).text
    assert "13900000002" in revealed
    [event] = [e for e in logs if e["event"] == "console.personal_data_viewed"]
    assert event["employee_id"] == "A000002" and event["page"] == "run"

    operator = console.app.test_client()
    sign_in(operator, bureau.tokens["operator"])
    assert "13900000002" in operator.get(f"/runs/{changed.run_id}").text  # what it needs to fix


def test_hr_reveals_a_mobile_in_the_browser(served: Console, bureau: Bureau, browser: Browser) -> None:
    browser.sign_in(bureau.tokens["hr"])
    browser.open("/people/A000003")
    assert "138****0003" in browser.text("#hr-record") and "13800000003" not in browser.text()
    browser.shots_at_both_sizes("40-mobile-masked")
    with capture_logs() as logs:
        browser.click("#hr-record button.reveal")
        browser.until(lambda: "13800000003" in browser.text("#hr-record"), "the mobile revealed")
    assert [e["employee_id"] for e in logs if e["event"] == "console.personal_data_viewed"] == ["A000003"]
    browser.shots_at_both_sizes("41-mobile-revealed")

"""The console's 接入核对 page in a real headless Chromium: an operator makes the onboarding review, reads its
counts, suggestions and what only the directory holds, and downloads the workbook; HR does not see it."""

from __future__ import annotations

from openpyxl import load_workbook

from connectors.zzd.client import ContactsClient
from syncd.console.onboard import ONBOARD_EXTENSION, OnboardReviews
from syncd.engine.onboard import build_review
from tests.conftest import DEPARTMENTS
from tests.console.conftest import Browser
from tests.console.harness import TENANT, Bureau, Console

LEFT = ("13900000011", "13900000012", "13900000013")


def with_onboard_reviews(console: Console) -> None:
    """The line `Daemon._serve_api` adds for the page."""
    daemon = console.daemon
    console.app.extensions[ONBOARD_EXTENSION] = OnboardReviews(lambda: build_review(
        daemon.engine.config, console.snapshots(), daemon.engine.target, daemon.store))


def test_an_operator_makes_the_onboarding_review_reads_it_and_downloads_the_workbook(
        browser: Browser, bureau: Bureau, served: Console) -> None:
    hand = ContactsClient(bureau.server.base_url, TENANT.app_key, lambda: TENANT.app_secret, TENANT.tenant_id, "admin")
    archive = hand.create_gov_organization(TENANT.root_code, "档案室")  # typed by hand, unknown to HR
    left = sorted(str(hand.create_complex_employee(archive, {
        "employeeName": f"旧人{n}", "govEmpCellPhoneNo": mobile, "areaCode": "86"})["employeeCode"])
        for n, mobile in enumerate(LEFT))
    second = hand.create_gov_organization(TENANT.root_code, "审计二处")
    # HR has a new department the admin already typed, a little differently: a suggestion.
    bureau.write_export(departments=[*DEPARTMENTS, {"部门编号": "D0006", "部门名称": "审计第二处", "简称": "",
                                                    "上级部门编号": "D0001", "排序": "5"}])
    served.snapshots.refresh_soon()
    served.snapshots.wait_refreshed(10)
    with_onboard_reviews(served)

    browser.sign_in(bureau.tokens["operator"])
    browser.click("nav a[href='/onboard']")
    browser.until(lambda: browser.path == "/onboard", "the 接入核对 page")
    assert browser.finds("#onboard-none")
    browser.click("#onboard-start")
    browser.until(lambda: browser.finds("#onboard-download"), "the review to be made")
    counts = {e.get_attribute("data-key"): int(e.text) for e in browser.finds(".card .v")}
    assert counts["people.directory_only"] == 3 and counts["people.linked"] == 5
    assert counts["departments.directory_only"] == 1 and counts["departments.to_confirm"] == 1
    suggestions = browser.text("#onboard-suggestions")
    assert "审计第二处（D0006）" in suggestions and "相似名称" in suggestions and second in suggestions
    assert "档案室" in browser.text("#onboard-directory-departments")
    people = browser.text("#onboard-directory-people")
    assert all(code in people for code in left)
    browser.shot("20-onboard")

    browser.click("#onboard-download")
    [path] = browser.until(lambda: list(browser.downloads.glob("*.xlsx")), "the workbook download")
    assert path.name.startswith("接入核对-")
    workbook = load_workbook(path)
    assert {"部门", "人员"} <= set(workbook.sheetnames)
    rows = list(workbook["人员"].iter_rows(values_only=True))
    code = rows[0].index("employeeCode")
    assert set(left) <= {row[code] for row in rows[1:]}


def test_hr_has_no_onboarding_page(browser: Browser, bureau: Bureau, served: Console) -> None:
    with_onboard_reviews(served)
    browser.sign_in(bureau.tokens["hr"])
    assert not browser.finds("nav a[href='/onboard']")
    browser.open("/onboard")
    assert "接入核对" not in browser.text("h1")

"""The city console in a real headless Chromium: sign in, 全市概览, a unit's page, 年度考核 and its workbook.

The city app is served by waitress, as `syncd city` serves it, over four units (`city_of_four`);
every page visited is saved under the session's `screenshots/` directory at office and phone sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from selenium import webdriver

from syncd.city import load_city
from syncd.console.city import create_city_app
from syncd.service.http import WsgiServer
from tests.console.conftest import Browser
from tests.console.harness import City, city_of_four


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    with city_of_four(tmp_path_factory.mktemp("city")) as city:
        yield city


@pytest.fixture
def city_browser(chromium: webdriver.Chrome, city: City, screenshots: Path, tmp_path: Path) -> Iterator[Browser]:
    """The browser, signed out, on the city console served by waitress; downloads land in the test's directory."""
    server = WsgiServer(create_city_app(load_city(city.config_path), b"s" * 32), "127.0.0.1", 0,
                        ident="syncd-city-test").start()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        yield Browser(chromium, f"http://127.0.0.1:{server.port}", screenshots, downloads)
    finally:
        server.stop()


def test_the_city_admin_sees_every_unit_worst_first_opens_one_and_downloads_the_assessment(
        city_browser: Browser, city: City) -> None:
    browser = city_browser
    browser.open("/")
    assert browser.path.startswith("/signin")
    assert "市局管理员" in browser.text()
    browser.shot("city-01-signin")
    browser.sign_in(city.token)
    browser.until(lambda: browser.path == "/", "the overview after signing in")
    assert browser.text("h1") == "全市概览"
    names = [row.text.split()[0] for row in browser.finds("#units tbody tr")]
    assert names == ["C区", "D区", "B区", "A区"]
    assert "无法连接" in browser.text("#unit-2") and "令牌被拒绝" in browser.text("#unit-4")
    assert browser.text("#count-unreadable") == "2" and browser.text("#count-overdue") == "1"
    browser.shots_at_both_sizes("city-02-overview")

    browser.click("#unit-3 a")  # B区, with its overdue change
    browser.until(lambda: browser.path.startswith("/unit/3"), "B区's page")
    assert browser.text("#unit-name") == "B区"
    assert "逾期未同步" in browser.text("#figures") and "新增人员" in browser.text("#overdue")
    browser.shots_at_both_sizes("city-03-unit")

    browser.open("/unit/2")  # C区: nothing listens
    assert "无法连接" in browser.text("#unit-error") and "systemctl status syncd" in browser.text("#unit-advice")
    browser.shot("city-04-unit-down")

    browser.click("nav a[href='/assessment']")
    browser.until(lambda: browser.path == "/assessment", "the assessment page")
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year  # the city console's zone
    assert f"{year} 年" in browser.text("h1") and "无法读取" in browser.text("#unreadable-warning")
    browser.shots_at_both_sizes("city-05-assessment")
    browser.click("#download")
    workbook = browser.until(lambda: next((p for p in browser.downloads.glob("*.xlsx")), None),
                             "the assessment workbook downloaded")
    assert workbook.name.startswith(f"年度考核-{year}-")
    rows = list(load_workbook(workbook).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["C区", "D区", "B区", "A区"] and rows[1][1] == "无法连接"

    browser.click("#signout")
    browser.until(lambda: browser.path.startswith("/signin"), "the sign-in page after signing out")
    browser.open("/assessment")
    assert browser.path.startswith("/signin")

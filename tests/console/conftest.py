"""Fixtures of the console's tests: a synced bureau, the console built on it, and a headless Chromium."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.console.harness import Bureau, Console, build_console, bureau_at, serve

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1366, 768  # the office screen the console must work on
PHONE = (390, 844)  # the phone Zhengzhengding lives on
WAIT = 20.0


@pytest.fixture
def bureau(tmp_path: Path) -> Iterator[Bureau]:
    """The small bureau, synced once into the simulator, with hr and operator tokens."""
    with bureau_at(tmp_path) as bureau:
        yield bureau


@pytest.fixture
def console(bureau: Bureau) -> Iterator[Console]:
    """The daemon's app with the console, not served (for Flask's test client)."""
    built = build_console(bureau)
    try:
        yield built
    finally:
        built.snapshots.wait_refreshed(10)
        built.daemon.engine.close()
        built.daemon.store.close()


@pytest.fixture
def served(bureau: Bureau) -> Iterator[Console]:
    """The console served by waitress on a free port, queued resyncs carried out as the daemon does."""
    with serve(build_console(bureau)) as console:
        yield console


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, token: str) -> Any:
    """Sign in through the form, as a browser does (CSRF token from the form)."""
    form = client.get("/signin")
    return client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": token})


# -- the browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests keep a screenshot of each page they visit."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Debian's Chromium, headless, driven by its chromedriver (installed by tests/services.sh)."""
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "run `bash tests/services.sh` (make test does)"
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--lang=zh-CN", f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # The page area of a 1366×768 screen, whatever the headless window's own frame takes.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """A headless Chromium on one served console: open pages, fill forms, take screenshots."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, shots: Path, downloads: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.shots = shots
        self.downloads = downloads
        driver.delete_all_cookies()
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                                "eventsEnabled": True})

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        return str(self.driver.current_url)[len(self.base_url):]

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str = "body") -> str:
        return str(self.find(css).text)

    def click(self, css: str) -> None:
        self.find(css).click()

    def type(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def sign_in(self, token: str) -> None:
        """Sign in with a valid token, and wait for the page the console sends you on to."""
        self.open("/signin")
        self.type("#token", token)
        self.click("#signin")
        # The click returns once the form is submitted, not once the next page is there.
        self.until(lambda: not self.path.startswith("/signin") and self.finds("nav"), "the page after signing in")

    def until(self, check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = check()
            except WebDriverException:  # the page was being replaced (a refresh) while it was read
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s: {what}; at {self.path}:\n{self.text()[:2000]}")
            time.sleep(0.1)

    def shot(self, name: str) -> Path:
        """A screenshot of what a 1366×768 screen shows of the page now."""
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shots_at_both_sizes(self, name: str) -> tuple[Path, Path]:
        """Screenshots of the page on the office screen and on a 390×844 phone; the phone's page must
        not be wider than the phone (no sideways scrolling)."""
        office = self.shot(name)
        self.as_phone(True)
        try:
            width = self.driver.execute_script("return document.documentElement.scrollWidth")
            phone = self.shot(f"{name}-phone")
            assert width <= PHONE[0], f"{name}: the page is {width} px wide on a {PHONE[0]} px phone"
        finally:
            self.as_phone(False)
        return office, phone

    def as_phone(self, phone: bool) -> None:
        """Show pages as a 390×844 phone does (or as the office screen again)."""
        width, height = PHONE if phone else (WIDTH, HEIGHT)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone})


@pytest.fixture
def browser(chromium: webdriver.Chrome, served: Console, screenshots: Path, tmp_path: Path) -> Browser:
    """The browser, signed out, on the served console; downloads land in the test's directory."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    return Browser(chromium, served.base_url, screenshots, downloads)

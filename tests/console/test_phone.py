"""The console on a 390×844 phone: no page wider than the phone, the whole menu reachable, every input labelled."""

from __future__ import annotations

import re

from tests.conftest import PEOPLE, person
from tests.console.conftest import PHONE, Browser, sign_in
from tests.console.harness import Bureau, Console
from tests.console.test_pages import PAGES

MENU = ["/", "/completeness", "/people", "/departments", "/held", "/onboard", "/runs", "/changes"]


def test_every_page_fits_a_phone_with_the_whole_menu_visible(served: Console, bureau: Bureau,
                                                             browser: Browser) -> None:
    bureau.write_export(people=[*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 职级="")])
    served.snapshots.refresh_soon()
    browser.sign_in(bureau.tokens["operator"])
    browser.as_phone(True)
    try:
        for path in [p for p in PAGES if p != "/signin"]:
            browser.open(path)
            width = browser.driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE[0], f"{path} is {width} px wide on a {PHONE[0]} px phone"
            for link in browser.finds("nav a"):  # every menu entry on screen, none cut off or scrolled away
                box = link.rect
                assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0], (path, link.text, box)
            if path != "/no-such-page":  # an unknown address is answered before anyone is known
                assert [a.get_attribute("href").split("/", 3)[3] for a in browser.finds("nav a")] == \
                    [m.lstrip("/") for m in MENU]
        browser.open("/changes")
        browser.shot("60-changes-phone")
        browser.open("/departments/D0003")
        browser.shot("61-department-phone")
    finally:
        browser.as_phone(False)


def test_every_input_a_person_fills_in_has_a_label(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["operator"])
    pages = [client.get(path).text for path in PAGES if path != "/signin"]
    pages.append(console.app.test_client().get("/signin").text)
    for page in pages:
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        for tag in re.findall(r"<(?:input|select)\b[^>]*>", page):
            if 'type="hidden"' in tag or 'type="submit"' in tag:
                continue
            wrapped = re.search(r"<label[^>]*>\s*" + re.escape(tag), page)
            found = re.search(r'id="([^"]+)"', tag)
            assert wrapped or (found and found.group(1) in labelled), tag

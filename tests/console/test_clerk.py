"""The clerk's tools: completeness by field and department, sortable, with the bad value; the legend; filters."""

from __future__ import annotations

import re

from tests.conftest import PEOPLE, person
from tests.console.conftest import Browser, sign_in
from tests.console.harness import Bureau, Console
from tests.console.test_pages import visible_text

PROBLEMS = [*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 职级=""),
            person("A000008", "周杰", "13800000008", "D0002", 办公电话=""),
            person("A000012", "冯雪", "13800000012", "D0003", 办公电话="")]


def ids_in(page: str) -> list[str]:
    table = re.search(r'<table id="incomplete">(.*?)</table>', page, re.S)
    assert table is not None
    return re.findall(r">(A\d{6})</a>", table.group(1))


def test_completeness_filters_by_field_and_department_sorts_and_shows_the_bad_value(console: Console,
                                                                                     bureau: Bureau) -> None:
    bureau.write_export(people=PROBLEMS)
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    everyone = client.get("/completeness").text
    assert ids_in(everyone) == ["A000008", "A000007", "A000012"]  # by department path, then 工号
    fields = visible_text(re.search(r'<div class="panel" id="fields">(.*?)</div>\s*</div>', everyone, re.S)
                          .group(1))  # type: ignore[union-attr]
    assert all(label in fields for label in ("姓名", "性别", "手机号", "编制", "职级", "政治面貌", "人员角色", "职务",
                                             "职务层次", "办公电话", "领导分工"))
    assert "办公电话 2" in fields and "手机号 1" in fields

    assert ids_in(client.get("/completeness?f=office_phone").text) == ["A000008", "A000012"]
    assert ids_in(client.get("/completeness?f=office_phone&d=D0003").text) == ["A000012"]
    by_name = ids_in(client.get("/completeness?sort=name").text)
    assert by_name == ["A000012", "A000008", "A000007"]  # 冯 周 孙, by code point
    assert ids_in(client.get("/completeness?sort=employee_id&desc=1").text) == ["A000012", "A000008", "A000007"]
    assert client.get("/completeness?f=salary").status_code == 404

    bad = visible_text(client.get("/completeness?f=mobile").text)
    assert "手机号：“1380000”" in bad  # the value HR must correct


def test_hr_filters_completeness_by_field_in_the_browser(served: Console, bureau: Bureau, browser: Browser) -> None:
    bureau.write_export(people=PROBLEMS)
    served.snapshots.refresh_soon()
    browser.sign_in(bureau.tokens["hr"])
    browser.open("/completeness")
    browser.until(lambda: "A000012" in browser.text("#incomplete"), "the fresh report")
    browser.click("#field-office_phone")
    browser.until(lambda: "f=office_phone" in browser.path, "the report filtered by 办公电话")
    incomplete = browser.text("#incomplete")
    assert "A000008" in incomplete and "A000012" in incomplete and "A000007" not in incomplete
    browser.shots_at_both_sizes("50-completeness-by-field")
    browser.click("#departments a[href='/completeness?d=D0003&f=office_phone']")
    browser.until(lambda: "d=D0003" in browser.path, "the report filtered by field and department")
    assert "A000008" not in browser.text("#incomplete") and "A000012" in browser.text("#incomplete")
    browser.shots_at_both_sizes("51-completeness-by-field-and-department")

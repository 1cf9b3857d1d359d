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


def test_the_change_log_filters_by_person_department_and_date_and_exports_what_it_shows(
        console: Console, bureau: Bureau) -> None:
    bureau.edit_people(A000002="副主任科员", A000003="副处长")
    assert bureau.cycle().outcome == "success"
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    everything = visible_text(client.get("/changes").text)
    assert "李华（A000002）" in everything and "王芳（A000003）" in everything and "新建部门" in everything
    one = visible_text(client.get("/changes?e=A000002&kind=update").text)
    assert "李华（A000002）" in one and "王芳" not in one and "共 1 项" in one
    finance = visible_text(client.get("/changes?d=D0003&kind=update").text)
    assert "王芳（A000003）" in finance and "李华" not in finance
    today = console.data.today().isoformat()
    assert "共 0 项" in visible_text(client.get("/changes?to=2000-01-01").text)
    assert "李华（A000002）" in visible_text(client.get(f"/changes?from={today}&to={today}&e=A000002").text)
    assert client.get("/changes?d=D9999").status_code == 404

    export = client.get("/changes.csv?d=D0003&kind=update")
    assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
    text = export.data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("发现时间,运行,变更")
    assert "A000003,王芳,职务" in text and "A000002" not in text
    assert "副处长" not in text  # field names, never their values


def test_the_run_history_filters_exports_and_says_when_a_page_is_beyond_the_last(console: Console,
                                                                                 bureau: Bureau) -> None:
    assert bureau.cycle(trigger="resync").outcome in ("success", "skipped")
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    resyncs = client.get("/runs?trigger=resync").text
    assert resyncs.count('href="/runs/') == 1
    beyond = visible_text(client.get("/runs?page=999999").text)
    assert "没有第 999999 页（共 1 页）" in beyond and "还没有运行记录" not in beyond
    export = client.get("/runs.csv?trigger=manual")
    assert export.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = export.data.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("开始时间") and len(rows) == 2 and "命令行" in rows[1]
    assert client.get("/completeness/report.csv").headers["Content-Type"] == "text/csv; charset=utf-8"


def test_the_department_roster_and_the_status_legend(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    roster = client.get("/departments/D0004/roster.csv").data.decode("utf-8-sig").splitlines()
    assert roster[0].startswith("部门,部门编号,工号,姓名")
    assert [row.split(",")[2] for row in roster[1:]] == ["A000005"]  # below D0004, in post only
    assert "13800000005" not in "".join(roster)
    legend = visible_text(client.get("/people/A000002").text)
    assert "状态说明" in legend and "等待运维人员审批" in legend and "请按原因修正人事数据" in legend

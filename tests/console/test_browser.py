"""The console in a real headless Chromium: what HR and an operator do, page by page, with screenshots.

Each test drives Debian's Chromium (selenium, chromedriver) against the console served by waitress
over a real state synced into the simulator; queued resyncs are carried out as the daemon does
(`tests/console/harness.py`). Every page visited is saved under the session's temporary
directory (`screenshots/`), at the page area of a 1366×768 screen.
"""

from __future__ import annotations

import zipfile

from openpyxl import load_workbook

from tests.conftest import DEPARTMENTS, PEOPLE, person
from tests.console.conftest import Browser
from tests.console.harness import Bureau, Console


def code_of(console: Console, employee_id: str) -> str:
    return console.daemon.store.links([employee_id]).people[employee_id].employee_code


def test_hr_signs_in_with_a_token_and_sees_the_overview(browser: Browser, bureau: Bureau) -> None:
    browser.open("/")
    assert browser.path.startswith("/signin")  # nothing without signing in
    browser.type("#token", "not-a-token")
    browser.click("#signin")
    browser.until(lambda: "令牌无效" in browser.text("#signin-error"), "the refusal of an unknown token")
    browser.shot("01-signin-failed")

    browser.sign_in(bureau.tokens["hr"])
    browser.until(lambda: browser.path == "/", "the overview after signing in")
    assert browser.text("h1") == "总览"
    assert browser.text("#health") == "正常"
    runs = browser.text("#runs")
    assert "启动时" in runs or "命令行" in runs or "成功" in runs
    assert "hr-portal" in browser.text(".who")
    assert not browser.finds("a[href='/held']")  # HR has no 待审批 in its menu
    browser.shot("02-overview")

    browser.click("#signout")
    browser.until(lambda: browser.path.startswith("/signin"), "the sign-in page after signing out")
    assert "已退出登录" in browser.text()
    browser.open("/runs")
    assert browser.path.startswith("/signin")  # the session is gone


def test_hr_finds_a_person_presses_resync_now_and_the_change_arrives_in_the_directory(
        browser: Browser, bureau: Bureau, served: Console) -> None:
    code = code_of(served, "A000002")
    bureau.edit_people(A000002="副主任科员")  # HR's export changed; no cycle has run since
    browser.sign_in(bureau.tokens["hr"])
    browser.until(lambda: browser.path == "/", "the overview")

    browser.click("nav a[href='/people']")
    browser.until(lambda: browser.path == "/people", "the look-up page")
    browser.type("#q", "李华")  # by name: a POST, the name never in a URL
    browser.click("#find")
    browser.until(lambda: browser.finds("#hits"), "the search results")
    assert "李华" not in browser.path
    assert "A000002" in browser.text("#hits")
    browser.shot("03-people-search")

    browser.click("#hits a[href='/people/A000002']")
    browser.until(lambda: browser.path == "/people/A000002", "the person's page")
    assert "李华（A000002）" in browser.text("h1")
    assert "副主任科员" in browser.text("#pending")  # HR now, not yet in the directory
    assert "科员" in browser.text("#hr-record")
    browser.shot("04-person")

    browser.click("#resync-now")
    browser.until(lambda: browser.find("#resync").get_attribute("data-status") == "done",
                  "the resync to finish on the page")
    assert browser.text("#resync-status") == "已完成"
    _reload_until_fresh(browser)
    browser.shot("05-person-after-resync")
    assert bureau.posts()[code] == "副主任科员"  # the change arrived in the simulator's directory
    assert "已完成" in browser.text("#journal")


def _reload_until_fresh(browser: Browser) -> None:
    """Reload the person's page until it shows no pending difference (HR is re-read after a resync)."""
    def fresh() -> bool:
        browser.driver.refresh()
        return bool(browser.finds("#no-pending"))

    browser.until(fresh, "the HR snapshot to be re-read after the resync", timeout=10)


def test_hr_filters_the_completeness_report_and_downloads_it_as_xlsx(browser: Browser, bureau: Bureau,
                                                                     served: Console) -> None:
    bureau.write_export(people=[*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 职级=""),
                                person("A000008", "周杰", "13800000008", "D0002", 人员角色="领导", 领导分工=""),
                                person("A000009", "吴敏", "13800000009", "D0009")])
    browser.sign_in(bureau.tokens["hr"])
    browser.click("nav a[href='/completeness']")
    browser.until(lambda: browser.path == "/completeness", "the completeness page")
    assert "手机号不是11位大陆手机号" in browser.text("#incomplete")
    assert "部门编号 D0009 不存在" in browser.text("#rejected")
    browser.shot("06-completeness")

    browser.click("#departments a[href='/completeness?d=D0003']")  # filter: one department
    browser.until(lambda: browser.path == "/completeness?d=D0003", "the filtered report")
    incomplete = browser.text("#incomplete")
    assert "A000007" in incomplete and "A000008" not in incomplete
    browser.shot("07-completeness-filtered")

    browser.open("/completeness")
    browser.click("#download-xlsx")
    # Chromium may show the file under its final name before the last byte is written: wait for a whole workbook.
    downloaded = browser.until(lambda: [p for p in browser.downloads.glob("*.xlsx") if zipfile.is_zipfile(p)],
                               "the XLSX download")
    [path] = downloaded
    assert path.name.startswith("信息完整性-全单位-")
    workbook = load_workbook(path)
    rows = list(workbook["完整性"].iter_rows(values_only=True))
    assert rows[0][:3] == ("部门", "部门编号", "工号")
    by_id = {row[2]: row for row in rows[1:]}
    assert set(by_id) == {"A000007", "A000008", "A000009"}
    assert by_id["A000007"][7] == "手机号不是11位大陆手机号"
    assert dict(workbook["汇总"].iter_rows(values_only=True))["信息不完整"] == "2"  # every cell is text


def test_an_operator_approves_a_held_run_after_confirming_and_the_next_cycle_applies_it(
        browser: Browser, bureau: Bureau, served: Console) -> None:
    bureau.set_safety(structure_changes="hold")
    bureau.write_export(
        departments=[*DEPARTMENTS, {"部门编号": "D0006", "部门名称": "电子数据审计处", "简称": "电子处",
                                    "上级部门编号": "D0001", "排序": "3"}],
        people=[*PEOPLE, person("A000010", "郑伟", "13800000010", "D0006")])
    held = bureau.cycle()
    assert held.outcome == "held" and held.run_id is not None
    served.snapshots.refresh_soon()

    browser.sign_in(bureau.tokens["operator"])
    browser.click("nav a[href='/held']")
    browser.until(lambda: browser.path == "/held", "the held page")
    panel = browser.text(f"#run-{held.run_id}")
    assert "新建部门" in panel and "D0006" in panel and "组织架构变更须审批" in panel
    assert "电子数据审计处" in panel  # the exact values the change would write
    assert "新增人员" in panel and "等待所依赖的变更审批" in panel  # the person waits on the department
    browser.shot("08-held")

    browser.click(f"#approve-{held.run_id}")
    browser.until(lambda: browser.finds("#confirm"), "the confirmation page")
    assert "确认批准" in browser.text("h1")
    browser.shot("09-held-confirm")
    browser.click("#confirm")
    browser.until(lambda: browser.path.startswith("/held"), "back on the held page")
    assert "的 1 项变更，将在下一次同步（" in browser.text(".flash") and held.run_id not in browser.text(".flash")
    assert browser.finds("#nothing-held")
    assert "已批准的变更将在下一次同步（" in browser.text("#approved")
    browser.shots_at_both_sizes("10-held-approved")

    run = served.data.run(held.run_id, 1)
    assert run is not None
    assert {line.kind: line.state for line in run.changes.items}["dept_create"] == "approved"
    browser.click("#run-now")  # 立即执行: a resync of the whole unit, queued as the API queues it
    browser.until(lambda: browser.find("#resync").get_attribute("data-status") in ("done", "failed"),
                  "the run-now resync to finish")
    [request] = served.daemon.store.resyncs()
    assert request.scope.kind == "all" and request.requested_by == "duty-operator"
    assert "已完成 2 项" in browser.text("#resync-result")
    browser.shots_at_both_sizes("10b-held-run-now")
    organizations = {o["organizationName"] for o in bureau.admin.directory()["organizations"]}
    assert "电子数据审计处" in organizations


def test_hr_is_refused_the_operator_pages_with_a_chinese_403(browser: Browser, bureau: Bureau) -> None:
    browser.sign_in(bureau.tokens["hr"])
    browser.until(lambda: browser.path == "/", "the overview")
    browser.open("/held")
    assert browser.text("h1") == "无权访问"
    assert "仅限运维人员" in browser.text("#error-text") and "“人事”" in browser.text("#error-text")
    browser.shot("11-forbidden")
    browser.open("/no-such-page")
    assert browser.text("h1") == "页面不存在"
    browser.shot("12-not-found")


def test_hr_looks_at_departments_and_the_run_history(browser: Browser, bureau: Bureau, served: Console) -> None:
    renamed = [dict(d, 部门名称="财政金融审计处") if d["部门编号"] == "D0003" else d for d in DEPARTMENTS]
    bureau.write_export(departments=renamed)
    browser.sign_in(bureau.tokens["hr"])
    browser.click("nav a[href='/departments']")
    browser.until(lambda: browser.path == "/departments/D0001", "the root department")
    children = browser.text("#children")
    assert "财政金融审计处" in children and "名称不同" in children
    assert "D0003" in browser.text("#differences")
    browser.shot("13-departments")

    browser.click("#children a[href='/departments/D0003']")
    browser.until(lambda: browser.path == "/departments/D0003", "the department's page")
    assert "名称不同" in browser.text("h1")
    browser.shot("14-department")
    browser.click("#resync-department")
    browser.until(lambda: browser.find("#resync").get_attribute("data-status") in ("done", "failed"),
                  "the department's resync to finish")
    assert browser.text("#resync-status") == "已完成"
    organizations = {o["organizationName"] for o in bureau.admin.directory()["organizations"]}
    assert "财政金融审计处" in organizations

    browser.click("nav a[href='/runs']")
    browser.until(lambda: browser.path == "/runs", "the run history")
    runs = browser.text("#runs")
    assert "手动同步" in runs and "部门 郑州市审计局 / 财政金融审计处（D0003）" in runs
    browser.shot("15-runs")
    browser.click("#runs tbody tr:first-child a")
    browser.until(lambda: browser.finds("#changes"), "a run's page")
    assert "部门信息变更" in browser.text("#changes") and "已完成" in browser.text("#changes")
    browser.shot("16-run")


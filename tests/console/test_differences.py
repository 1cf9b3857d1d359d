"""The person and department pages say 一致 only when the planner would change nothing, and say why not."""

from __future__ import annotations

import time

from syncd.domain.model import ChangeKind
from tests.conftest import PEOPLE, person
from tests.console.conftest import Browser, sign_in
from tests.console.harness import Bureau, Console
from tests.console.test_pages import visible_text


def hold_every_leave(bureau: Bureau) -> None:
    """Safety set so that any deactivation is held for an operator's decision."""
    text = bureau.config_path.read_text(encoding="utf-8")
    bureau.config_path.write_text(text.replace('structure_changes = "apply"',
                                               'structure_changes = "apply"\nmax_deactivations = 0'), encoding="utf-8")


def retire(employee_id: str) -> list[dict[str, str]]:
    return [dict(p, 人员状态="退休") if p["工号"] == employee_id else p for p in PEOPLE]


def test_a_retired_person_held_for_approval_is_different_with_the_reason_and_the_run(
        console: Console, bureau: Bureau) -> None:
    hold_every_leave(bureau)
    bureau.write_export(people=retire("A000004"))
    held = bureau.cycle()
    assert held.outcome == "held" and held.run_id is not None
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])

    view = console.data.person("A000004")
    assert view is not None and not view.consistent
    [finding] = view.findings
    assert (finding.what, finding.standing) == ("leave", "held") and finding.run is not None
    assert finding.run.id == held.run_id
    page = visible_text(client.get("/people/A000004").text)
    assert "不一致" in page and "已退休但通讯录仍在职（等待审批：运行 " in page
    assert "通讯录与人事数据一致" not in page

    # The department holds one more person than HR has in post: different, and it says who and why.
    department = visible_text(client.get("/departments/D0003").text)
    assert "不一致" in department and "赵强（A000004）" in department and "已退休但通讯录仍在职" in department
    root = console.data.department("D0001")
    assert root is not None
    assert "people" in {row.id: row.differences for row in root.children}["D0003"]
    assert {row.id: row.differences for row in root.children}["D0002"] == ()

    # An unchanged person is 一致, by the same comparison.
    assert console.data.person("A000002").consistent  # type: ignore[union-attr]
    assert "通讯录与人事数据一致" in visible_text(client.get("/people/A000002").text)


def test_a_field_changed_in_hr_is_planned_for_the_next_sync_with_the_values(console: Console, bureau: Bureau) -> None:
    bureau.edit_people(A000002="副主任科员")
    view = console.data.person("A000002")
    assert view is not None
    [finding] = view.findings
    assert finding.what == ChangeKind.UPDATE.value and finding.standing == "planned"
    assert finding.fields == {"post": ("科员", "副主任科员")}
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = visible_text(client.get("/people/A000002").text)
    assert "职务与人事数据不同（将在下一次同步" in page


def test_a_person_who_cannot_be_created_is_different_and_says_the_mobile_is_invalid(
        console: Console, bureau: Bureau) -> None:
    bureau.write_export(people=[*PEOPLE, person("A000011", "钱进", "1380000", "D0002")])
    view = console.data.person("A000011")
    assert view is not None and not view.consistent
    assert [f.what for f in view.findings] == ["uncreatable"]
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    assert "手机号无效，无法创建：手机号不是11位大陆手机号" in visible_text(client.get("/people/A000011").text)
    office = visible_text(client.get("/departments/D0002").text)
    assert "钱进（A000011）" in office and "无法创建" in office


def test_resync_now_says_what_happened_to_that_person(served: Console, bureau: Bureau, browser: Browser) -> None:
    bureau.write_export(people=[*PEOPLE, person("A000011", "钱进", "1380000", "D0002")])
    bureau.edit_people(A000002="副主任科员")
    browser.sign_in(bureau.tokens["hr"])

    def resync(employee_id: str) -> str:
        browser.open(f"/people/{employee_id}")
        browser.click("#resync-now")
        browser.until(lambda: browser.find("#resync").get_attribute("data-status") in ("done", "failed"),
                      "the resync to finish")
        return browser.text("#resync")

    invalid = resync("A000011")
    assert "未能创建：手机号不是11位大陆手机号" in invalid and "已按人事数据更新" not in invalid
    browser.shots_at_both_sizes("21-resync-invalid-person")
    assert "已更新：职务" in resync("A000002")
    browser.shot("22-resync-updated")
    time.sleep(0.2)  # let the resync worker re-read HR before the next resync
    assert "未变化" in resync("A000001")


def test_the_browser_shows_a_held_retired_person_as_different(served: Console, bureau: Bureau,
                                                              browser: Browser) -> None:
    hold_every_leave(bureau)
    bureau.write_export(people=retire("A000004"))
    assert bureau.cycle().outcome == "held"
    served.snapshots.refresh_soon()
    browser.sign_in(bureau.tokens["hr"])
    browser.open("/people/A000004")
    browser.until(lambda: "不一致" in browser.text("#verdict"), "the person shown as different")
    assert "已退休但通讯录仍在职（等待审批：运行 " in browser.text("#findings")
    browser.shots_at_both_sizes("20-retired-held-person")
    browser.open("/departments/D0003")
    assert "赵强（A000004）" in browser.text("#people-findings")
    browser.shots_at_both_sizes("20-retired-held-department")


def test_a_department_gone_from_hr_is_different_because_it_is_still_in_the_directory(console: Console,
                                                                                     bureau: Bureau) -> None:
    from tests.conftest import DEPARTMENTS

    bureau.write_export(departments=[d for d in DEPARTMENTS if d["部门编号"] != "D0005"],
                        people=[p for p in PEOPLE if p["部门编号"] != "D0005"])
    view = console.data.department("D0005")
    assert view is not None and not view.consistent
    assert [f.what for f in view.findings] == ["dept_retire"]
    assert [f.what for f in view.people_findings["A000005"]] == ["leave_absent"]
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = visible_text(client.get("/departments/D0005").text)
    assert "人事数据中已没有此部门，但通讯录中仍有" in page and "阿依古丽·买买提（A000005）" in page

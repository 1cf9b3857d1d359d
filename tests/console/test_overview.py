"""The overview is current: the last successful sync of any trigger, every held run as an alert, live counts."""

from __future__ import annotations

from tests.conftest import PEOPLE, person
from tests.console.conftest import Browser, sign_in
from tests.console.harness import Bureau, Console
from tests.console.test_differences import hold_every_leave, retire
from tests.console.test_pages import visible_text


def test_the_overview_after_a_manual_sync_and_a_resync_held_for_approval(served: Console, bureau: Bureau,
                                                                          browser: Browser) -> None:
    bureau.edit_people(A000002="副主任科员")
    manual = bureau.cycle()  # `syncd sync` from the command line, not the daemon's own cycle
    assert manual.outcome == "success" and manual.run_id is not None
    hold_every_leave(bureau)
    bureau.write_export(people=[*retire("A000004"), person("A000007", "孙丽", "1380000", "D0003")])
    served.snapshots.refresh_soon()

    browser.sign_in(bureau.tokens["hr"])
    browser.open("/people/A000004")
    browser.click("#resync-now")  # a resync, held by the guard: its run must raise an alert too
    browser.until(lambda: browser.find("#resync").get_attribute("data-status") in ("done", "failed"),
                  "the resync to finish")
    assert "等待审批" in browser.text("#resync")
    [(held_run, count)] = served.data.overview().held
    assert held_run.trigger == "resync" and count == 1

    browser.open("/")
    last = served.data.runs_by_id([manual.run_id])[manual.run_id]
    assert browser.find("#last-success a").get_attribute("href").endswith(f"/runs/{manual.run_id}")
    assert last.finished_at is not None
    alert = browser.text(f"#alert-held-{held_run.id}")
    assert "手动同步" in alert and "有 1 项变更等待审批" in alert and "由运维人员审批" in alert
    records = browser.text("#alert-records")
    assert "1 人信息不完整，0 条记录被拒绝" in records
    assert "syncd" not in browser.text("#alerts")  # no shell command for HR
    browser.shots_at_both_sizes("30-overview-after-manual-sync")

    # The counts are those of the pages the alerts link to.
    browser.click("#alert-records a")
    browser.until(lambda: browser.path == "/completeness", "the completeness page")
    assert "A000007" in browser.text("#incomplete")


def test_the_last_successful_sync_counts_every_trigger(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    first = console.data.overview().last_success
    assert first is not None and first.trigger == "manual"
    bureau.write_export(people=[*PEOPLE, person("A000008", "周杰", "13800000008", "D0002")])
    later = bureau.cycle(trigger="resync")
    assert later.outcome == "success"
    latest = console.data.overview().last_success
    assert latest is not None and latest.id == later.run_id
    assert "手动同步" in visible_text(client.get("/").text)


def test_run_now_is_for_operators_and_queues_a_whole_unit_resync(console: Console, bureau: Bureau) -> None:
    from tests.console.conftest import csrf_of

    hr = console.app.test_client()
    sign_in(hr, bureau.tokens["hr"])
    assert hr.post("/held/run-now", data={"csrf_token": csrf_of(hr.get("/people").text)}).status_code == 403
    operator = console.app.test_client()
    sign_in(operator, bureau.tokens["operator"])
    assert operator.post("/held/run-now").status_code == 400  # no CSRF token
    answer = operator.post("/held/run-now", data={"csrf_token": csrf_of(operator.get("/held").text)})
    assert answer.status_code == 303
    [request] = console.daemon.store.resyncs()
    assert (request.scope.kind, request.requested_by) == ("all", "duty-operator")
    assert f"resync={request.id}" in answer.headers["Location"]
    assert 'data-status="queued"' in operator.get(answer.headers["Location"]).text


def test_the_held_page_states_the_threshold_and_that_a_decision_covers_a_whole_run(console: Console,
                                                                                   bureau: Bureau) -> None:
    operator = console.app.test_client()
    sign_in(operator, bureau.tokens["operator"])
    page = visible_text(operator.get("/held").text)
    safety = bureau.config.safety
    assert f"超过 {safety.max_deactivations} 个" in page and f"{safety.max_deactivation_share * 100:.1f}%" in page
    assert "审批以运行为单位" in page and "逐项" not in page
    assert "下一次同步会再次暂缓" in page  # a rejection does not stick while HR is unchanged


def test_the_held_pages_threshold_follows_a_reloaded_configuration(console: Console, bureau: Bureau) -> None:
    operator = console.app.test_client()
    sign_in(operator, bureau.tokens["operator"])
    assert f"超过 {bureau.config.safety.max_deactivations} 个" in visible_text(operator.get("/held").text)
    text = bureau.config_path.read_text(encoding="utf-8")
    bureau.config_path.write_text(text.replace('structure_changes = "apply"', 'structure_changes = "apply"\n'
                                               'max_deactivations = 7\nmax_deactivation_share = 0.125'),
                                  encoding="utf-8")
    assert console.daemon.reload()  # what SIGHUP does
    page = visible_text(operator.get("/held").text)
    assert "超过 7 个" in page and "12.5%" in page

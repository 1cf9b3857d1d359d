"""The console's pages and what they read, without a browser: Chinese throughout, the right data, the right calls."""

from __future__ import annotations

import html
import re
import threading
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest
from structlog.testing import capture_logs

from syncd.console import ConsoleData, SnapshotCache
from syncd.domain import validate
from syncd.domain.model import Department, Snapshot
from syncd.domain.scope import Scope
from syncd.reporting import messages
from syncd.reporting.messages import REASONS, reason_template
from syncd.service.resyncs import carry_out
from tests.conftest import DEPARTMENTS, PEOPLE, person
from tests.console.conftest import csrf_of, sign_in
from tests.console.harness import Bureau, Console

PAGES = ["/", "/completeness", "/completeness?d=D0003", "/people", "/people/A000002", "/people/A000009",
         "/departments/D0001", "/departments/D0003", "/runs", "/runs?page=999999", "/changes", "/changes?d=D0003",
         "/held", "/no-such-page", "/signin"]
# What may stay Latin on a Chinese page: ids, codes, file locations, token names, and these words.
_LATIN_OK = re.compile(r"\b[0-9a-f]{12}\b|\bG[OE]_\w+|\S+\.csv(:\d+)?|hr-portal|duty-operator"
                       r"|\b(syncd|XLSX|CSV|Excel)\b")


def visible_text(page: str) -> str:
    """The text a reader sees: no tags, no attributes, no stylesheet."""
    body = re.sub(r"<(head|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def with_problems(bureau: Bureau) -> Bureau:
    """HR's export with an incomplete person and a rejected one."""
    bureau.write_export(people=[*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 职级=""),
                                person("A000009", "吴敏", "13800000009", "D0009")])
    return bureau


@pytest.mark.parametrize("role", ["hr", "operator"])
def test_every_page_is_entirely_chinese(console: Console, with_problems: Bureau, role: str) -> None:
    signed_out = console.app.test_client()
    pages = [("/signin", signed_out.get("/signin"))]
    client = console.app.test_client()
    sign_in(client, with_problems.tokens[role])
    pages += [(path, client.get(path)) for path in PAGES if path != "/signin"]
    for path, response in pages:
        assert response.status_code in (200, 403, 404), (path, response.status_code)
        text = _LATIN_OK.sub(" ", visible_text(response.text))
        english = re.findall(r"[A-Za-z]{2,}", text)
        assert not english, (path, english)


def test_the_completeness_page_lists_problems_in_chinese_with_where_to_fix_them(console: Console,
                                                                               with_problems: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, with_problems.tokens["hr"])
    page = visible_text(client.get("/completeness").text)
    assert "手机号不是11位大陆手机号" in page and "人员表第 8 行" in page and "people.csv" not in page
    assert "部门编号 D0009 不存在（部门表中没有，或该部门被拒绝）" in page and "人员表第 9 行" in page
    filtered = visible_text(client.get("/completeness?d=D0002").text)
    assert "A000007" not in filtered and "没有信息不完整的在职人员" in filtered
    csv_text = client.get("/completeness/report.csv").data.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "部门,部门编号,工号,姓名,状态,缺少字段,无效字段,说明,位置"
    assert "A000007" in csv_text and "A000009" in csv_text
    assert client.get("/completeness?d=D0404").status_code == 404


def test_a_rejected_persons_page_and_resync_say_why_in_chinese(console: Console, with_problems: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, with_problems.tokens["hr"])
    page = client.get("/people/A000009")
    assert "人事记录被拒绝" in page.text and "部门编号 D0009 不存在" in page.text
    answer = client.post("/people/A000009/resync", data={"csrf_token": csrf_of(page.text)})
    store = console.daemon.store
    request = store.claim_resync()
    assert request is not None
    engine = console.daemon.engine
    carry_out(request, engine.config, engine.source, engine.target, store)
    progress = client.get(answer.headers["Location"]).text
    assert 'data-status="failed"' in progress
    assert "该人员的人事记录被拒绝，未同步：部门编号 D0009 不存在" in progress
    assert 'http-equiv="refresh"' not in progress  # finished: the page stops refreshing


def test_a_queued_resync_refreshes_its_page_until_it_is_done(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = client.get("/departments/D0003")
    answer = client.post("/departments/D0003/resync", data={"csrf_token": csrf_of(page.text)})
    waiting = client.get(answer.headers["Location"]).text
    assert 'data-status="queued"' in waiting and '<meta http-equiv="refresh" content="1">' in waiting
    [request] = console.daemon.store.resyncs()
    assert (request.scope.kind, request.scope.value) == ("department", "D0003")


def test_the_person_page_reads_the_directory_live_on_request(console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    page = client.get("/people/A000002")
    live = client.post("/people/A000002/directory", data={"csrf_token": csrf_of(page.text)})
    assert live.status_code == 200
    text = visible_text(live.text)
    assert "通讯录当前数据（实时读取）" in text and "科员" in text
    record = re.search(r'<div class="panel" id="live">(.*?)</div>', live.text, re.S)
    assert record is not None
    shown = visible_text(record.group(1))
    # Codes as their labels, the organisation by its department's name and path; no directory code for HR.
    assert "女（2）" in shown and "郑州市审计局 / 办公室（D0002）" in shown and "GE_" not in shown


def test_the_overview_counts_what_waits_and_what_is_late_as_the_store_does(bureau: Bureau, console: Console) -> None:
    bureau.set_safety(structure_changes="hold")
    bureau.write_export(departments=[*DEPARTMENTS, {"部门编号": "D0006", "部门名称": "电子数据审计处", "简称": "",
                                                    "上级部门编号": "D0001", "排序": "3"}],
                        people=[*PEOPLE, person("A000010", "郑伟", "13800000010", "D0006")])
    held = bureau.cycle()
    assert held.outcome == "held"
    later = date(2031, 1, 6)
    data = ConsoleData(console.daemon.store, console.snapshots, root_department="D0001",
                       root_organization_code="GO_1", today=lambda: later)
    overview = data.overview()
    expected = console.daemon.store.overdue(later)
    assert overview.overdue_count == len(expected) == 2
    assert [line.id for line in overview.overdue] == [entry.id for entry in expected]
    assert [(run.id, count) for run, count in overview.held] == [(held.run_id, 1)]
    [view] = data.held()
    assert (view.decide, view.total) == (1, 2) and [c.kind for c in view.changes] == ["dept_create", "join"]


def test_the_department_page_marks_what_differs_from_the_directory(console: Console, bureau: Bureau) -> None:
    renamed = [dict(d, 部门名称="财政金融审计处") if d["部门编号"] == "D0003" else d for d in DEPARTMENTS
               if d["部门编号"] != "D0005"]
    bureau.write_export(departments=[*renamed, {"部门编号": "D0007", "部门名称": "新设处", "简称": "",
                                                "上级部门编号": "D0001", "排序": "9"}],
                        people=[p for p in PEOPLE if p["部门编号"] != "D0005"])
    view = console.data.department("D0001")
    assert view is not None
    marks = {row.id: row.differences for row in view.children}
    assert marks["D0002"] == () and marks["D0003"] == ("name",) and marks["D0007"] == ("missing",)
    below = {row.id: row.differences for row in view.differences_below}
    assert below["D0005"] == ("in_directory_only", "people")  # gone from HR, still in the directory with its people
    assert view.row.in_post_total == 4 and view.row.linked_total == 5


@pytest.mark.parametrize(("query", "scope"), [("", "全单位"), ("?d=D0003", "D0003")])
def test_a_downloaded_report_is_named_for_what_it_covers_and_when(console: Console, bureau: Bureau, query: str,
                                                                  scope: str) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    for fmt in ("csv", "xlsx"):
        disposition = unquote(client.get(f"/completeness/report.{fmt}{query}").headers["Content-Disposition"])
        assert re.search(rf"filename\*=UTF-8''信息完整性-{scope}-\d{{8}}-\d{{4}}\.{fmt}$", disposition), disposition


@pytest.mark.parametrize(("status", "outcome", "says"), [
    ("failed", "unavailable", "通讯录服务不可用"),  # a gateway error: its category
    ("failed", "no_such_category", "同步失败，详见运行记录。"),
    ("done", "partial", "部分变更未能写入通讯录，详见运行记录。"),
    ("done", "no_such_outcome", "同步未完成，详见运行记录。"),
])
def test_a_resync_that_did_not_sync_its_subject_says_why(console: Console, bureau: Bureau, status: str, outcome: str,
                                                         says: str) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["hr"])
    store = console.daemon.store
    request = store.queue_resync(Scope("employee", "A000002"), False, "hr-portal")
    store.finish_resync(request.id, status, None, outcome, 1)
    page = client.get(f"/people/A000002?resync={request.id}").text
    assert f'<div class="flash bad after">{says}</div>' in page


def test_run_scopes_and_durations_read_in_chinese(console: Console) -> None:
    filters = console.app.jinja_env.filters
    with console.app.test_request_context():
        scopes = [filters["scope"](scope) for scope in ("all", "employee A000002", "department D0003", "odd")]
    assert scopes == ["全单位", "人员 李华（A000002）", "部门 郑州市审计局 / 财政审计处（D0003）", "odd"]
    assert [filters["seconds"](value) for value in (None, 3.0, 119.94, 120.0, 4000.0)] == [
        "—", "3.0 秒", "119.9 秒", "2.0 分钟", "66.7 分钟"]


def test_a_coded_value_reads_as_its_label_then_its_code(console: Console) -> None:
    data = console.data
    assert data.code_label("gender", "1") == "男（1）" and data.code_label("gender", 2) == "女（2）"
    assert data.code_label("gender", "7") == "7" and data.code_label("rank", "一级主任科员") == "一级主任科员"
    assert data.code_label("gender", None) == ""


# -- the snapshot the pages read --------------------------------------------------------------------


def test_the_snapshot_cache_reads_hr_once_on_demand_and_then_keeps_what_cycles_offer() -> None:
    reads: list[Snapshot] = []

    def read() -> Snapshot:
        reads.append(Snapshot(departments={"D1": Department("D1", "甲")}))
        return reads[-1]

    cache = SnapshotCache(read)
    first = [cache() for _ in range(3)]
    assert len(reads) == 1 and all(s is reads[0] for s in first)
    cache.offer(Snapshot())  # a skipped cycle read nothing: kept as it was
    assert cache() is reads[0]
    offered = Snapshot(departments={"D1": Department("D1", "乙")})
    cache.offer(offered)
    assert cache() is offered
    cache.offer(Snapshot(departments={"D1": Department("D1", "丙")}, complete=False))  # a broken-off read
    assert cache() is offered
    cache.refresh_soon()
    assert cache.wait_refreshed(5) and cache() is reads[-1] and len(reads) == 2


def test_the_snapshot_cache_reads_once_however_many_pages_ask_at_once() -> None:
    started = threading.Event()
    release = threading.Event()
    reads: list[int] = []

    def slow() -> Snapshot:
        reads.append(1)
        started.set()
        release.wait(5)
        return Snapshot(departments={"D1": Department("D1", "甲")})

    cache = SnapshotCache(slow)
    results: list[Snapshot] = []
    threads = [threading.Thread(target=lambda: results.append(cache())) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(reads) == 1 and len(results) == 4 and len({id(s) for s in results}) == 1


def test_a_new_snapshot_is_indexed_off_the_request_path(bureau: Bureau, console: Console) -> None:
    snapshot = console.snapshots()
    index = console.data.index()
    assert index.snapshot is snapshot and index.in_post["D0002"] == 2
    bureau.write_export(people=PEOPLE[:2])
    console.snapshots.refresh_soon()
    assert console.snapshots.wait_refreshed(10)
    assert console.data.index().in_post["D0003"] == 0


# -- the message catalogue --------------------------------------------------------------------------


def test_every_reason_code_validation_produces_has_a_chinese_text() -> None:
    text = Path(validate.__file__).read_text(encoding="utf-8")
    literal = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', text))  # "mobile.invalid", "department.unknown", …
    wildcard = set(re.findall(r'f"\{[a-z_]+\}\.([a-z_]+)"', text)) - {"toml"}  # f"{field}.missing", …
    assert {"mobile.invalid", "department.unknown", "parent.cycle"} <= literal and "missing" in wildcard
    for code in literal:
        assert reason_template(code) is not None, code
    for what in wildcard:
        assert reason_template(f"rank.{what}") is not None, what
    for template in REASONS.values():
        assert not re.search(r"[A-Za-z]{2,}", re.sub(r"\{[a-z_]+\}", "", template)), template


def test_pages_answer_the_chinese_503_with_retry_after_while_the_state_database_is_out_of_reach(
        console: Console, bureau: Bureau) -> None:
    client = console.app.test_client()
    sign_in(client, bureau.tokens["operator"])
    token = csrf_of(client.get("/people/A000002").text)
    # The state file gives way to a directory SQLite cannot open (root reads a file whatever its mode),
    # and the pooled connections go as a restarted database's would: every read now fails to connect.
    state = bureau.root / "state.db"
    state.rename(bureau.root / "state.db.away")
    state.mkdir()
    console.daemon.store.engine.dispose()
    with capture_logs() as logs:
        answers = [client.get(path) for path in ("/", "/runs", "/changes", "/held", "/people/A000002")]
        answers.append(client.post("/people/A000002/resync", data={"csrf_token": token}))
    for answer in answers:
        assert answer.status_code == 503, (answer.request.path, answer.status_code)
        assert answer.mimetype == "text/html" and messages.console_text("state_unavailable") in answer.text
        assert "服务器内部错误" not in answer.text
        assert int(answer.headers["Retry-After"]) > 0
    assert not [e for e in logs if e["log_level"] in ("error", "critical") or "exc_info" in e]  # no traceback
    events = [e for e in logs if e["event"] == "console.state_unavailable"]
    assert len(events) == len(answers)  # once each
    assert all(e["log_level"] == "warning" and "unable to open database file" in e["reason"] for e in events)
    assert [e["route"] for e in events] == ["/", "/runs", "/changes", "/held", "/people/<employee_id>",
                                            "/people/<employee_id>/resync"]

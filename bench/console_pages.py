"""Benchmark the HR console: how long each page takes to render with 100,000 people in the state.

    python -m bench.console_pages --people 100000

The synthetic export (`bench/synthetic.py`) is written with some problems put in (about 2% of
people without a 职级, 0.5% with an impossible mobile, 0.05% in an unknown department), and a
state database is seeded as a year of syncing would leave it: every link, an initial load whose
journal holds a join per person, a few hundred small runs, a partial run with overdue failures,
and a held run of 300 departures waiting for an operator. Both are kept in `--workdir` and reused.

The console is built as the daemon builds it (`Daemon`, `DaemonControl`, `SnapshotCache`,
`create_api` + `register_console`) and each page is requested `--repeat` times through Flask's
test client, signed in as an operator: the whole WSGI app (session, CSRF, queries, templates),
without the socket. The first look at a new HR snapshot (reading it, indexing it) is timed apart:
the daemon does both off the request path, after each cycle.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.seeding import ROOT, as_synced, bench_config, csv_source, peak_rss_mb, seed_links
from bench.synthetic import generate_lazily, write_csv

_BATCH = 20_000


def _with_problems(rows: Iterator[dict[str, str]]) -> Iterator[dict[str, str]]:
    """The people rows, a few of them made incomplete or unusable (deterministically)."""
    for n, row in enumerate(rows):
        if n % 50 == 7:
            row = {**row, "职级": ""}
        if n % 200 == 11:
            row = {**row, "手机号": row["手机号"][:7]}
        if n % 2000 == 13:
            row = {**row, "部门编号": "D9999"}
        yield row


def prepare(directory: Path, people: int, seed: int) -> Path:
    """The export and the seeded state in `directory` (reused when they match)."""
    from syncd.domain.validate import CodeTables, build_snapshot
    from syncd.state.store import StateStore

    marker = directory / "console.json"
    wanted = {"people": people, "seed": seed, "version": 1}
    database = directory / "state.db"
    if marker.exists() and json.loads(marker.read_text()) == wanted and database.exists():
        return database
    for stale in directory.glob("state.db*"):
        stale.unlink()
    departments, rows = generate_lazily(people, seed=seed)
    write_csv(directory, departments, _with_problems(rows))
    snapshot = build_snapshot(csv_source(directory), ROOT, CodeTables.load())
    store = StateStore(f"sqlite:///{database}")
    links = as_synced(snapshot)
    seed_links(store, links)
    _seed_history(store, list(links.people), list(links.departments), random.Random(seed))
    store.close()
    marker.write_text(json.dumps(wanted))
    return database


def _seed_history(store: Any, people: list[str], departments: list[str], rng: random.Random) -> None:
    """Runs and journal entries as months of syncing leave them."""
    from syncd.state.models import JournalEntry, ResyncRequestRow, Run

    start = datetime.now(UTC) - timedelta(days=200)
    runs: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []

    def run(run_id: str, when: datetime, trigger: str, outcome: str, counts: dict[str, int], scope: str = "all",
            mode: str = "incremental") -> None:
        runs.append({"id": run_id, "trigger": trigger, "mode": mode, "dry_run": False, "scope": scope,
                     "started_at": when, "finished_at": when + timedelta(seconds=40), "outcome": outcome,
                     "counts": counts})

    def entry(run_id: str, seq: int, kind: str, subject: str, state: str, when: datetime, fields: dict[str, str],
              category: str | None = None, department: str | None = None) -> None:
        journal.append({"run_id": run_id, "seq": seq, "kind": kind, "subject": subject, "state": state,
                        "change": {"fields": fields, "department": department, "from_department": None,
                                   "reason": ""},
                        "attempts": 1, "error_category": category, "error_message": None, "detected_at": when,
                        "due_at": (when + timedelta(days=5)).date(), "updated_at": when})

    run("initial00001", start, "start", "success", {"dept_create.done": len(departments), "join.done": len(people)},
        mode="full")
    for seq, dept in enumerate(departments):
        entry("initial00001", seq, "dept_create", dept, "done", start, {"name": dept})
    for seq, employee_id in enumerate(people, start=len(departments)):
        entry("initial00001", seq, "join", employee_id, "done", start, {}, department="D0002")
    for n in range(300):
        when = start + timedelta(hours=12 * (n + 1))
        run_id = f"daily{n:07d}"
        picked = rng.sample(people, 5)
        run(run_id, when, "schedule", "success", {"update.done": len(picked)})
        for seq, employee_id in enumerate(picked):
            entry(run_id, seq, "update", employee_id, "done", when, {"post": "科长"})
    when = datetime.now(UTC) - timedelta(days=8)
    run("held00000001", when, "full", "held", {"held": 300, "leave.done": 0}, mode="full")
    for seq, employee_id in enumerate(rng.sample(people, 300)):
        entry("held00000001", seq, "leave", employee_id, "held", when, {}, category="mass_deactivation")
    when = datetime.now(UTC) - timedelta(days=6)
    run("partial00001", when, "schedule", "partial", {"update.done": 10, "update.failed": 20})
    for seq, employee_id in enumerate(rng.sample(people, 30)):
        entry("partial00001", seq, "update", employee_id, "failed" if seq >= 10 else "done", when, {"rank": "科员"},
              category="unavailable" if seq >= 10 else None)
    with store.engine.begin() as connection:
        connection.execute(Run.__table__.insert(), runs)
        for offset in range(0, len(journal), _BATCH):
            connection.execute(JournalEntry.__table__.insert(), journal[offset:offset + _BATCH])
        connection.execute(ResyncRequestRow.__table__.insert(), [
            {"id": f"rs{n:010d}", "scope": "employee", "subject": people[n], "full": False, "status": "done",
             "requested_by": "hr-portal", "requested_at": when, "started_at": when, "finished_at": when,
             "run_id": None, "outcome": "success", "exit_code": 0, "message": ""} for n in range(20)])


def build(directory: Path, database: Path) -> tuple[Any, Any, Any, str]:
    """The daemon's app with the console over the seeded state; (app, console data, snapshot cache, operator token)."""
    from syncd.console import ConsoleData, SnapshotCache, read_directory_person, read_hr, register_console
    from syncd.domain.target import DirectoryEntry
    from syncd.service.api import create_api
    from syncd.service.daemon import Daemon, DaemonControl
    from syncd.service.tokens import TokenStore, add_token

    class Control(DaemonControl):
        def directory_person(self, employee_id: str) -> DirectoryEntry | None:
            return read_directory_person(self._daemon.engine.target, self._daemon.store, employee_id)

    tokens = directory / "tokens.toml"
    tokens.unlink(missing_ok=True)
    operator = add_token(tokens, "bench-operator", "operator")
    # No page calls the directory (the live read is a button): the target's address is never used.
    tenant = {"root_code": "GO_" + "0" * 31 + "1", "app_key": "k", "app_secret": "s", "tenant_id": 1}
    config = bench_config(directory, "http://127.0.0.1:9", tenant, f"sqlite:///{database}",
                          api={"tokens_file": str(tokens)})
    daemon = Daemon(directory / "syncd.toml", config)
    snapshots = SnapshotCache(lambda: read_hr(config))
    data = ConsoleData(daemon.store, snapshots, root_department=ROOT,
                       root_organization_code=config.unit.root_organization_code, today=daemon.today,
                       next_cycle=daemon.next_cycle)
    app = create_api(Control(daemon), TokenStore(tokens), daemon.metrics)
    register_console(app, data, b"b" * 32, tokens_file=tokens, unit_name="bench")
    return app, data, snapshots, operator


def _csrf(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match
    return match.group(1)


def measure(app: Any, data: Any, operator: str, repeat: int) -> list[dict[str, Any]]:
    """Each page once cold, then `repeat` times: median, 95th percentile and slowest, in milliseconds."""
    client = app.test_client()
    form = client.get("/signin")
    assert client.post("/signin", data={"csrf_token": _csrf(form.text), "token": operator}).status_code == 303
    index = data.index()
    snapshot = index.snapshot
    busiest = max(index.incomplete, key=lambda d: index.incomplete[d])
    middle = next(d for d in index.children[ROOT] if index.children.get(d))
    person = next(iter(snapshot.people))
    name = snapshot.people[person].name
    crowded = max(index.people_in, key=lambda d: len(index.people_in[d]))  # the most people of its own
    with data.store.engine.connect() as connection:  # someone whose departure waits for a decision
        from sqlalchemy import text
        leaver = connection.execute(text("select subject from journal where state = 'held' limit 1")).scalar()
    today = date.today().isoformat()
    token = _csrf(client.get("/people").text)
    pages: list[tuple[str, str, dict[str, str] | None]] = [
        ("总览", "/", None),
        ("信息完整性（全单位）", "/completeness", None),
        ("信息完整性（第 10 页）", "/completeness?page=10&dpage=5", None),
        ("信息完整性（一个部门）", f"/completeness?d={busiest}", None),
        ("信息完整性（含下级，大片区）", f"/completeness?d={middle}", None),
        ("信息完整性（按字段：职级）", "/completeness?f=rank", None),
        ("信息完整性（按字段和部门，按姓名排序）", f"/completeness?f=mobile&d={middle}&sort=name", None),
        ("信息完整性（按字段，按工号倒序，第 5 页）", "/completeness?f=rank&sort=employee_id&desc=1&page=5", None),
        ("下载 XLSX（全单位）", "/completeness/report.xlsx", None),
        ("下载 CSV（全单位）", "/completeness/report.csv", None),
        ("人员查询（表单）", "/people", None),
        ("人员查询（按姓名，POST）", "/people/search", {"csrf_token": token, "q": name}),
        ("人员查询（按工号，POST）", "/people/search", {"csrf_token": token, "q": person}),
        ("人员页面", f"/people/{person}", None),
        ("人员页面（离职待审批）", f"/people/{leaver}", None),
        ("部门（直属人员最多）", f"/departments/{crowded}", None),
        ("下载花名册（片区）", f"/departments/{middle}/roster.csv", None),
        ("部门（根，4千多个部门的树）", f"/departments/{ROOT}", None),
        ("部门（片区）", f"/departments/{middle}", None),
        ("待审批（300 项）", "/held", None),
        ("审批确认", "/held/held00000001/approve", None),
        ("运行记录", "/runs", None),
        ("运行记录（第 6 页）", "/runs?page=6", None),
        ("运行记录（按触发和日期筛选）", f"/runs?trigger=schedule&from=2000-01-01&to={today}", None),
        ("变更记录", "/changes", None),
        ("变更记录（一个人）", f"/changes?e={person}", None),
        ("变更记录（片区，按日期）", f"/changes?d={middle}&from=2000-01-01&to={today}", None),
        ("变更记录（待审批状态）", "/changes?state=held", None),
        ("下载变更记录（片区）", f"/changes.csv?d={middle}", None),
        ("一次运行（10 万项，第 1 页）", "/runs/initial00001", None),
        ("一次运行（10 万项，第 300 页）", "/runs/initial00001?page=300", None),
    ]
    results = []
    for label, path, form_data in pages:
        timings = []
        for _ in range(repeat + 1):
            started = time.perf_counter()
            response = client.post(path, data=form_data) if form_data else client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 303), (path, response.status_code)
        first = timings.pop(0)  # the page's first request: its templates compiled, its caches filled
        timings.sort()
        results.append({"page": label, "path": path.split("?")[0] if form_data else path, "first_ms": round(first, 1),
                        "median_ms": round(statistics.median(timings), 1),
                        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
                        "max_ms": round(timings[-1], 1), "bytes": len(response.data)})
    return results


def main() -> int:
    """Prepare, build, time; print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.console_pages", description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "syncd-bench-console")
    args = parser.parse_args()
    workdir = args.workdir / str(args.people)
    workdir.mkdir(parents=True, exist_ok=True)
    from syncd import log as logging_setup

    logging_setup.configure("json", "error")
    started = time.perf_counter()
    database = prepare(workdir, args.people, args.seed)
    print(f"export and state ready in {workdir} ({time.perf_counter() - started:.1f} s)")
    app, data, snapshots, operator = build(workdir, database)
    started = time.perf_counter()
    snapshot = snapshots()  # the read on demand, timed apart from the index
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    data.warm(snapshot)  # what the daemon does off the request path when a cycle offers a snapshot
    index = data.index()
    index_s = time.perf_counter() - started
    print(f"HR read on demand (no cycle offered one yet): {read_s:.2f} s; index of the snapshot and department "
          f"tree: {index_s:.2f} s "
          f"({len(snapshot.people)} people, {len(snapshot.departments)} departments, "
          f"{index.report.in_post - index.report.complete} incomplete, {index.report.rejected} rejected)")
    results = measure(app, data, operator, args.repeat)
    print(f"\n{args.people:,} people, {args.repeat} requests per page; peak RSS {peak_rss_mb():.0f} MB\n")
    print("| page | first | median | p95 | slowest | size |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['page']} `{row['path']}` | {row['first_ms']} ms | {row['median_ms']} ms | {row['p95_ms']} ms "
              f"| {row['max_ms']} ms | {row['bytes'] // 1024} KB |")
    pages = [row for row in results if "下载" not in row["page"]]
    slowest = max(max(row["max_ms"], row["first_ms"]) for row in pages)
    print(f"\nslowest page request, first ones included: {slowest} ms "
          f"({'under' if slowest < 300 else 'OVER'} 300 ms); {date.today()}")
    return 0 if slowest < 300 else 1


if __name__ == "__main__":
    raise SystemExit(main())

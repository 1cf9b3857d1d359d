"""The demo bureau's part of `syncd demo`: three syncs on bundled synthetic data against the bundled simulator.

Three syncs: the initial load of a ~300-person bureau (part of it typed into the directory by hand
before, as every unit did since 2021: adopted, not created twice), a scripted HR change set (a join, a
transfer, a post change, a retirement and one malformed row), and a final sync that must make
zero writes. Everything runs over real HTTP against the simulator on a free loopback port.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import click

from connectors.zzd.client import ContactsClient
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from connectors.zzd.simulator.handbuilt import HandBuilt, build_by_hand
from syncd import log as logging_setup
from syncd.config import load
from syncd.demo.city import CityDemo
from syncd.demo.daemon import WEBHOOK_SECRET, NoticeInbox, free_port, run_daemon_demo
from syncd.domain.model import ChangeKind
from syncd.engine.cycle import CycleOptions, CycleResult, run_cycle
from syncd.reporting.present import print_issues, print_plan, print_rejections
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target

DEMO_DATA: Traversable = files("syncd").joinpath("data", "demo")  # package data, not the checkout
ROOT_CODE = "GO_" + "0" * 31 + "1"
DEMO_SECRET = "demo-secret-not-for-production"
DEMO_ADMIN_TOKEN = "demo-admin-token"
TENANT_ID = 196729
APP_KEY = "demo-app-key"

CONFIG_TEMPLATE = """\
# Written by `syncd demo`: the bundled sample data against the bundled simulator.
[unit]
name = "郑州市审计局"
root_department = "D0001"
root_organization_code = "{root}"
operator = "syncd-demo"

[source]
kind = "csv"
people = "people.csv"
departments = "departments.csv"

[target]
base_url = "{base_url}"
app_key = "{app_key}"
app_secret_file = "app-secret"
tenant_id = {tenant}
rate_limit = 200
retry_attempts = 2
retry_total = 5

[state]
url = "sqlite:///state.db"

[safety]
# The demo's first sync builds the whole tree; in production an operator approves it once.
structure_changes = "apply"

[schedule]
incremental_every = "2s"

[escalation]
unit_admins = [{{ name = "系统管理员", account_id = 1001 }}]
higher_admins = [{{ name = "市局管理员", account_id = 2001 }}]
channels = ["work_notification", "webhook"]   # a notice the gateway cannot carry goes by webhook

[escalation.webhook]
url = "{webhook_url}"
secret_file = "webhook-secret"

[api]
listen = "127.0.0.1:{api_port}"
tokens_file = "tokens.toml"

[logging]
format = "console"
level = "info"
"""


def census(admin: SimAdmin) -> str:
    """Organisations and people (active / inactive) in the directory."""
    directory = admin.directory()
    employees = directory["employees"]
    active = sum(1 for e in employees if e["status"] == "A")
    return (f"{len(directory['organizations'])} organisations, {active} active and "
            f"{len(employees) - active} inactive people")


def _edit_people(path: Path, edit: Callable[[list[str], list[list[str]]], list[str]]) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    said = edit(header, body)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    return said


def _hr_change_set(header: list[str], rows: list[list[str]]) -> list[str]:
    """HR's week: one of each change the regulation names, and a typo. Returns what was done."""
    col = {name: i for i, name in enumerate(header)}
    in_post = [r for r in rows if r[col["人员状态"]] == "在职" and r[col["人员角色"]] == "普通人员"]
    departments = sorted({r[col["部门编号"]] for r in in_post})
    mover, promoted, retiree = in_post[0], in_post[1], in_post[2]
    target_dept = next(d for d in departments if d != mover[col["部门编号"]])

    said = []
    newcomer = [""] * len(header)
    for name, value in {"工号": "A900001", "姓名": "林晓雨", "性别": "女", "手机号": "138 0000 9001",
                        "部门编号": departments[0], "编制": "行政编制", "职级": "一级科员", "政治面貌": "共青团员",
                        "人员角色": "普通人员", "职务": "科员", "职务层次": "科员级", "办公电话": "0371-67180001",
                        "人员状态": "在职", "排序": "99"}.items():
        newcomer[col[name]] = value
    rows.append(newcomer)
    said.append(f"join        A900001 joins {departments[0]} (mobile written with spaces: normalised)")

    said.append(f"transfer    {mover[col['工号']]} moves {mover[col['部门编号']]} → {target_dept}")
    mover[col["部门编号"]] = target_dept

    promoted[col["职务"]], promoted[col["职务层次"]] = "副科长", "副科级"
    said.append(f"post change {promoted[col['工号']]} becomes 副科长 (副科级)")

    retiree[col["人员状态"]] = "退休"
    said.append(f"retirement  {retiree[col['工号']]} retires")

    malformed = list(newcomer)
    malformed[col["工号"]], malformed[col["手机号"]] = "A900002", "1380000abcd"
    rows.append(malformed)
    said.append(f"malformed   A900002 has an impossible mobile (line {len(rows) + 1} of people.csv)")
    return said


def _sync(config_path: Path, title: str, admin: SimAdmin) -> CycleResult:
    config = load(config_path)
    before = admin.counters()["writes"]
    store = StateStore(config.state.url)
    try:
        result = run_cycle(config, build_source(config), build_target(config), store, CycleOptions(trigger="demo"))
    finally:
        store.close()
    writes = admin.counters()["writes"] - before
    click.secho(f"\n== {title}", bold=True)
    print_rejections(result.snapshot.rejections)
    print_issues(result.snapshot.issues)
    plan = result.plan
    if len(plan) > 40:
        click.echo(f"Plan: {len(plan)} change(s)")
        for kind, changes in plan.by_kind().items():
            click.echo(f"  {kind.value}: {len(changes)}")
    elif not plan.changes:
        print_plan(plan)
    else:
        click.echo(f"Plan: {len(plan)} change(s), each as applied:")
    for outcome in result.report.outcomes:
        if outcome.state != "done" or len(plan) <= 40:
            mark = "ok  " if outcome.state == "done" else "FAIL"
            detail = "" if outcome.state == "done" else f" — {outcome.category}: {outcome.message}"
            click.echo(f"  {mark} {outcome.change.describe()}{detail}")
    click.echo(f"Result: {result.outcome}; {writes} write call(s) to the directory; "
               f"directory now holds {census(admin)}")
    return result


def _write_secret(path: Path, secret: str) -> None:
    """A secret file readable by its owner only (0600 from its creation on, kept by `--keep`)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")


# The part of the bureau its admin typed into the directory by hand before syncd came: these
# departments (two of them under their 简称) and their people. The first sync adopts them.
HAND_BUILT = ("D0002", "D0003", "D0004", "D0005", "D0006")
HAND_TYPED_SHORT = ("D0004", "D0006")


def _build_by_hand(server: SimulatorServer, workdir: Path) -> HandBuilt:
    """Type part of the bureau into the simulator as its admin did by hand since 2021 (no extOrgCode)."""
    with (workdir / "departments.csv").open(encoding="utf-8", newline="") as handle:
        departments = [row for row in csv.DictReader(handle) if row["部门编号"] in ("D0001", *HAND_BUILT)]
    with (workdir / "people.csv").open(encoding="utf-8", newline="") as handle:
        people = [row for row in csv.DictReader(handle) if row["部门编号"] in HAND_BUILT]
    client = ContactsClient(server.base_url, APP_KEY, lambda: DEMO_SECRET, TENANT_ID, "unit-admin")
    built = build_by_hand(client, ROOT_CODE, "D0001", departments, people,
                          name_of=lambda row: row["简称"] if row["部门编号"] in HAND_TYPED_SHORT else row["部门名称"])
    click.secho("\n== Built by hand before syncd came", bold=True)
    click.echo(f"  the unit admin typed {len(built.organizations) - 1} departments "
               f"({len(HAND_TYPED_SHORT)} under their short name) and {len(built.employees)} people, no extOrgCode")
    return built


def _adopted(result: CycleResult, built: HandBuilt, admin: SimAdmin) -> bool:
    """Say what the first sync adopted of the hand-built part; True when all of it was, and nothing twice."""
    done = [o.change for o in result.report.outcomes if o.state == "done"]
    departments = {c.subject for c in done if c.kind is ChangeKind.DEPT_ADOPT}
    people = {c.subject for c in done if c.kind is ChangeKind.ADOPT}
    directory = admin.directory()
    siblings = Counter((o["parentCode"], o["organizationName"]) for o in directory["organizations"])
    twice = sum(1 for n in siblings.values() if n > 1)
    whole = departments == set(built.organizations) - {"D0001"} and people == set(built.employees) and not twice
    click.secho(f"Adopted, not created: {len(departments)} hand-built departments (renamed to HR's names) and "
                f"{len(people)} people; same-named siblings: {twice}", fg="green" if whole else "red")
    return whole


def run_demo(keep: Path | None = None, serve: bool = False) -> int:
    """Run the demo; return the process exit code."""
    logging_setup.configure("console", "warning")
    workdir = keep or Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("departments.csv", "people.csv"):
        (workdir / name).write_bytes(DEMO_DATA.joinpath(name).read_bytes())
    (workdir / "state.db").unlink(missing_ok=True)
    _write_secret(workdir / "app-secret", DEMO_SECRET)

    tenant = SimTenant(tenant_id=TENANT_ID, app_key=APP_KEY, app_secret=DEMO_SECRET, root_code=ROOT_CODE,
                       root_name="郑州市审计局", admin_token=DEMO_ADMIN_TOKEN, state_file=None)
    _write_secret(workdir / "webhook-secret", WEBHOOK_SECRET)
    with SimulatorServer(tenant) as server, NoticeInbox(WEBHOOK_SECRET) as inbox:
        config_path = workdir / "syncd.toml"
        config_path.write_text(CONFIG_TEMPLATE.format(root=ROOT_CODE, base_url=server.base_url, app_key=APP_KEY,
                                                      tenant=TENANT_ID, api_port=free_port(), webhook_url=inbox.url),
                               encoding="utf-8")
        admin = SimAdmin(server.base_url, DEMO_ADMIN_TOKEN)
        click.echo(f"Simulator on {server.base_url}; demo files in {workdir}")
        built = _build_by_hand(server, workdir)
        first = _sync(config_path, "Sync 1: initial load of the bundled bureau", admin)
        adopted = _adopted(first, built, admin)

        click.secho("\n== HR edits people.csv", bold=True)
        for line in _edit_people(workdir / "people.csv", _hr_change_set):
            click.echo(f"  {line}")
        second = _sync(config_path, "Sync 2: the change set", admin)
        before = admin.counters()["writes"]
        third = _sync(config_path, "Sync 3: nothing changed in HR", admin)
        zero = admin.counters()["writes"] == before
        click.secho(f"\nThird sync made {'zero' if zero else 'SOME'} writes.", bold=True,
                    fg="green" if zero else "red")
        served = run_daemon_demo(config_path, admin, inbox, serve, beside=lambda api: CityDemo(
            DEMO_DATA, config_path, api, tenant, config_path.read_text(encoding="utf-8"), workdir))
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    expected = {first.outcome, second.outcome, third.outcome} == {"success"}
    return 0 if zero and expected and served and adopted else 1

"""Benchmark `syncd onboard --output` at a unit whose directory was built by hand: time and peak memory.

    python -m bench.onboard --people 100000 --workdir /tmp/syncd-onboard

The synthetic export (`bench.synthetic`) is written to `--workdir`, and the simulator's state file is
seeded there with the directory its admin would have typed by hand: HR's tree (every third department
under its 简称, no extOrgCode), every in-post person with their mobile and name (a few fields only),
and 1 % more people HR does not know (left, never removed). Seeding writes the simulator's objects
directly (100,000 creates through the API would take longer than the benchmark); what is measured
reads it all through the API over HTTP.

The simulator runs in a child process. The measured step runs in a fresh process of its own, so its
CPU time and peak RSS (`ru_maxrss`) are syncd's alone: the HR read and validation (`cycle.read`), the
whole directory's read (`onboard.read_directory`: every organisation, everyone's positions and
fields), the look-up of every HR mobile (50 a call), the correlation (`onboard.review`) and the
workbook (`onboard_workbook.write_review`), against an empty state.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.seeding import ROOT, bench_config, export, rss_mb, tenant_settings

LEFT_SHARE = 0.01  # directory people HR does not know, as a share of HR's in-post people


def seed_directory(directory: Path, state_file: Path, tenant: Any) -> dict[str, int]:
    """The simulator's state file holding the hand-built directory of the export in `directory`."""
    import csv

    from connectors.zzd.simulator.directory import Account, Directory, Employee, Organization, Position

    sim = Directory(tenant.tenant_id, tenant.root_code, tenant.root_name, state_file=None)
    with (directory / "departments.csv").open(encoding="utf-8", newline="") as handle:
        departments = list(csv.DictReader(handle))
    code_of = {ROOT: tenant.root_code}
    pending = [row for row in departments if row["部门编号"] != ROOT]
    typed_short = 0
    while pending:  # parents first
        ready = [row for row in pending if row["上级部门编号"] in code_of]
        if not ready:
            break
        for n, row in enumerate(ready):
            short = bool(row["简称"]) and n % 3 == 0
            typed_short += short
            code = f"GO_{0xBE000000 + len(code_of):032x}"  # never the root's code
            sim.organizations[code] = Organization(code, row["简称"] if short else row["部门名称"],
                                                   code_of[row["上级部门编号"]])
            code_of[row["部门编号"]] = code
        pending = [row for row in pending if row["部门编号"] not in code_of]
    in_post = 0
    with (directory / "people.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["人员状态"] != "在职":
                continue
            in_post += 1
            _person(sim, row["姓名"], row["手机号"], code_of.get(row["部门编号"], tenant.root_code), Employee,
                    Position, Account)
    left = int(in_post * LEFT_SHARE)
    for n in range(left):
        _person(sim, f"离职{n}", f"199{n:08d}", code_of[departments[1 + n % (len(departments) - 1)]["部门编号"]],
                Employee, Position, Account)
    sim.state_file = state_file
    sim.save()
    return {"organizations": len(sim.organizations) - 1, "typed_short": typed_short, "in_post": in_post,
            "left": left}


def _person(sim: Any, name: str, mobile: str, org_code: str, employee: Any, position: Any, account: Any) -> None:
    code = f"GE_{sim.next_account_id:032x}"
    sim.employees[code] = employee(code, name, mobile, sim.next_account_id,
                                   positions=[position(org_code, True, {"govEmpPosJob": "科员"})])
    sim.accounts[sim.next_account_id] = account(sim.next_account_id, code)
    sim.next_account_id += 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started, in MB (VmHWM: unlike `ru_maxrss`, it does not
    carry over the parent's peak through fork and exec, and the parent here held the seeded directory)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def serve(tenant: Any, port: int) -> None:
    """The simulator on `port` until terminated (the child process)."""
    from connectors.zzd.simulator import SimulatorServer

    with SimulatorServer(tenant, port=port, threads=8):
        while True:
            time.sleep(3600)


def measure(directory: Path, base_url: str, tenant: dict[str, Any], output: Path) -> dict[str, Any]:
    """`syncd onboard --output`, step by step, in this (fresh) process: seconds, RSS after, peak."""
    from bench.seeding import csv_source
    from syncd import log as logging_setup
    from syncd.engine.cycle import read
    from syncd.engine.onboard import lookup_mobiles, read_directory, review
    from syncd.reporting.onboard_workbook import write_review
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    logging_setup.configure("json", "error")
    config = bench_config(directory, base_url, tenant, f"sqlite:///{directory / 'onboard-state.db'}",
                          target={"rate_limit": 1000})
    store = StateStore(config.state.url)
    target = build_target(config)
    steps: dict[str, Any] = {}
    wall, cpu = time.perf_counter(), time.process_time()

    def step(name: str, func: Any, *args: Any) -> Any:
        started, started_cpu = time.perf_counter(), time.process_time()
        value = func(*args)
        steps[name] = {"s": round(time.perf_counter() - started, 1),
                       "cpu_s": round(time.process_time() - started_cpu, 1),
                       "rss_mb": round(rss_mb()), "peak_rss_mb": round(peak_rss_mb())}
        return value

    snapshot = step("read + validate HR", read, config, csv_source(directory))
    links = store.links()
    held = step("read the directory", read_directory, target, config.unit.root_organization_code)
    by_mobile = step("look up mobiles", lookup_mobiles, snapshot, links, target)
    result = step("correlate", review, snapshot, links, held, by_mobile, ROOT, "")
    step("write the workbook", write_review, result, output)
    store.close()
    return {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_rss_mb()), "steps": steps, "summary": result.summary(),
            "directory_people": len(held.people), "workbook_mb": round(output.stat().st_size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="where the export and the simulator's state are kept")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="syncd-onboard-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(measure(workdir, args.base_url, json.loads(args.tenant), workdir / "review.xlsx")))
        return
    from bench.apply_throughput import free_port
    from connectors.zzd.simulator import SimAdmin, SimTenant

    export(workdir, args.people, args.seed)
    state_file = workdir / "simulator.json"
    tenant = SimTenant(state_file=state_file)
    seeded = seed_directory(workdir, state_file, tenant)
    port = free_port()
    child = multiprocessing.get_context("fork").Process(target=serve, args=(tenant, port), daemon=True)
    child.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(1200):  # the child loads the seeded state first: seconds at 100,000 people
            try:
                SimAdmin(base_url, tenant.admin_token).counters()
                break
            except OSError:
                time.sleep(0.1)
        done = subprocess.run([sys.executable, "-m", "bench.onboard", "--child", "--workdir", str(workdir),
                               "--base-url", base_url, "--tenant", json.dumps(tenant_settings(tenant))],
                              check=False, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        child.terminate()
        child.join(10)
    print(json.dumps({"people": args.people, "seeded": seeded, **figures}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()

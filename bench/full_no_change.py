"""Benchmark a forced no-change cycle at scale: wall time and peak memory of the real `run_cycle`.

    python -m bench.full_no_change --people 1000000
    python -m bench.full_no_change --people 1000000 --steps     # also: where the time and memory go

The export and a state database seeded as if everyone had been synced are prepared in `--workdir`
(kept and reused when it matches). Each measured cycle runs in a fresh subprocess, so its peak RSS
(`ru_maxrss`) is the cycle's alone: the real `CsvSource`, the SQLite `StateStore`, and
`run_cycle` with `skip_unchanged=False` (the read is forced) and `full=False` (no directory read),
against the simulator over HTTP (in this process). It must plan nothing and write nothing.

`--steps` times the cycle's steps one by one in another fresh process (read, links, reconcile, the
applier's setup), with the resident and peak memory after each.

`--like` measures what `syncd.cycle.plan` would cost reading the links with
`store.links(like=snapshot)` (the links then share the snapshot's text; a link unchanged since the
last push holds its person's record): the cycle's `read` is wrapped to catch the snapshot and the
store's `links` to pass it. A projection of a one-line change in `plan`, labelled as such.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.seeding import (
    ROOT,
    as_synced,
    bench_config,
    csv_source,
    export,
    peak_rss_mb,
    rss_mb,
    seed_links,
    tenant_settings,
)

# The measured processes import only what syncd imports (not Faker, not the simulator).


def prepare(directory: Path, people: int, seed: int) -> Path:
    """The export and a state database holding the links a sync of it would leave (reused when present)."""
    from syncd.state.store import StateStore
    from syncd.validate import CodeTables, build_snapshot

    export(directory, people, seed)
    database = directory / "state.db"
    marker = directory / "state.json"
    wanted = {"people": people, "seed": seed}
    if database.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return database
    for stale in directory.glob("state.db*"):
        stale.unlink()
    snapshot = build_snapshot(csv_source(directory), ROOT, CodeTables.load())
    store = StateStore(f"sqlite:///{database}")
    seed_links(store, as_synced(snapshot))
    store.close()
    marker.write_text(json.dumps(wanted))
    return database


def measure_cycle(directory: Path, base_url: str, tenant: dict[str, Any], like: bool) -> dict[str, Any]:
    """One real forced no-change cycle; its figures (run in a fresh process)."""
    from syncd import log as logging_setup
    from syncd.cycle import CycleOptions, run_cycle
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    logging_setup.configure("json", "error")
    config = bench_config(directory, base_url, tenant, f"sqlite:///{directory / 'state.db'}")
    store = StateStore(config.state.url)
    if like:
        _links_like_the_snapshot(store)
    source, target = csv_source(directory), build_target(config)
    baseline = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_cycle(config, source, target, store, CycleOptions(trigger="manual", skip_unchanged=False))
    figures = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "peak_rss_mb": peak_rss_mb(),
               "baseline_rss_mb": baseline, "outcome": result.outcome, "planned": len(result.plan),
               "people": len(result.snapshot.people), "departments": len(result.snapshot.departments),
               "rejected": len(result.snapshot.rejections)}
    store.close()
    return figures


def _links_like_the_snapshot(store: Any) -> None:
    """Make the cycle read its links with `like=` the snapshot it read (the `--like` projection)."""
    import syncd.cycle

    read, links = syncd.cycle.read, store.links
    snapshots: list[Any] = []

    def read_and_keep(*args: Any) -> Any:
        snapshots[:] = [read(*args)]
        return snapshots[0]

    syncd.cycle.read = read_and_keep
    store.links = lambda people=None: links(people, like=snapshots[0] if snapshots else None)


def measure_steps(directory: Path, tenant: dict[str, Any], like: bool) -> dict[str, Any]:
    """The cycle's steps one by one (read, links, reconcile, the applier's setup): time, RSS after, peak after."""
    from syncd.apply import Applier, ApplySettings
    from syncd.cycle import read
    from syncd.reconcile import reconcile
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    config = bench_config(directory, "http://127.0.0.1:9", tenant, f"sqlite:///{directory / 'state.db'}")
    store = StateStore(config.state.url)
    steps: dict[str, Any] = {"start": {"rss_mb": round(rss_mb()), "peak_rss_mb": round(peak_rss_mb())}}

    def step(name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        gc.collect()
        started = time.perf_counter()
        value = func(*args, **kwargs)
        steps[name] = {"s": round(time.perf_counter() - started, 2), "rss_mb": round(rss_mb()),
                       "peak_rss_mb": round(peak_rss_mb())}
        return value

    snapshot = step("read + validate", read, config, csv_source(directory))
    links = step("links from SQLite", store.links, like=snapshot if like else None)
    plan = step("reconcile", reconcile, snapshot, links, ROOT)
    steps["planned"] = len(plan)
    step("applier set up", Applier, build_target(config), store, links, ApplySettings.from_config(config))
    store.close()
    return steps


def in_subprocess(*args: str) -> dict[str, Any]:
    """Run this module in a fresh interpreter with these arguments; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "bench.full_no_change", *args], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="where the export and seeded state are kept (default: a temp dir)")
    parser.add_argument("--runs", type=int, default=1, help="measured cycles, each in a fresh process")
    parser.add_argument("--steps", action="store_true", help="also time the steps one by one, in another process")
    parser.add_argument("--like", action="store_true", help="project store.links(like=snapshot) in the cycle")
    parser.add_argument("--child", choices=("prepare", "cycle", "steps"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.workdir, args.people, args.seed)
        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return
    if args.child == "cycle":
        print(json.dumps(measure_cycle(args.workdir, args.base_url, args.tenant, args.like)))
        return
    if args.child == "steps":
        print(json.dumps(measure_steps(args.workdir, args.tenant, args.like)))
        return
    from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer

    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        directory = args.workdir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        common = ["--workdir", str(directory), "--people", str(args.people), "--seed", str(args.seed)]
        started = time.perf_counter()
        in_subprocess("--child", "prepare", *common)
        print(f"export and seeded state for {args.people:,} people ready in {time.perf_counter() - started:.1f} s "
              f"({directory})", flush=True)
        tenant = SimTenant()
        common += ["--tenant", json.dumps(tenant_settings(tenant)), *(["--like"] if args.like else [])]
        with SimulatorServer(tenant) as server:
            admin = SimAdmin(server.base_url, tenant.admin_token)
            for _ in range(args.runs):
                before = admin.counters()["writes"]
                figures = in_subprocess("--child", "cycle", "--base-url", server.base_url, *common)
                writes = admin.counters()["writes"] - before
                label = "forced no-change cycle" + (" (projection: links like the snapshot)" if args.like else "")
                print(f"{label}, {figures['people']:,} people: {figures['wall_s']:.1f} s wall, "
                      f"{figures['cpu_s']:.1f} s CPU, peak RSS {figures['peak_rss_mb']:.0f} MB "
                      f"(at start {figures['baseline_rss_mb']:.0f} MB); outcome {figures['outcome']}, "
                      f"planned {figures['planned']}, rejected {figures['rejected']}, writes {writes}", flush=True)
        if args.steps:
            steps = in_subprocess("--child", "steps", *common)
            for name, figures in steps.items():
                print(f"  {name:<20} {figures}")


if __name__ == "__main__":
    main()

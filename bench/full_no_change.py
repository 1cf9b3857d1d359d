"""Benchmark a forced no-change cycle at scale: wall time and peak memory of the real `run_cycle`.

    python -m bench.full_no_change --people 1000000
    python -m bench.full_no_change --people 1000000 --steps     # also: where the time and memory go

The export and a state database seeded as if everyone had been synced are prepared in `--workdir`
(kept and reused when it matches). Each measured cycle runs in a fresh subprocess, so its peak RSS
(`ru_maxrss`) is the cycle's alone: the real `CsvSource`, the SQLite `StateStore`, and
`run_cycle` with `skip_unchanged=False` (the read is forced) and `full=False` (no directory read),
against the simulator over HTTP (in this process). It must plan nothing and write nothing.

`--steps` times the cycle's steps one by one in another fresh process (read, links, reconcile, the
applier's setup), with the resident and peak memory after each. Both report the collector's work
(collections by generation and the time they took), measured with `gc.callbacks`.
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
    from syncd.domain.validate import CodeTables, build_snapshot
    from syncd.state.store import StateStore

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


class CollectorWatch:
    """Counts the collector's passes by generation, and the time they took, while it is entered."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> CollectorWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes[info["generation"]] += 1
            self.seconds += time.perf_counter() - self._started

    def figures(self) -> dict[str, Any]:
        """Passes of each generation and the seconds they took."""
        return {"passes": self.passes, "s": round(self.seconds, 2)}


def measure_cycle(directory: Path, base_url: str, tenant: dict[str, Any]) -> dict[str, Any]:
    """One real forced no-change cycle; its figures (run in a fresh process)."""
    from syncd import log as logging_setup
    from syncd.engine.cycle import CycleOptions, run_cycle
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    logging_setup.configure("json", "error")
    config = bench_config(directory, base_url, tenant, f"sqlite:///{directory / 'state.db'}")
    store = StateStore(config.state.url)
    source, target = csv_source(directory), build_target(config)
    baseline = peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    with CollectorWatch() as collector:
        result = run_cycle(config, source, target, store, CycleOptions(trigger="manual", skip_unchanged=False))
    figures = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "peak_rss_mb": peak_rss_mb(),
               "baseline_rss_mb": baseline, "outcome": result.outcome, "planned": len(result.plan),
               "people": len(result.snapshot.people), "departments": len(result.snapshot.departments),
               "rejected": len(result.snapshot.rejections), "gc": collector.figures()}
    store.close()
    return figures


def measure_steps(directory: Path, tenant: dict[str, Any]) -> dict[str, Any]:
    """The cycle's steps one by one (read, links, reconcile, the applier's setup): time, RSS after, peak after."""
    from syncd.domain.reconcile import reconcile
    from syncd.engine.apply import Applier, ApplySettings
    from syncd.engine.cycle import YOUNG_GENERATION, read, young_generation
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    config = bench_config(directory, "http://127.0.0.1:9", tenant, f"sqlite:///{directory / 'state.db'}")
    store = StateStore(config.state.url)
    steps: dict[str, Any] = {"start": {"rss_mb": round(rss_mb()), "peak_rss_mb": round(peak_rss_mb())}}

    def step(name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        gc.collect()
        started = time.perf_counter()
        with young_generation(YOUNG_GENERATION), CollectorWatch() as collector:  # as `run_cycle` runs it
            value = func(*args, **kwargs)
        steps[name] = {"s": round(time.perf_counter() - started, 2), "rss_mb": round(rss_mb()),
                       "peak_rss_mb": round(peak_rss_mb()), "gc": collector.figures()}
        return value

    snapshot = step("read + validate", read, config, csv_source(directory))
    links = step("links from SQLite", store.links, like=snapshot)
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
    parser.add_argument("--child", choices=("prepare", "cycle", "steps"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.workdir, args.people, args.seed)
        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return
    if args.child == "cycle":
        print(json.dumps(measure_cycle(args.workdir, args.base_url, args.tenant)))
        return
    if args.child == "steps":
        print(json.dumps(measure_steps(args.workdir, args.tenant)))
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
        common += ["--tenant", json.dumps(tenant_settings(tenant))]
        with SimulatorServer(tenant) as server:
            admin = SimAdmin(server.base_url, tenant.admin_token)
            for _ in range(args.runs):
                before = admin.counters()["writes"]
                figures = in_subprocess("--child", "cycle", "--base-url", server.base_url, *common)
                writes = admin.counters()["writes"] - before
                print(f"forced no-change cycle, {figures['people']:,} people: {figures['wall_s']:.1f} s wall, "
                      f"{figures['cpu_s']:.1f} s CPU, peak RSS {figures['peak_rss_mb']:.0f} MB "
                      f"(at start {figures['baseline_rss_mb']:.0f} MB); outcome {figures['outcome']}, "
                      f"planned {figures['planned']}, rejected {figures['rejected']}, writes {writes}; "
                      f"collector {figures['gc']}",
                      flush=True)
        if args.steps:
            steps = in_subprocess("--child", "steps", *common)
            for name, figures in steps.items():
                print(f"  {name:<20} {figures}")


if __name__ == "__main__":
    main()

"""Benchmark the daemon's incremental cycle when HR has not changed (issue 8: under 0.5 s at 100,000 people).

    python -m bench.no_change_cycle --people 100000

A synthetic export and a state database seeded as if everyone had been synced; one forced cycle
records the source's change token. Then the real `run_cycle` with
`CycleOptions(trigger="schedule", skip_unchanged=True)`, the real `CsvSource` and the SQLite
`StateStore`, against the simulator, in four situations:

- unchanged: the daemon's source object, which remembers each file's size, mtime and hash, so it
  only stats the files;
- unchanged, new source: a source object that has to hash both files first (the first cycle after
  a start or a SIGHUP);
- touched: both files rewritten byte for byte, new mtime: hashed again, same token, skipped;
- re-exported: the same records written differently (every cell quoted, or none, as another
  export tool would), so the token changes: the whole read, validation and plan run, and find nothing to do.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.seeding import ROOT, as_synced, bench_config, csv_source, export, seed_links, tenant_settings
from connectors.sources.csv_source import CsvSource
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from syncd import log as logging_setup
from syncd.domain.validate import CodeTables, build_snapshot
from syncd.engine.cycle import CycleOptions, CycleResult, run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_target

INCREMENTAL = CycleOptions(trigger="schedule", skip_unchanged=True)


def rewrite(path: Path, reexport: bool = False) -> None:
    """Write the file again with a new mtime: the same bytes, or the same records quoted the other way
    (every cell, or only where needed), so that the bytes differ every time."""
    if reexport:
        with path.open(encoding="utf-8", newline="") as handle:
            quoted_now = handle.read(1) == '"'
            handle.seek(0)
            rows = list(csv.reader(handle))
        quoting = csv.QUOTE_MINIMAL if quoted_now else csv.QUOTE_ALL
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n", quoting=quoting).writerows(rows)
    else:
        path.write_bytes(path.read_bytes())
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later mtime even on a coarse clock


def timed_cycles(label: str, runs: int, cycle: Callable[[], CycleResult], before: Callable[[], None] | None = None,
                 writes: Callable[[], int] | None = None) -> None:
    """Run `cycle` `runs` times (each after `before`), print wall time (median, min, max), outcome and plan."""
    times, outcomes, planned = [], set(), set()
    start_writes = writes() if writes else 0
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        result = cycle()
        times.append(time.perf_counter() - started)
        outcomes.add(result.outcome)
        planned.add(len(result.plan))
    wrote = (writes() - start_writes) if writes else "?"
    print(f"{label:<34} median {statistics.median(times) * 1000:8.1f} ms  min {min(times) * 1000:8.1f}  "
          f"max {max(times) * 1000:8.1f}  ({runs} runs; outcome {'/'.join(sorted(outcomes))}, "
          f"planned {'/'.join(map(str, sorted(planned)))}, writes {wrote})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20, help="cycles per skipped situation")
    parser.add_argument("--read-runs", type=int, default=3, help="cycles of the re-exported situation (each reads)")
    args = parser.parse_args()
    logging_setup.configure("json", "error")
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        directory = export(Path(tmp), args.people, args.seed)
        store = StateStore(f"sqlite:///{directory / 'state.db'}")
        seed_links(store, as_synced(build_snapshot(csv_source(directory), ROOT, CodeTables.load())))
        tenant = SimTenant()
        with SimulatorServer(tenant) as server:
            config = bench_config(directory, server.base_url, tenant_settings(tenant), str(store.engine.url))
            admin = SimAdmin(server.base_url, tenant.admin_token)
            target = build_target(config)
            source = csv_source(directory)

            def writes() -> int:
                return int(admin.counters()["writes"])

            def cycle(with_source: CsvSource | None = None) -> Callable[[], CycleResult]:
                return lambda: run_cycle(config, with_source or csv_source(directory), target, store, INCREMENTAL)

            people, departments = directory / "people.csv", directory / "departments.csv"
            print(f"{args.people:,} people; people.csv {people.stat().st_size / 1e6:.1f} MB", flush=True)
            timed_cycles("first cycle (records the token)", 1,
                         lambda: run_cycle(config, source, target, store, CycleOptions(trigger="start")),
                         writes=writes)
            timed_cycles("unchanged", args.runs, cycle(source), writes=writes)
            timed_cycles("unchanged, new source (hashes)", args.runs, cycle(), writes=writes)
            timed_cycles("touched (same bytes, new mtime)", args.runs, cycle(source),
                         before=lambda: (rewrite(people), rewrite(departments)), writes=writes)
            timed_cycles("re-exported (same records)", args.read_runs, cycle(source),
                         before=lambda: rewrite(people, reexport=True), writes=writes)
            timed_cycles("unchanged again", args.runs, cycle(source), writes=writes)
        store.close()


if __name__ == "__main__":
    main()

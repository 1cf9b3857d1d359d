"""Benchmark the engine (DESIGN.md §10): plan time and peak memory, and a no-change cycle.

    python -m bench.plan_cycle --people 100000            # plan (initial and no-change) at 100k
    python -m bench.plan_cycle --people 1000000 --plan-only
    python -m bench.plan_cycle --people 100000 --cycle    # a whole no-change cycle, writes counted

`--cycle` seeds the state database with links as if everyone had been synced, then runs one real
cycle (CSV read, validation, links from SQLite, reconcile, guard) against the simulator over
HTTP and reports the writes it made, which must be zero.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from bench.seeding import ROOT, as_synced, peak_rss_mb, seed_links
from bench.synthetic import generate_lazily, write_csv
from connectors.sources.csv_source import CsvSource
from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.model import LinkState
from syncd.domain.reconcile import reconcile
from syncd.domain.validate import CodeTables, build_snapshot


def timed(label: str, func, *args):  # type: ignore[no-untyped-def]
    """Run func, print its wall time and the peak RSS after it."""
    gc.collect()
    start = time.perf_counter()
    result = func(*args)
    print(f"{label:<34} {time.perf_counter() - start:8.2f} s   peak RSS {peak_rss_mb():8.0f} MB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cycle", action="store_true", help="run a whole no-change cycle against the simulator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        directory = Path(tmp)
        departments, people = generate_lazily(args.people, seed=args.seed)
        timed(f"generate {args.people:,} people (CSV)", write_csv, directory, departments, people)
        source = CsvSource(directory / "people.csv", directory / "departments.csv", DEFAULT_PEOPLE_COLUMNS,
                           DEFAULT_DEPARTMENT_COLUMNS)
        snapshot = timed("read + validate", build_snapshot, source, ROOT, CodeTables.load())
        print(f"  {len(snapshot.people):,} people, {len(snapshot.departments):,} departments, "
              f"{len(snapshot.rejections)} rejected")
        initial = timed("plan: initial (empty state)", reconcile, snapshot, LinkState(), ROOT)
        print(f"  {len(initial):,} changes")
        del initial
        state = timed("build links as synced", as_synced, snapshot)
        unchanged = timed("plan: no change", reconcile, snapshot, state, ROOT)
        print(f"  {len(unchanged):,} changes")
        if args.cycle:
            del unchanged, state, snapshot
            run_cycle_bench(directory, source)


def run_cycle_bench(directory: Path, source: CsvSource) -> None:
    """Seed links into a state DB, then time one real cycle against the simulator; count writes."""
    from connectors.zzd.simulator.admin import SimAdmin
    from connectors.zzd.simulator.server import SimulatorServer
    from connectors.zzd.simulator.tenant import SimTenant
    from syncd.config import Config
    from syncd.engine.cycle import run_cycle
    from syncd.state.store import StateStore
    from syncd.wiring import build_target

    store = StateStore(f"sqlite:///{directory / 'state.db'}")
    seed_links(store, as_synced(build_snapshot(source, ROOT, CodeTables.load())))
    tenant = SimTenant()
    with SimulatorServer(tenant) as server:
        config = Config.model_validate({
            "unit": {"name": "bench", "root_department": ROOT, "root_organization_code": tenant.root_code},
            "source": {"kind": "csv", "people": str(directory / "people.csv"),
                       "departments": str(directory / "departments.csv")},
            "target": {"base_url": server.base_url, "app_key": tenant.app_key, "app_secret": tenant.app_secret,
                       "tenant_id": tenant.tenant_id},
            "safety": {"structure_changes": "apply"},
        })
        admin = SimAdmin(server.base_url, tenant.admin_token)
        before = admin.counters()["writes"]
        cpu = time.process_time()
        result = timed("no-change cycle (whole)", run_cycle, config, source, build_target(config), store)
        print(f"  CPU {time.process_time() - cpu:.2f} s; planned {len(result.plan)}; "
              f"writes to the directory: {admin.counters()['writes'] - before}")
    store.close()


if __name__ == "__main__":
    main()

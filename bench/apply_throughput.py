"""Benchmark bulk apply against the simulator: does syncd run *at* the configured rate limit?

    python -m bench.apply_throughput --people 1000 --rate 50 --latency 0.05 --concurrency 8

An initial sync of N synthetic people (every person a create) through the real wiring (shared
rate limiter, retries, concurrent apply) against the simulator over HTTP with the given latency
per call. Reports calls per second achieved against the configured rate; the target is ≥ 0.9.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path

from bench.synthetic import generate, write_csv
from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from connectors.zzd.simulator.tenant import Faults
from syncd import log as logging_setup
from syncd.config import Config
from syncd.engine.cycle import run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="target.rate_limit, calls per second")
    parser.add_argument("--latency", type=float, default=0.05, help="simulated gateway latency, seconds")
    parser.add_argument("--concurrency", type=int, default=8, help="target.concurrency")
    args = parser.parse_args()
    logging_setup.configure("console", "warning")
    tenant = SimTenant(faults=Faults(latency=args.latency))
    port = free_port()
    # The simulator runs in its own process, so that the CPU measured here is syncd's alone.
    simulator = multiprocessing.Process(target=serve_simulator, args=(tenant, port), daemon=True)
    simulator.start()
    base_url = f"http://127.0.0.1:{port}"
    wait_until_up(base_url, tenant.admin_token)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        directory = Path(tmp)
        departments, people = generate(args.people, seed=2)
        write_csv(directory, departments, people)
        config = Config.model_validate({
            "unit": {"name": "bench", "root_department": "D0001", "root_organization_code": tenant.root_code},
            "source": {"kind": "csv", "people": str(directory / "people.csv"),
                       "departments": str(directory / "departments.csv")},
            "target": {"base_url": base_url, "app_key": tenant.app_key, "app_secret": tenant.app_secret,
                       "tenant_id": tenant.tenant_id, "rate_limit": args.rate, "concurrency": args.concurrency},
            "state": {"url": f"sqlite:///{directory / 'state.db'}"},
            "safety": {"structure_changes": "apply"},
        })
        store = StateStore(config.state.url)
        admin = SimAdmin(base_url, tenant.admin_token)
        admin.reset_counters()
        started = time.perf_counter()
        cpu = time.process_time()
        result = run_cycle(config, build_source(config), build_target(config), store)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        store.close()
        calls = admin.counters()
        total = calls["reads"] + calls["writes"]
        achieved = total / elapsed
        print(f"{len(result.plan)} changes, outcome {result.outcome}; {total} calls ({calls['writes']} writes) "
              f"in {elapsed:.1f} s")
        print(f"achieved {achieved:.1f} calls/s of {args.rate:g} configured: ratio {achieved / args.rate:.3f} "
              f"(latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}); "
              f"syncd CPU {cpu:.1f} s = {cpu / elapsed:.0%} of the wall time")
    simulator.terminate()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_simulator(tenant: SimTenant, port: int) -> None:
    """Run the simulator until terminated (in a child process)."""
    with SimulatorServer(tenant, port=port, threads=32):
        while True:
            time.sleep(3600)


def wait_until_up(base_url: str, token: str) -> None:
    """Poll the admin endpoint until the simulator answers."""
    for _ in range(100):
        try:
            SimAdmin(base_url, token).counters()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the simulator did not start")


if __name__ == "__main__":
    main()

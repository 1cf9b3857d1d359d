"""Benchmark the daemon's HTTP surface: `/healthz` beside 1,000 slow clients, and `GET /api/v1/status` per second.

    python -m bench.http_surface --people 100000 --slow 1000

The app is the daemon's (`bench.console_pages.build`: `create_api` + `register_console` over the
seeded state of 100,000 people, SQLite) served by `WsgiServer` exactly as the daemon serves it (4
threads), in a child process of its own; the clients run in this one. First `/healthz` alone;
then again, for twice the request deadline, while `--slow` connections trickle a header line every
second (each reopened when the server drops it at its request deadline); then `--clients`
keep-alive clients ask `GET /api/v1/status` as fast as answers come for `--seconds`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

from bench.console_pages import build, prepare
from bench.seeding import peak_rss_mb
from syncd.service.http import REQUEST_DEADLINE


def _serve(workdir: Path, database: Path, ready: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The child: build the app, serve it, tell the parent the port and the operator token."""
    from syncd import log as logging_setup
    from syncd.service.http import WsgiServer

    logging_setup.configure("json", "error")
    app, data, snapshots, operator = build(workdir, database)
    data.warm(snapshots())  # what the daemon's start cycle leaves: a snapshot and its index
    server = WsgiServer(app, "127.0.0.1", 0, threads=4, ident="syncd-bench").start()
    ready.put((server.port, operator))
    threading.Event().wait()


def _latencies(url: str, count: int, for_at_least: float = 0.0) -> list[float]:
    """Sequential `/healthz` requests, each on a new connection, in milliseconds: `count` of them, and
    more until `for_at_least` seconds have passed."""
    times: list[float] = []
    until = time.perf_counter() + for_at_least
    while len(times) < count or time.perf_counter() < until:
        started = time.perf_counter()
        requests.get(url, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, slowest {ordered[-1]:.1f} ms"


class SlowClients:
    """`count` connections each sending a header line a second and never finishing their request."""

    def __init__(self, port: int, count: int) -> None:
        self._port = port
        self._sockets = [self._open() for _ in range(count)]
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self._port), timeout=5)
        client.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: bench\r\n")
        return client

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for n, client in enumerate(self._sockets):
                try:
                    client.sendall(b"X-Trickle: 1\r\n")
                except OSError:  # dropped at the request deadline: come back, as an attacker would
                    client.close()
                    self._sockets[n] = self._open()
                    self.reopened += 1

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for client in self._sockets:
            client.close()


def _status_rate(base: str, operator: str, clients: int, seconds: float) -> tuple[float, list[float]]:
    """Requests per second of `GET /api/v1/status` from `clients` keep-alive clients, and their latencies."""
    done: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {operator}"
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                assert http.get(f"{base}/api/v1/status", timeout=60).status_code == 200
                with lock:
                    done.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done) / (time.perf_counter() - started), done


def main() -> int:
    """Prepare, serve in a child, measure; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.http_surface", description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "syncd-bench-console")
    args = parser.parse_args()
    workdir = args.workdir / str(args.people)
    workdir.mkdir(parents=True, exist_ok=True)
    database = prepare(workdir, args.people, args.seed)
    ready: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    child = multiprocessing.get_context("fork").Process(target=_serve, args=(workdir, database, ready), daemon=True)
    child.start()
    try:
        port, operator = ready.get(timeout=600)
        base = f"http://127.0.0.1:{port}"
        _latencies(f"{base}/healthz", 20)  # warm up
        print(f"{args.people:,} people; {date.today()}")
        print(f"/healthz alone ({args.requests} requests): {_summary(_latencies(f'{base}/healthz', args.requests))}")
        with SlowClients(port, args.slow) as slow:
            time.sleep(2)
            # Long enough for every slow connection to be dropped at its deadline and come back.
            times = _latencies(f"{base}/healthz", args.requests, REQUEST_DEADLINE * 2)
            print(f"/healthz with {args.slow:,} slow connections open ({len(times)} requests over "
                  f"{REQUEST_DEADLINE * 2:g} s): {_summary(times)}; "
                  f"{slow.reopened} slow connections dropped at the deadline and reopened meanwhile")
        rate, latencies = _status_rate(base, operator, args.clients, args.seconds)
        print(f"GET /api/v1/status, {args.clients} keep-alive clients for {args.seconds:g} s: {rate:.1f} requests/s; "
              f"{_summary(latencies)}; bench process peak RSS {peak_rss_mb():.0f} MB")
    finally:
        child.kill()
        child.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

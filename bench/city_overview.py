"""Benchmark the city console's 全市概览 over 50 units: a cold reading, a warm page, the assessment workbook.

    python -m bench.city_overview --units 50 --unit-latency 0.2 --down 3 --hanging 1

The units stand in for 50 district daemons on their own servers: one waitress server (in a process
of its own, 32 threads) answers `/u<N>/healthz`, `/u<N>/api/v1/compliance` and `/u<N>/api/v1/status`
after `--unit-latency` seconds each, with answers computed once by syncd's own functions
(`syncd.domain.compliance.compliance`, `syncd.service.status.gather_status`) over a journal of
`--changes` changes. `--down` units have nothing listening; `--hanging` units accept the
connection and never answer (the city waits its `timeout`). The city console is the real app
(`syncd.console.city.create_city_app`) over real HTTP, read with `requests` as a browser would.
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
from typing import Any

import requests

from bench.compliance import build
from syncd.city import load_city
from syncd.console.city import create_city_app
from syncd.demo.daemon import free_port
from syncd.domain.compliance import Rules, compliance
from syncd.service.http import WsgiServer
from syncd.service.status import gather_status
from syncd.service.tokens import add_token
from syncd.state.store import StateStore

TODAY = date(2026, 12, 31)


def _answers(changes: int) -> dict[str, Any]:
    """A unit's three answers, computed by syncd's own code over a journal of `changes` changes."""
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{Path(tmp) / 'state.db'}")
        build(store, changes, 50)
        figures = compliance(store, "区审计局", date(2026, 1, 1), TODAY, TODAY, Rules(), None).as_json()
        status = gather_status(store, TODAY, None)
        store.close()
    return {"healthz": {"status": "ok", "last_success": "2026-12-31T02:30:00+00:00", "last_outcome": "success"},
            "compliance": figures, "status": status}


def _serve_units(port: int, latency: float, changes: int, ready: Any) -> None:
    """The stand-in units, in a process of their own (as they would be on their own servers)."""
    from flask import Flask

    answers = _answers(changes)
    app = Flask("units")

    @app.get("/u<int:number>/<path:what>")
    def answer(number: int, what: str) -> Any:
        time.sleep(latency)
        return answers["healthz" if what == "healthz" else what.rsplit("/", 1)[-1]]

    server = WsgiServer(app, "127.0.0.1", port, threads=32, ident="bench-units").start()
    ready.put(server.port)
    threading.Event().wait()


def _hanging_listener() -> tuple[socket.socket, int]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    return listener, int(listener.getsockname()[1])


def _csrf(text: str) -> str:
    return text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--unit-latency", type=float, default=0.2, help="seconds each unit takes per answer")
    parser.add_argument("--changes", type=int, default=2000, help="a unit's changes in the year")
    parser.add_argument("--down", type=int, default=0, help="units with nothing listening")
    parser.add_argument("--hanging", type=int, default=0, help="units that never answer")
    parser.add_argument("--timeout", type=float, default=10, help="city.toml timeout")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    ready: Any = multiprocessing.get_context("spawn").Queue()
    units_process = multiprocessing.get_context("spawn").Process(
        target=_serve_units, args=(0, args.unit_latency, args.changes, ready), daemon=True)
    units_process.start()
    units_port = ready.get(timeout=120)
    listener, hanging_port = _hanging_listener()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "unit.token").write_text("bench-token\n")
        token = add_token(root / "city-tokens.toml", "bench", "auditor")
        lines = [f"timeout = {args.timeout}\ntokens_file = \"city-tokens.toml\"\nrefresh_seconds = 60\n"]
        for number in range(args.units):
            if number < args.down:
                url = f"http://127.0.0.1:{free_port()}"
            elif number < args.down + args.hanging:
                url = f"http://127.0.0.1:{hanging_port}"
            else:
                url = f"http://127.0.0.1:{units_port}/u{number}"
            lines.append(f'[[unit]]\nname = "单位{number:02d}"\nurl = "{url}"\ntoken_file = "unit.token"\n')
        (root / "city.toml").write_text("".join(lines), encoding="utf-8")
        config = load_city(root / "city.toml")
        server = WsgiServer(create_city_app(config, b"b" * 32), "127.0.0.1", 0, ident="bench-city").start()
        base = f"http://127.0.0.1:{server.port}"
        browser = requests.Session()
        browser.post(f"{base}/signin", data={"csrf_token": _csrf(browser.get(f"{base}/signin").text), "token": token})
        cold, warm, workbook = [], [], []
        for repeat in range(args.repeat):
            period = f"from=2026-01-{repeat + 1:02d}&to=2026-12-31"  # a new period: nothing cached for it
            started = time.perf_counter()
            page = browser.get(f"{base}/?{period}", timeout=300)
            cold.append(time.perf_counter() - started)
            assert page.status_code == 200 and page.text.count('<tr id="unit-') == args.units
            started = time.perf_counter()
            browser.get(f"{base}/?{period}", timeout=300)
            warm.append(time.perf_counter() - started)
        for _ in range(args.repeat):
            started = time.perf_counter()
            answer = browser.get(f"{base}/assessment.xlsx?year=2026", timeout=300)
            workbook.append(time.perf_counter() - started)
            assert answer.status_code == 200
        server.stop()
    listener.close()
    units_process.terminate()
    print(f"units {args.units} (down {args.down}, hanging {args.hanging}), unit latency {args.unit_latency:g} s, "
          f"timeout {args.timeout:g} s, {args.changes} changes a unit")
    for name, times in (("overview, cold (every unit read)", cold), ("overview, warm (the reading reused)", warm),
                        ("assessment XLSX (warm after the first)", workbook)):
        print(f"  {name:42s} median {statistics.median(times) * 1000:8.1f} ms   max {max(times) * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

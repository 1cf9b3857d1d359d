"""A real console to test: the daemon's API app with the console on it, over real state and the simulator.

The console is built exactly as the daemon builds it (see `ConsoleDaemonControl` and `serve`): a
real `Daemon` object for its store, engine and `DaemonControl` (not started: no scheduler, no
signals), a `SnapshotCache` reading HR with the real source, `create_api` + `register_console`,
and waitress on a free port. Queued resyncs are carried out by `ResyncWorker`, a loop around
`syncd.service.resyncs.carry_out` — the function the daemon's poller calls — on the daemon's engine.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from syncd.config import Config, load
from syncd.console import ConsoleData, SnapshotCache, read_directory_person, read_hr, register_console, server_error
from syncd.console.auth import SESSION_LIFETIME, SignInLimiter
from syncd.domain.model import Change, ChangeKind
from syncd.domain.target import DirectoryEntry
from syncd.engine.cycle import CycleResult
from syncd.service.api import create_api
from syncd.service.daemon import Daemon, DaemonControl
from syncd.service.http import WsgiServer
from syncd.service.resyncs import carry_out
from syncd.service.tokens import TokenStore, add_token
from syncd.state.store import StateStore
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER, config_toml, write_csv
from tests.service.daemon_harness import free_port
from tests.sim_env import directory_posts, run_one_cycle

TENANT = SimTenant(tenant_id=196729, app_key="console-key", app_secret="console-secret",
                   root_code="GO_" + "0" * 31 + "3", admin_token="console-admin")
SECRET_KEY = b"k" * 32


class ConsoleDaemonControl(DaemonControl):
    """`DaemonControl` with the method the console adds to the Control protocol (the daemon's lines)."""

    def directory_person(self, employee_id: str) -> DirectoryEntry | None:
        """A live read of one linked person, beside any running cycle."""
        return read_directory_person(self._daemon.engine.target, self._daemon.store, employee_id)


class ResyncWorker:
    """Carries out queued resyncs as the daemon's poller does, then has the HR snapshot re-read."""

    def __init__(self, daemon: Daemon, snapshots: SnapshotCache) -> None:
        self._daemon = daemon
        self._snapshots = snapshots
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-resyncs", daemon=True)

    def start(self) -> ResyncWorker:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            request = self._daemon.store.claim_resync()
            if request is None:
                continue
            engine = self._daemon.engine
            if carry_out(request, engine.config, engine.source, engine.target, self._daemon.store) is not None:
                self._snapshots.refresh_soon()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Bureau:
    """HR's export, the simulated directory, the configuration, and the tokens that may sign in."""

    root: Path
    server: SimulatorServer
    config_path: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        return load(self.config_path)

    @property
    def admin(self) -> SimAdmin:
        return SimAdmin(self.server.base_url, TENANT.admin_token)

    def write_export(self, people: list[dict[str, str]] | None = None,
                     departments: list[dict[str, str]] | None = None) -> None:
        write_csv(self.root / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS if departments is None else departments)
        write_csv(self.root / "people.csv", PEOPLE_HEADER, PEOPLE if people is None else people)

    def edit_people(self, **posts: str) -> None:
        """Give people a new 职务 in HR's export (工号=职务)."""
        path = self.root / "people.csv"
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["职务"] = posts.get(row["工号"], row["职务"])
        write_csv(path, PEOPLE_HEADER, rows)

    def cycle(self, **options: Any) -> CycleResult:
        """One real cycle against the simulator, as `syncd sync` runs it."""
        return run_one_cycle(self.config, **options)

    def set_safety(self, **safety: str) -> None:
        text = self.config_path.read_text(encoding="utf-8")
        for key, value in safety.items():
            text = text.replace(f'{key} = "apply"', f'{key} = "{value}"')
        self.config_path.write_text(text, encoding="utf-8")

    def posts(self) -> dict[str, str | None]:
        """Employee code → main position's post, as the directory holds it."""
        return directory_posts(self.admin)


@contextmanager
def bureau_at(root: Path) -> Iterator[Bureau]:
    """The small bureau of tests/conftest.py, synced once into the simulator, with an hr and an operator token."""
    with SimulatorServer(TENANT) as server:
        config_path = root / "syncd.toml"
        config_path.write_text(config_toml(
            server.base_url, TENANT.root_code, TENANT.app_key, TENANT.app_secret, TENANT.tenant_id,
            state={"url": f"sqlite:///{root / 'state.db'}"}, target={"rate_limit": 500, "retry_attempts": 1},
            safety={"structure_changes": "apply"}, api={"listen": "127.0.0.1:0", "tokens_file": "tokens.toml"},
            logging={"format": "json", "level": "warning"}), encoding="utf-8")
        bureau = Bureau(root, server, config_path)
        bureau.write_export()
        bureau.tokens = {"hr": add_token(root / "tokens.toml", "hr-portal", "hr"),
                         "operator": add_token(root / "tokens.toml", "duty-operator", "operator")}
        assert bureau.cycle().outcome == "success"
        yield bureau


@dataclass
class Console:
    """The daemon's app with the console, its parts, and (when served) its address."""

    app: Flask
    daemon: Daemon
    snapshots: SnapshotCache
    data: ConsoleData
    base_url: str = ""


def build_console(bureau: Bureau, *, clock: Callable[[], float] = time.time,
                  lifetime: timedelta = SESSION_LIFETIME, limiter: SignInLimiter | None = None) -> Console:
    """The console as the daemon builds it (the lines `Daemon._serve_api` gets), not yet served."""
    daemon = Daemon(bureau.config_path, bureau.config)
    config = daemon.engine.config
    snapshots = SnapshotCache(lambda: read_hr(config))
    data = ConsoleData(daemon.store, snapshots, root_department=config.unit.root_department,
                       root_organization_code=config.unit.root_organization_code, today=daemon.today,
                       next_cycle=daemon.next_cycle, code_tables=config.source.code_tables,
                       safety=lambda: daemon.engine.config.safety)
    app = create_api(ConsoleDaemonControl(daemon), TokenStore(config.api.tokens_file), daemon.metrics)
    register_console(app, data, SECRET_KEY, tokens_file=config.api.tokens_file, unit_name=config.unit.name,
                     timezone=config.schedule.timezone, clock=clock, lifetime=lifetime, limiter=limiter)
    return Console(app, daemon, snapshots, data)


@contextmanager
def serve(console: Console) -> Iterator[Console]:
    """Serve the console with waitress on a free loopback port, and carry out queued resyncs meanwhile."""
    server = WsgiServer(console.app, "127.0.0.1", 0, threads=4, ident="syncd-console-test",
                        error_answer=server_error).start()
    worker = ResyncWorker(console.daemon, console.snapshots).start()
    console.base_url = f"http://127.0.0.1:{server.port}"
    try:
        yield console
    finally:
        worker.stop()
        server.stop()
        console.snapshots.wait_refreshed(10)
        console.daemon.engine.close()
        console.daemon.store.close()


# -- the city bureau's view: several units' consoles served at once -------------------------------


@dataclass
class City:
    """city.toml over served units, and a token that may sign in to the city console."""

    config_path: Path
    token: str
    urls: dict[str, str]


def _overdue_change(bureau: Bureau) -> None:
    """A join HR made ten days ago that the unit's latest run still could not apply."""
    store = StateStore(bureau.config.state.url)
    try:
        run_id = store.start_run("schedule", "incremental", dry_run=False)
        detected = datetime.now(UTC) - timedelta(days=10)
        [(entry, _)] = store.journal_plan(run_id, [Change(ChangeKind.JOIN, "Z000001")], detected,
                                          (detected + timedelta(days=3)).date())
        store.mark_failed(entry, "unavailable", "-")
        store.finish_run(run_id, "partial", {})
    finally:
        store.close()


@contextmanager
def city_of_four(root: Path) -> Iterator[City]:
    """city.toml over A区 (healthy), C区 (nothing listens), B区 (an overdue change) and D区 (a wrong token).

    A and B are real units' API apps (the console's, with its auditor token) served over HTTP, each
    over its own bureau synced into its own simulator; the city console's tokens are `city-tokens.toml`.
    """
    with ExitStack() as stack:
        urls = {}
        for name in ("a", "b"):
            (root / name).mkdir()
            bureau = stack.enter_context(bureau_at(root / name))
            (root / f"{name}.token").write_text(add_token(root / name / "tokens.toml", "city-bureau", "auditor") + "\n")
            if name == "b":
                _overdue_change(bureau)
            console: Console = stack.enter_context(serve(build_console(bureau)))
            urls[name] = console.base_url
        (root / "wrong.token").write_text("not-a-token-of-that-unit\n")
        token = add_token(root / "city-tokens.toml", "city-admin", "auditor")
        (root / "city.toml").write_text(f"""timeout = 5
title = "郑州市审计局（市局）"
listen = "127.0.0.1:{free_port()}"
tokens_file = "city-tokens.toml"
refresh_seconds = 0
[[unit]]
name = "A区"
url = "{urls['a']}"
token_file = "a.token"
[[unit]]
name = "C区"
url = "http://127.0.0.1:{free_port()}"
token_file = "a.token"
[[unit]]
name = "B区"
url = "{urls['b']}/"
token_file = "b.token"
[[unit]]
name = "D区"
url = "{urls['a']}"
token_file = "wrong.token"
""", encoding="utf-8")
        yield City(root / "city.toml", token, urls)

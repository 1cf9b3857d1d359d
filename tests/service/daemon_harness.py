"""`syncd run` as a real process against the simulator: start it, read its JSON log, call its API, signal it.

The daemon's tests drive the service the way systemd and an operator do: a configuration file, a
process, signals, HTTP and the log on stderr. Nothing of the daemon runs in the test process; the
simulator does, so the tests can read and steer the directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from connectors.zzd.simulator import SimAdmin, SimTenant, SimulatorServer
from syncd.service.tokens import add_token
from syncd.state.models import JournalEntry, Run
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER, config_toml, write_csv
from tests.projection import Projection, directory_projection

TENANT = SimTenant(tenant_id=196729, app_key="daemon-key", app_secret="daemon-secret",
                   root_code="GO_" + "0" * 31 + "7", admin_token="daemon-admin")
POLL = 0.05  # seconds between looks at a log, an API or the directory
STARTS_WITHIN = 15.0  # a daemon's API answers within this of its start (imports, migrations)

Event = dict[str, Any]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def merge(base: Mapping[str, Mapping[str, object]], overrides: Mapping[str, Mapping[str, object]]
          ) -> dict[str, dict[str, object]]:
    """Configuration sections with `overrides` laid over `base`, key by key."""
    merged = {name: dict(values) for name, values in base.items()}
    for name, values in overrides.items():
        merged.setdefault(name, {}).update(values)
    return merged


def people_with(employee_id: str, **fields: str) -> list[dict[str, str]]:
    """The small bureau's people with one person's fields changed."""
    return [{**p, **fields} if p["工号"] == employee_id else dict(p) for p in PEOPLE]


def mobile_of(employee_id: str) -> str:
    """The mobile of a person of the small bureau (the directory projection is keyed by mobile)."""
    return next(p["手机号"] for p in PEOPLE if p["工号"] == employee_id)


def post_in(directory: Projection, employee_id: str) -> str:
    """A person's 职务 as the directory holds it."""
    return str(directory["people"][mobile_of(employee_id)][3])


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call `check` until it returns something truthy, which is returned; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(POLL)


class DaemonProcess:
    """One `syncd run`: its configuration, its log file (stderr, JSON lines) and its API."""

    def __init__(self, name: str, config: Path, port: int, tokens: Mapping[str, str], piped: bool = False) -> None:
        self.name = name
        self.config = config
        self.port = port
        self.tokens = dict(tokens)
        self.log_path = config.with_suffix(".log")
        self.api = f"http://127.0.0.1:{port}"
        self._http = requests.Session()
        command = [sys.executable, "-m", "syncd.cli", "run", "--config", str(config)]
        if piped:
            # The log through a pipe the test copies to the file: a file-size limit on the daemon
            # (RLIMIT_FSIZE) then limits its state, not its log.
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, cwd=config.parent)
            threading.Thread(target=self._copy_log, name=f"{name}-log", daemon=True).start()
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            cwd=config.parent)

    def _copy_log(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("ab", buffering=0) as log:
            for line in self.process.stdout:
                log.write(line)

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.process.pid

    # -- the log -----------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the daemon wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[Event]:
        """The JSON log lines so far, in order (anything else, such as a traceback, is left out)."""
        events = []
        for line in self.log_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def mark(self) -> int:
        """A place in the log: `wait_for(..., after=mark)` looks only at what comes after it."""
        return len(self.events())

    def find(self, event: str, after: int = 0, **fields: Any) -> list[Event]:
        """The log lines of `event` after `after` whose keys have these values."""
        return [e for e in self.events()[after:]
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, event: str, timeout: float = 10.0, after: int = 0, **fields: Any) -> Event:
        """The first log line of `event` (after `after`) with these fields; fails when the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(event, after, **fields)
            if found:
                return found[0]
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) before logging {event} "
                                     f"{fields or ''}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} logged no {event} {fields or ''} within {timeout:g} s:\n"
                                     f"{self.tail()}")
            time.sleep(POLL)

    def tail(self, lines: int = 40) -> str:
        """The end of the log, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- the API -----------------------------------------------------------------------------

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """One request to the daemon's API; `token` is a role ("hr", "operator") or a literal token."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        return self._http.request(method, self.api + path, headers=headers, timeout=5, **kwargs)

    def wait_serving(self, timeout: float = STARTS_WITHIN) -> None:
        """Until the API answers `/healthz` (with any status)."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) while starting:\n{self.tail()}")
            try:
                self.call("GET", "/healthz")
            except requests.ConnectionError:
                return False
            return True

        poll(answers, timeout, f"{self.name} serves its API")

    # -- the process -------------------------------------------------------------------------

    def send(self, sig: signal.Signals) -> None:
        """Send a signal to the daemon."""
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, waiting at most `timeout` seconds for it."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running {timeout:g} s later:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL, and reap it (teardown, or a node's sudden death)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._http.close()


class Bureau:
    """A unit's HR export, the simulated directory it syncs to, API tokens, and the daemons started on them."""

    def __init__(self, root: Path, server: SimulatorServer, state_url: str) -> None:
        self.root = root
        self.server = server
        self.state_url = state_url
        self.admin = SimAdmin(server.base_url, TENANT.admin_token)
        self.tokens = {"hr": add_token(root / "tokens.toml", "hr-portal", "hr"),
                       "operator": add_token(root / "tokens.toml", "duty-operator", "operator")}
        self.daemons: list[DaemonProcess] = []
        self._state: Engine | None = None
        self.write_export()

    # -- HR ----------------------------------------------------------------------------------

    def write_export(self, people: list[dict[str, str]] | None = None,
                     departments: list[dict[str, str]] | None = None, directory: Path | None = None) -> None:
        """Write HR's departments.csv and people.csv (default: the small bureau of tests/conftest.py)."""
        where = directory or self.root
        where.mkdir(parents=True, exist_ok=True)
        write_csv(where / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS if departments is None else departments)
        write_csv(where / "people.csv", PEOPLE_HEADER, PEOPLE if people is None else people)

    # -- configuration and daemons -------------------------------------------------------------

    def config_text(self, port: int, extra: str = "", **sections: dict[str, object]) -> str:
        """A daemon's configuration: the simulator, this state, the API on `port`, JSON logs at debug;
        `extra` is TOML appended as it is (arrays of tables, sub-sections)."""
        defaults: dict[str, dict[str, object]] = {
            "unit": {"operator": "syncd-test"},
            "target": {"rate_limit": 1000, "concurrency": 2},
            "state": {"url": self.state_url},
            "safety": {"structure_changes": "apply", "max_deactivation_share": 1.0, "max_shrink_share": 1.0},
            "schedule": {"incremental_every": "2s"},
            "api": {"listen": f"127.0.0.1:{port}", "tokens_file": "tokens.toml"},
            "logging": {"format": "json", "level": "debug"},
        }
        return config_toml(self.server.base_url, TENANT.root_code, TENANT.app_key, TENANT.app_secret,
                           TENANT.tenant_id, **merge(defaults, sections)) + extra

    def write_config(self, daemon: DaemonProcess, **sections: dict[str, object]) -> None:
        """Rewrite a running daemon's configuration file (same API port), for a reload."""
        daemon.config.write_text(self.config_text(daemon.port, **sections), encoding="utf-8")

    def start(self, wait: bool = True, extra: str = "", piped: bool = False,
              **sections: dict[str, object]) -> DaemonProcess:
        """Start `syncd run` with its own configuration file and API port; by default wait until it serves.
        `piped`: its log goes through a pipe (see DaemonProcess)."""
        name = f"daemon-{len(self.daemons) + 1}"
        port = free_port()
        config = self.root / f"{name}.toml"
        config.write_text(self.config_text(port, extra, **sections), encoding="utf-8")
        daemon = DaemonProcess(name, config, port, self.tokens, piped)
        self.daemons.append(daemon)
        if wait:
            daemon.wait_serving()
        return daemon

    def leader_and_standby(self) -> tuple[DaemonProcess, DaemonProcess]:
        """Start two daemons on this (PostgreSQL) state: (leader, standby) once each knows its role."""
        first = self.start()
        second = self.start()  # started once the first has migrated the empty schema

        def roles() -> tuple[DaemonProcess, DaemonProcess] | None:
            leading = [d for d in (first, second) if d.find("daemon.leading")]
            if not leading:
                return None
            [leader] = leading
            return leader, second if leader is first else first

        leader, standby = poll(roles, 15, "one daemon leading")
        standby.wait_for("daemon.standby")
        return leader, standby

    def cli(self, *args: str, config: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`syncd --config … ARGS` as its own process."""
        config = config or (self.daemons[-1].config if self.daemons else self._cli_config())
        return subprocess.run([sys.executable, "-m", "syncd.cli", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False)

    def _cli_config(self) -> Path:
        config = self.root / "cli.toml"
        if not config.exists():
            config.write_text(self.config_text(free_port()), encoding="utf-8")
        return config

    def close(self) -> None:
        """Kill every daemon still running and let go of the state."""
        for daemon in self.daemons:
            daemon.kill()
        if self._state is not None:
            self._state.dispose()

    # -- what the directory and the state hold --------------------------------------------------

    def directory(self) -> Projection:
        """The directory as HR would describe it (fails on two people with one mobile)."""
        return directory_projection(self.admin.directory())

    def wait_directory(self, check: Callable[[Projection], bool], timeout: float, what: str) -> Projection:
        """The directory once `check` holds of it."""

        def ready() -> Projection | None:
            directory = self.directory()
            return directory if check(directory) else None

        found: Projection = poll(ready, timeout, what)
        return found

    def state(self) -> Engine:
        """The daemons' state database, read beside them."""
        if self._state is None:
            self._state = create_engine(self.state_url)
        return self._state

    def runs(self) -> list[Run]:
        """Every run recorded, oldest first."""
        with Session(self.state()) as session:
            return list(session.scalars(select(Run).order_by(Run.started_at)))

    def run_outcomes(self) -> list[str | None]:
        """How every run ended, oldest first."""
        return [run.outcome for run in self.runs()]

    def journal(self, run_id: str | None = None) -> list[JournalEntry]:
        """The journal entries of one run (or all), in order."""
        query = select(JournalEntry).order_by(JournalEntry.id)
        if run_id is not None:
            query = query.where(JournalEntry.run_id == run_id)
        with Session(self.state()) as session:
            return list(session.scalars(query))


@contextmanager
def bureau_on(root: Path, state_url: str) -> Iterator[Bureau]:
    """A simulator serving TENANT, and a bureau syncing to it from `root`; every daemon killed at the end."""
    with SimulatorServer(TENANT) as server:
        bureau = Bureau(root, server, state_url)
        try:
            yield bureau
        finally:
            bureau.close()

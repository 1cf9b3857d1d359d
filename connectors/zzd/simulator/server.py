"""Serving the simulator under waitress: in a background thread for tests, or blocking for the CLI."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import waitress
from waitress import wasyncore
from waitress.server import create_server

from connectors.zzd.simulator.app import EXTENSION, Simulator, create_app
from connectors.zzd.simulator.tenant import SimTenant

POLL_SECONDS = 0.05


class SimulatorServer:
    """The simulator on a loopback port in a background thread; a context manager.

    `port=0` picks a free port; `base_url` is known once started.
    """

    def __init__(self, tenant: SimTenant, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self.tenant = tenant
        self.app = create_app(tenant)
        self._host = host
        self._port = port
        self._threads = threads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.base_url = ""

    @property
    def simulator(self) -> Simulator:
        """The state behind the app (directory, counters, faults), for tests that seed or inspect directly."""
        return self.app.extensions[EXTENSION]

    def start(self) -> SimulatorServer:
        """Bind and start serving in a daemon thread."""
        server = create_server(self.app, host=self._host, port=self._port, threads=self._threads,
                               ident="zzd-simulator", clear_untrusted_proxy_headers=True)
        self._server = server
        self._stopping.clear()
        self.base_url = f"http://{self._host}:{server.effective_port}"
        self._thread = threading.Thread(target=self._loop, args=(server,), name="zzd-simulator", daemon=True)
        self._thread.start()
        return self

    def _loop(self, server: Any) -> None:
        # waitress's own run() loops until its socket map is empty; polling in short rounds lets
        # stop() end the loop first and then close every socket from this side, with no socket
        # closed under a running poll.
        while not self._stopping.is_set():
            wasyncore.loop(timeout=POLL_SECONDS, use_poll=True, map=server._map, count=1)

    def stop(self) -> None:
        """Stop serving: end the loop, let the workers finish, close every socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(tenant: SimTenant, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the simulator until interrupted (`syncd simulator --port`)."""
    waitress.serve(create_app(tenant), host=host, port=port, ident="zzd-simulator")

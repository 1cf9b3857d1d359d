"""Serving the simulator under waitress: in a background thread for tests, or blocking for the CLI."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import waitress
from waitress.server import create_server

from connectors.zzd.simulator.app import EXTENSION, Simulator, create_app
from connectors.zzd.simulator.tenant import SimTenant


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
        self.base_url = f"http://{self._host}:{server.effective_port}"
        self._thread = threading.Thread(target=server.run, name="zzd-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        server, self._server = self._server, None
        if server is None:
            return

        def close_all() -> None:
            # Runs inside the server's loop thread (via the trigger), so no socket is closed under its feet;
            # the loop ends when its map is empty.
            for channel in list(server._map.values()):
                channel.close()

        server.trigger.pull_trigger(close_all)
        if self._thread is not None:
            self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(tenant: SimTenant, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the simulator until interrupted (`syncd simulator --port`)."""
    waitress.serve(create_app(tenant), host=host, port=port, ident="zzd-simulator")

"""Serving the simulator under waitress: in a background thread for tests, or blocking for the CLI."""

from __future__ import annotations

from types import TracebackType

import waitress

from connectors.zzd.simulator.app import EXTENSION, Simulator, create_app
from connectors.zzd.simulator.tenant import SimTenant
from syncd.service.http import WsgiServer


class SimulatorServer:
    """The simulator on a loopback port in a background thread; a context manager.

    `port=0` picks a free port; `base_url` is known once started.
    """

    def __init__(self, tenant: SimTenant, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self.tenant = tenant
        self.app = create_app(tenant)
        self._host = host
        self._server = WsgiServer(self.app, host, port, threads=threads, ident="zzd-simulator")
        self.base_url = ""

    @property
    def simulator(self) -> Simulator:
        """The state behind the app (directory, counters, faults), for tests that seed or inspect directly."""
        return self.app.extensions[EXTENSION]

    def start(self) -> SimulatorServer:
        """Bind and start serving in a daemon thread."""
        self._server.start()
        self.base_url = f"http://{self._host}:{self._server.port}"
        return self

    def stop(self) -> None:
        """Stop serving: end the loop, let the workers finish, close every socket."""
        self._server.stop()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(tenant: SimTenant, host: str = "127.0.0.1", port: int = 8090) -> None:
    """Serve the simulator until interrupted (`syncd simulator --port`)."""
    waitress.serve(create_app(tenant), host=host, port=port, ident="zzd-simulator")

"""A WSGI app served by waitress on a background thread, stoppable from the side that started it."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

POLL_SECONDS = 0.05


def split_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:8480` / `[::1]:8480` → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether an address only this machine can reach (`localhost` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WsgiServer:
    """waitress on `host:port` in a daemon thread; `port=0` picks a free port (`port` tells it once started)."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 4, ident: str = "syncd") -> None:
        self._app = app
        self._host = host
        self._port = port
        self._threads = threads
        self._ident = ident
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = port

    def start(self) -> WsgiServer:
        """Bind (raising OSError when the address is taken) and serve in a daemon thread."""
        server = create_server(self._app, host=self._host, port=self._port, threads=self._threads,
                               ident=self._ident, clear_untrusted_proxy_headers=True)
        self._server = server
        self.port = server.effective_port
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, args=(server,), name=f"{self._ident}-http", daemon=True)
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

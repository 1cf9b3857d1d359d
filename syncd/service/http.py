"""A WSGI app served by waitress on a background thread, stoppable from the side that started it.

Hardened against a neighbour who would silence it (issue 18): waitress reads every request
asynchronously, so slow or idle clients hold only a connection, never a worker thread. What they
could exhaust are the connections, so the limit is high (`CONNECTION_LIMIT`, the process's file
limit raised to match), an idle connection is closed after `IDLE_TIMEOUT`, and a request whose
headers and body have not all arrived `REQUEST_DEADLINE` after its first byte is dropped however
steadily it trickles (waitress's own timeout restarts at every byte). A body larger than the app
accepts is refused from its Content-Length, before a byte of it is buffered or spooled to disk.
waitress's own error answers (413, 400, 431…) are JSON like the app's, or whatever the server's
`error_answer` makes of them (the console's Chinese page for its own paths).
"""

from __future__ import annotations

import ipaddress
import json
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.05
MAX_BODY_BYTES = 64 * 1024  # the largest request body the API and the console take
CONNECTION_LIMIT = 4000  # open connections; past it waitress stops accepting until some close
IDLE_TIMEOUT = 30  # seconds a connection may wait between requests
REQUEST_DEADLINE = 10.0  # seconds from a request's first byte to its last
SWEEP_SECONDS = 1  # how often the deadlines are checked
_SPARE_FILES = 256  # file descriptors beside the connections: the state, the logs, the directory's sessions


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


ErrorAnswer = Callable[[str | None, int, str, str], tuple[list[tuple[str, str]], bytes]]
"""waitress's own error → (headers, body), from the request's path (None when unread), code, reason and detail."""


def json_error(path: str | None, code: int, reason: str, detail: str) -> tuple[list[tuple[str, str]], bytes]:
    """waitress's own error as the API's JSON error."""
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": detail}).encode()
    return [("Content-Type", "application/json")], body


class _ErrorTask(ErrorTask):
    """waitress's own error answer (a body too large, a malformed request), made by the server's `error_answer`."""

    def execute(self) -> None:
        error = self.request.error
        answer: ErrorAnswer = getattr(self.channel.server, "error_answer", json_error)
        headers, body = answer(getattr(self.request, "path", None), error.code, error.reason, error.body)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    """waitress's connection, remembering since when the request it is reading has been arriving."""

    error_task_class = _ErrorTask
    reading_since: float | None = None  # monotonic time of the unfinished request's first byte

    def received(self, data: bytes) -> bool:
        """Read as waitress does; then note whether a request is left half-read, and since when."""
        taken = bool(super().received(data))
        if self.request is None:
            self.reading_since = None
        elif self.reading_since is None:
            self.reading_since = time.monotonic()
        return taken


class _Server(TcpWSGIServer):
    """waitress's TCP server with the request deadline applied at each sweep."""

    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        """Close idle connections (waitress) and those whose request is still arriving past the deadline."""
        super().maintenance(now)
        cutoff = time.monotonic() - REQUEST_DEADLINE
        dropped = 0
        for channel in list(self.active_channels.values()):
            since = getattr(channel, "reading_since", None)
            if since is not None and since < cutoff and not channel.will_close:
                channel.will_close = True
                dropped += 1
        if dropped:
            log.debug("http.slow_requests_dropped", count=dropped, deadline_s=REQUEST_DEADLINE)


def _raise_file_limit(wanted: int) -> int:
    """Raise the soft limit of open files towards `wanted` (within the hard limit); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return wanted if soft == resource.RLIM_INFINITY else soft


class WsgiServer:
    """waitress on `host:port` in a daemon thread; `port=0` picks a free port (`port` tells it once started).

    `max_body` is the largest request body accepted (a larger one is answered 413 from its headers);
    `error_answer` makes the answers waitress gives itself, before the app sees a request (default JSON).
    """

    def __init__(self, app: Any, host: str, port: int, threads: int = 4, ident: str = "syncd",
                 max_body: int = MAX_BODY_BYTES, error_answer: ErrorAnswer = json_error) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._threads = threads
        self._ident = ident
        self._max_body = max_body
        self._error_answer = error_answer
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = port

    def start(self) -> WsgiServer:
        """Bind (raising OSError when the address is taken) and serve in a daemon thread."""
        files = _raise_file_limit(CONNECTION_LIMIT + _SPARE_FILES)
        limit = min(CONNECTION_LIMIT, max(files - _SPARE_FILES, 100))
        if limit < CONNECTION_LIMIT:
            log.warning("http.connection_limit_lowered", limit=limit, open_files=files,
                        advice=f"raise LimitNOFILE to {CONNECTION_LIMIT + _SPARE_FILES}")
        server = _Server(self._app, map={}, host=self._host, port=self._port, threads=self._threads,
                         ident=self._ident, clear_untrusted_proxy_headers=True, connection_limit=limit,
                         channel_timeout=IDLE_TIMEOUT, cleanup_interval=SWEEP_SECONDS,
                         # waitress refuses a Content-Length >= this, so bodies of max_body bytes pass
                         max_request_body_size=self._max_body + 1)
        server.error_answer = self._error_answer
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

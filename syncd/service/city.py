"""`syncd city`: the city bureau's console served until SIGTERM or Ctrl-C (systemd: `syncd-city.service`)."""

from __future__ import annotations

import signal
import threading

import structlog

from syncd.city import CityConfig
from syncd.console.city import create_city_app
from syncd.console.web import new_secret_key, server_error_page
from syncd.service.http import WsgiServer, is_loopback, json_error, split_listen
from syncd.version import __version__

log = structlog.get_logger(__name__)


def city_server_error(path: str | None, code: int, reason: str, detail: str) -> tuple[list[tuple[str, str]], bytes]:
    """waitress's own refusal of a request (a form over 64 KiB): the Chinese page, JSON for `/healthz`."""
    if path is None or path == "/healthz":
        return json_error(path, code, reason, detail)
    return server_error_page(path, code, reason, detail)


def serve_city(config: CityConfig, ready: threading.Event | None = None) -> int:
    """Serve the city console on `config.listen` until SIGTERM/SIGINT; the exit code (0).

    OSError when the address is taken. The session key is new at each start, as the unit console's.
    """
    host, port = split_listen(config.listen)
    if not is_loopback(host) and not config.secure_cookies:
        log.warning("city.listen_not_loopback", listen=config.listen,
                    advice="put TLS in front (a reverse proxy) and set secure_cookies = true")
    app = create_city_app(config, new_secret_key(), warm=True)  # the first visitor finds the units read
    # A first view of a new period or a unit's page waits on the units' network: threads enough that a
    # few such views never hold the others' pages (the work is I/O, not CPU).
    server = WsgiServer(app, host, port, threads=16, ident="syncd-city", error_answer=city_server_error).start()
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("city.signal", signal=signal.Signals(signum).name)
        stop.set()

    previous = {number: signal.signal(number, _stop) for number in (signal.SIGTERM, signal.SIGINT)}
    log.info("city.started", version=__version__, listen=f"{host}:{server.port}", units=len(config.units),
             tokens_file=str(config.tokens_file))
    try:
        if ready is not None:
            ready.set()
        while not stop.wait(1):
            pass
    finally:
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    log.info("city.stopped")
    return 0

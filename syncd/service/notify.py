"""systemd's notify protocol (sd_notify) in plain Python: readiness, status, watchdog, reload, stop.

The protocol is a newline-separated `KEY=value` datagram sent to the AF_UNIX socket named by
`$NOTIFY_SOCKET`, so no libsystemd binding is needed. See sd_notify(3).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

# A full receive queue on PID 1's side would block a plain send for as long as PID 1 is busy; the
# daemon must keep running its cycles, so a notification gives up after this long instead.
SEND_TIMEOUT = 2.0


def _socket_address(value: str) -> str | None:
    """The address to send to: a filesystem path, or an abstract name (`@name` becomes `\\0name`)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None  # unset, or a transport this module does not speak (e.g. `vsock:` from systemd ≥ 253)


def _one_line(text: str) -> str:
    """`text` on one line: a newline in a status would start a new variable (`…\\nREADY=1`)."""
    return " ".join(text.splitlines())


class SystemdNotifier:
    """Tells systemd how the service is doing; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _socket_address(raw)
        if raw and self._address is None:
            log.warning("systemd.notify_socket_unsupported", scheme=raw.split(":", 1)[0])
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")

    @property
    def enabled(self) -> bool:
        """Whether there is a notify socket to talk to."""
        return self._address is not None

    def ready(self, status: str) -> None:
        """Startup finished (`READY=1`), with the status line `systemctl status` shows."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """Replace the status line `systemctl status` shows."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Keep-alive ping (`WATCHDOG=1`); systemd restarts the service when pings stop."""
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A configuration reload started; `ready_after_reload` must follow."""
        # Type=notify-reload (systemd ≥ 253) only accepts RELOADING=1 with the monotonic time at
        # which the reload began; older versions and Type=notify ignore the extra variable.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def ready_after_reload(self, status: str | None = None) -> None:
        """The reload finished (`READY=1`), optionally with a new status line."""
        self._send("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def stopping(self) -> None:
        """Shutdown started (`STOPPING=1`)."""
        self._send("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of `WATCHDOG_USEC`), or None when no watchdog is ours."""
        if not self.enabled:
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        # WATCHDOG_PID names the process the watchdog is for; a child that inherited the
        # environment must not ping on the main process's behalf.
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        return usec / 2 / 1_000_000

    def _send(self, message: str) -> None:
        """Send one datagram; a failure is logged, never raised."""
        if self._address is None:
            return
        try:
            # A socket per message: nothing to reconnect after PID 1 re-executes, and safe to call
            # from the scheduler's threads at once.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(message.encode("utf-8", errors="replace"), self._address)
        except OSError as exc:
            # A dead notify socket must not take the service down with it. The event names which
            # notification failed and the error class, never the message text.
            log.warning("systemd.notify_failed", state=message.split("=", 1)[0], error=type(exc).__name__)

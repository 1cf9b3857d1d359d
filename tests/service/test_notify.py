"""SystemdNotifier against real AF_UNIX datagram sockets standing in for systemd's notify socket."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.service.notify import SystemdNotifier


class NotifySocket:
    """A bound datagram socket and the NOTIFY_SOCKET value that names it."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name

    def receive(self) -> str:
        """The next datagram, decoded."""
        return self.sock.recv(4096).decode("utf-8")

    def assert_empty(self) -> None:
        """Fail when a datagram is waiting."""
        self.sock.setblocking(False)
        try:
            with pytest.raises(BlockingIOError):
                self.sock.recv(4096)
        finally:
            self.sock.settimeout(2)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    """A notify socket bound to a path in tmp_path."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        yield NotifySocket(sock, str(path))


@pytest.fixture
def abstract_socket() -> Iterator[NotifySocket]:
    """A notify socket in the Linux abstract namespace, named `@…` as systemd would."""
    name = f"syncd-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        yield NotifySocket(sock, "@" + name)


def test_ready_sends_ready_and_status(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name})

    notifier.ready("Waiting for the first cycle")

    assert notify_socket.receive() == "READY=1\nSTATUS=Waiting for the first cycle"


def test_status_watchdog_and_stopping_send_one_variable_each(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name})

    notifier.status("Cycle r1: 3 changes applied")
    notifier.watchdog()
    notifier.stopping()

    assert notify_socket.receive() == "STATUS=Cycle r1: 3 changes applied"
    assert notify_socket.receive() == "WATCHDOG=1"
    assert notify_socket.receive() == "STOPPING=1"
    notify_socket.assert_empty()


def test_reloading_sends_the_monotonic_time_the_reload_began(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name})

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    match = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", notify_socket.receive())
    assert match is not None
    assert before <= int(match[1]) <= after


def test_ready_after_reload_sends_ready_with_an_optional_status(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name})

    notifier.ready_after_reload()
    notifier.ready_after_reload("Configuration reloaded")

    assert notify_socket.receive() == "READY=1"
    assert notify_socket.receive() == "READY=1\nSTATUS=Configuration reloaded"


def test_a_newline_in_a_status_cannot_inject_a_variable(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name})

    notifier.status("source unreachable\nREADY=1")

    assert notify_socket.receive() == "STATUS=source unreachable READY=1"


def test_an_abstract_namespace_socket_is_reached_through_a_leading_at(abstract_socket: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": abstract_socket.name})

    notifier.ready("up")
    notifier.watchdog()

    assert notifier.enabled
    assert abstract_socket.receive() == "READY=1\nSTATUS=up"
    assert abstract_socket.receive() == "WATCHDOG=1"


def test_without_notify_socket_the_notifier_is_disabled_and_silent() -> None:
    notifier = SystemdNotifier({"WATCHDOG_USEC": "60000000"})

    with capture_logs() as logs:
        notifier.ready("up")
        notifier.status("s")
        notifier.watchdog()
        notifier.reloading()
        notifier.ready_after_reload()
        notifier.stopping()

    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    assert logs == []


def test_the_environment_is_os_environ_by_default(monkeypatch: pytest.MonkeyPatch,
                                                  notify_socket: NotifySocket) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.name)

    SystemdNotifier().stopping()

    assert notify_socket.receive() == "STOPPING=1"


def test_a_dead_notify_socket_logs_the_error_class_and_does_not_raise(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})

    with capture_logs() as logs:
        notifier.ready("up with a secret-looking status")
        notifier.watchdog()

    assert logs == [
        {"event": "systemd.notify_failed", "log_level": "warning", "state": "READY", "error": "FileNotFoundError"},
        {"event": "systemd.notify_failed", "log_level": "warning", "state": "WATCHDOG", "error": "FileNotFoundError"},
    ]


def test_a_socket_nobody_reads_any_more_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})  # the file is left, nothing listens

    with capture_logs() as logs:
        notifier.watchdog()

    assert [(log["event"], log["error"]) for log in logs] == [("systemd.notify_failed", "ConnectionRefusedError")]


def test_an_unsupported_socket_address_disables_the_notifier() -> None:
    with capture_logs() as logs:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})

    assert not notifier.enabled
    assert logs == [{"event": "systemd.notify_socket_unsupported", "log_level": "warning", "scheme": "vsock"}]


@pytest.mark.parametrize(("environ", "expected"), [
    ({"WATCHDOG_USEC": "60000000"}, 30.0),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
    ({"WATCHDOG_USEC": "500000"}, 0.25),
    ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # the watchdog is another process's
    ({}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
], ids=["usec", "own-pid", "sub-second", "other-pid", "unset", "zero", "not-a-number"])
def test_watchdog_interval_is_half_the_watchdog_timeout_when_the_watchdog_is_ours(
        notify_socket: NotifySocket, environ: dict[str, str], expected: float | None) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.name, **environ})

    assert notifier.watchdog_interval() == expected

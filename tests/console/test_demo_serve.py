"""`syncd demo --serve` stopped by SIGTERM stops the daemon it started (no daemon left behind)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited, its parent has not reaped it yet.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


def test_sigterm_to_demo_serve_stops_its_daemon(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "syncd.cli", "demo", "--serve", "--keep", str(tmp_path / "demo")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    assert demo.stdout is not None
    seen: list[str] = []
    daemon_pid = None
    deadline = time.monotonic() + 240
    try:
        for line in demo.stdout:
            seen.append(line)
            found = re.search(r"running as pid (\d+)", line)
            if found:
                daemon_pid = int(found.group(1))
            if "Serving until Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert daemon_pid is not None and _alive(daemon_pid), "".join(seen)[-3000:]
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
        rest = demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
    assert "SIGTERM: the daemon finished what was in flight and stopped" in rest, rest
    stopped = time.monotonic() + 10
    while _alive(daemon_pid) and time.monotonic() < stopped:
        time.sleep(0.1)
    left = _alive(daemon_pid)
    if left:  # do not leave it behind for the next test
        os.kill(daemon_pid, signal.SIGKILL)
    assert not left

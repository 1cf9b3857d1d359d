"""The latest HR snapshot, for the console: what the daemon's last cycle read, or a read on demand.

The console shows HR records and the completeness report from HR's export, and must answer in well
under a second for a hundred thousand people; reading and validating that export takes seconds. So
the daemon hands every snapshot its cycles read to a `SnapshotCache` (`offer`), and the console asks
the cache. Only when nothing was offered yet (the daemon just started) does the first page read the
source itself; after a manual resync, whose cycle's snapshot the daemon does not see, the daemon
asks for a fresh read in the background (`refresh_soon`) and pages show the previous one meanwhile.

Holding the snapshot costs memory (about as much as one cycle's read); the cycle that reads the
next one briefly needs room for both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from syncd.config import Config
from syncd.domain.model import Snapshot

log = structlog.get_logger(__name__)


def read_hr(config: Config) -> Snapshot:
    """Read and validate HR's records with a source of its own (never the one a running cycle uses)."""
    from syncd.engine.cycle import read  # the cycle's read step: the same validation, the same logged rejections
    from syncd.wiring import build_source

    source = build_source(config)
    try:
        return read(config, source)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _is_a_read(snapshot: Snapshot) -> bool:
    """Whether the snapshot came from reading HR (a skipped cycle's is empty)."""
    return bool(snapshot.departments or snapshot.people or snapshot.rejections)


class SnapshotCache:
    """The latest HR snapshot the daemon read; called, it returns it (reading HR when it has none)."""

    def __init__(self, read: Callable[[], Snapshot], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`read` reads HR on demand (`lambda: read_hr(config)`); `clock` stamps each snapshot."""
        self._read = read
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below
        self._reading = threading.Lock()  # one read of HR at a time
        self._snapshot: Snapshot | None = None
        self._read_at: datetime | None = None
        self._refresher: threading.Thread | None = None
        self._listeners: list[Callable[[Snapshot], None]] = []

    def __call__(self) -> Snapshot:
        """The latest snapshot; the first call before any `offer` reads HR (and waits for it)."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._reading:
            if self._snapshot is None:  # nobody offered one while this waited
                self._keep(self._read(), "on_demand")
        assert self._snapshot is not None
        return self._snapshot

    @property
    def latest(self) -> Snapshot | None:
        """The snapshot held now, never reading HR (None before the first)."""
        return self._snapshot

    @property
    def read_at(self) -> datetime | None:
        """When the snapshot now held was read (None before the first)."""
        return self._read_at

    def offer(self, snapshot: Snapshot) -> None:
        """A cycle read HR: keep its snapshot. A skipped cycle's empty snapshot is ignored, and so is an
        incomplete read (the source broke off) while a complete one is held."""
        if not _is_a_read(snapshot):
            return
        current = self._snapshot
        if not snapshot.complete and current is not None and current.complete:
            log.info("console.snapshot_kept", reason="the new read is incomplete")
            return
        self._keep(snapshot, "cycle")

    def refresh_soon(self) -> None:
        """Read HR again in the background (after a resync); pages show the snapshot held until it ends."""
        with self._lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(target=self._refresh, name="syncd-console-refresh", daemon=True)
            self._refresher.start()

    def wait_refreshed(self, timeout: float) -> bool:
        """Wait for a background refresh to end; False when it is still running after `timeout` seconds."""
        refresher = self._refresher
        if refresher is None:
            return True
        refresher.join(timeout)
        return not refresher.is_alive()

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        """Call `listener` with each new snapshot, on a background thread (the console builds its index there)."""
        self._listeners.append(listener)

    def _refresh(self) -> None:
        with self._reading:
            snapshot = self._read()
        self.offer(snapshot)

    def _keep(self, snapshot: Snapshot, how: str) -> None:
        with self._lock:
            self._snapshot, self._read_at = snapshot, self._clock()
        log.debug("console.snapshot", how=how, people=len(snapshot.people), complete=snapshot.complete)
        if self._listeners:
            threading.Thread(target=self._tell, args=(snapshot,), name="syncd-console-index", daemon=True).start()

    def _tell(self, snapshot: Snapshot) -> None:
        for listener in self._listeners:
            listener(snapshot)

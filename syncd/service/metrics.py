"""Prometheus metrics of the daemon: cycles, changes, directory API calls, held and overdue work.

Every `Metrics` owns its own registry rather than prometheus_client's global one, so tests and
several instances in one process never collide over metric names.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from syncd.service.state_alarm import OUT_OF_REACH, database_reason
from syncd.version import __version__

log = structlog.get_logger(__name__)

CYCLE_OUTCOMES = ("success", "partial", "failed", "held", "skipped", "error")
# From a one-person resync (tens of milliseconds) to a first full load of a large unit (an hour).
CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class _StateFigures(Collector):
    """The figures read from the state at each scrape, and `syncd_state_up`: whether this scrape could read it.

    While the state cannot be read (PostgreSQL down or restarting) the scrape still answers 200, with
    `syncd_state_up 0` and each figure as last read. A 503 would make Prometheus mark the whole
    target down (`up 0`) and drop every series, the last success and the cycle counts among them,
    which are what tell about the outage; and NaN figures would resolve, then fire again, every
    alert on them (held, overdue). The outage is logged once, not per scrape.
    """

    def __init__(self, held: Callable[[], float], overdue: Callable[[], float],
                 problems: Callable[[], Mapping[tuple[int, str], int]],
                 compliance: Callable[[], tuple[float | None, float | None]]) -> None:
        self._sources: dict[str, Callable[[], Any]] = {"syncd_held_changes": held, "syncd_overdue_changes": overdue,
                                                      "syncd_open_problems": problems,
                                                      "syncd_changes_on_time_ratio": compliance}
        # NaN / nothing until read once: no figure is better than a made-up one.
        self._last: dict[str, Any] = {"syncd_held_changes": math.nan, "syncd_overdue_changes": math.nan,
                                      "syncd_open_problems": {}, "syncd_changes_on_time_ratio": (None, None)}
        self._lock = threading.Lock()  # two scrapes at once must not interleave their reads
        self._down = False

    def _read(self) -> tuple[dict[str, Any], bool]:
        """Each figure (the last good one where it cannot be read now) and whether the state could be read."""
        figures, up = dict(self._last), True
        for name, source in self._sources.items():
            if not up:
                break  # one try per scrape: a database out of reach may take seconds to say so
            try:
                figures[name] = self._last[name] = source()
            except OUT_OF_REACH as exc:
                up = False
                if not self._down:
                    log.warning("metrics.state_unavailable", reason=database_reason(exc), error=type(exc).__name__)
            # A figure that fails for another reason (a bug) must not take the rest of the scrape down.
            except Exception as exc:
                log.warning("metrics.source_failed", metric=name, error=type(exc).__name__)
        self._down = not up
        return figures, up

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            figures, up = self._read()
        yield GaugeMetricFamily("syncd_state_up", "Whether this scrape could read the state database (1) or not (0: "
                                "the state's figures are the last ones read)", value=int(up))
        yield GaugeMetricFamily("syncd_held_changes", "Changes held by a guard, waiting for a decision",
                                value=float(figures["syncd_held_changes"]))
        yield GaugeMetricFamily("syncd_overdue_changes", "Changes not applied by their due date",
                                value=float(figures["syncd_overdue_changes"]))
        problems = GaugeMetricFamily("syncd_open_problems", "Open escalation problems by level and kind",
                                     labels=["level", "kind"])
        for (level, kind), count in sorted(dict(figures["syncd_open_problems"]).items()):
            problems.add_metric([str(level), kind], count)
        yield problems
        on_time, complete = figures["syncd_changes_on_time_ratio"]
        # NaN, not 0, when there is nothing to count: no change decided yet is not a unit always late.
        yield GaugeMetricFamily("syncd_changes_on_time_ratio",
                                "Share of this year's personnel changes in the directory by their due date "
                                "(Article 9; of those done or past due)",
                                value=math.nan if on_time is None else on_time)
        yield GaugeMetricFamily("syncd_completeness_ratio",
                                "Share of in-post people with all eleven Article 9 fields valid (latest HR read)",
                                value=math.nan if complete is None else complete)


class Metrics:
    """The daemon's metrics and their exposition."""

    def __init__(self, held_changes: Callable[[], float] = lambda: 0, overdue_changes: Callable[[], float] = lambda: 0,
                 version: str | None = None,
                 open_problems: Callable[[], Mapping[tuple[int, str], int]] = dict,
                 compliance: Callable[[], tuple[float | None, float | None]] = lambda: (None, None)) -> None:
        """`held_changes`, `overdue_changes`, `open_problems` and `compliance` (this year's on-time share and the
        completeness share, None for nothing to count) are read from the state at each scrape (`_StateFigures`)."""
        self.registry = CollectorRegistry()
        # process_* (CPU, memory, open files, start time) and python_info, as any Prometheus target has.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.notices = Counter("syncd_notices", "Escalation notices by channel and result (ok | failed)",
                               ["channel", "result"], registry=self.registry)
        self.registry.register(_StateFigures(held_changes, overdue_changes, open_problems, compliance))
        self.last_success = Gauge("syncd_last_success_timestamp_seconds",
                                  "Unix time the last cycle succeeded", registry=self.registry)
        self.cycles = Counter("syncd_cycles", "Cycles by outcome", ["outcome"], registry=self.registry)
        self.changes = Counter("syncd_changes", "Planned changes by kind and final state",
                               ["kind", "state"], registry=self.registry)
        self.api_calls = Counter("syncd_api_calls", 'Directory API calls by result ("ok" or the error category)',
                                 ["category"], registry=self.registry)
        self.cycle_duration = Histogram("syncd_cycle_duration_seconds", "Duration of a cycle",
                                        buckets=CYCLE_BUCKETS, registry=self.registry)
        self.build_info = Gauge("syncd_build_info", "The running syncd version (always 1)", ["version"],
                                registry=self.registry)
        self.build_info.labels(version=version or __version__).set(1)
        # Series that exist from the start read 0 instead of "no data", so rate() and alerts work.
        for outcome in CYCLE_OUTCOMES:
            self.cycles.labels(outcome=outcome)
        self.api_calls.labels(category="ok")

    def observe_cycle(self, outcome: str, duration_s: float, changes: Mapping[str, int]) -> None:
        """Count one cycle: its outcome, duration and changes keyed `"<kind>.<state>"` (`"join.done"`)."""
        if outcome not in CYCLE_OUTCOMES:
            raise ValueError(f"unknown cycle outcome {outcome!r}; expected one of {', '.join(CYCLE_OUTCOMES)}")
        counts: list[tuple[str, str, int]] = []
        for key, count in changes.items():
            kind, dot, state = key.rpartition(".")
            if not dot or not kind or not state:
                raise ValueError(f"change key {key!r} is not '<kind>.<state>'")
            if count < 0:
                raise ValueError(f"change count for {key!r} is negative: {count}")
            counts.append((kind, state, count))
        # Checked before counting anything, so a bad key never leaves half a cycle counted.
        self.cycles.labels(outcome=outcome).inc()
        self.cycle_duration.observe(duration_s)
        for kind, state, count in counts:
            self.changes.labels(kind=kind, state=state).inc(count)

    def mark_success(self, timestamp: float) -> None:
        """Record when a cycle last succeeded (Unix time)."""
        self.last_success.set(timestamp)

    def count_api_call(self, category: str) -> None:
        """Count one directory API call: "ok", or the TargetError category. Safe from any thread."""
        # prometheus_client's labels() and inc() take their own locks.
        self.api_calls.labels(category=category).inc()

    def count_notice(self, channel: str, ok: bool) -> None:
        """Count one attempt to send a notice on a channel."""
        self.notices.labels(channel=channel, result="ok" if ok else "failed").inc()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type, in the format the `Accept` header asks for."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

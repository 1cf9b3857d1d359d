"""`syncd run`: the long-running service (DESIGN.md §8).

APScheduler runs one cycle at start, an incremental cycle every `schedule.incremental_every`
(skipped cheaply when the source says nothing changed) and a full cycle daily at
`schedule.full_at`; a poller starts queued manual resyncs within a second. Never two cycles at
once: one lock in the process, the store's cycle lock across processes and nodes. The control API
and metrics are served beside it. SIGTERM finishes the change in flight and exits 0; SIGHUP reloads
the configuration (a bad one is refused and the old one kept).

The state may fail under the daemon: a full disk (`state.unwritable`, told to level 1 by
`StateAlarm` without the state's help), or PostgreSQL gone away. No node exits for it: the leader
stops syncing when its lease session ends, every node retries the database with backoff, and
`/healthz` answers 503 with the reason until it is back; then the nodes elect a leader again.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from syncd import log as logging_setup
from syncd.config import Config, ConfigError, load
from syncd.console import (
    ConsoleData,
    SnapshotCache,
    new_secret_key,
    read_directory_person,
    read_hr,
    register_console,
    server_error,
)
from syncd.console.onboard import ONBOARD_EXTENSION, OnboardReviews
from syncd.domain.compliance import Compliance, LatestCompleteness, Rules, compliance
from syncd.domain.escalation import Escalation, acknowledge, gather_facts, open_counts, problems_json
from syncd.domain.scope import ResyncRequest, Scope
from syncd.domain.source import Source
from syncd.domain.target import DirectoryEntry, Target
from syncd.engine.cycle import SOURCE_TOKEN, CycleOptions, CycleResult, run_cycle
from syncd.engine.freeze import set_frozen
from syncd.engine.onboard import build_review
from syncd.service.api import create_api
from syncd.service.control import Health
from syncd.service.http import WsgiServer, is_loopback, split_listen
from syncd.service.leader import AlreadyRunning, FencedTarget, Holder, InstanceLock, LeadershipLost, running_daemon
from syncd.service.metrics import Metrics
from syncd.service.notify import SystemdNotifier
from syncd.service.resyncs import carry_out, cycle_outcome
from syncd.service.state_alarm import OUT_OF_REACH, StateAlarm, database_reason, unreachable
from syncd.service.status import gather_status
from syncd.service.tokens import TokensError, TokenStore
from syncd.state import StateUnavailable
from syncd.state.store import Busy, StateStore, aware
from syncd.version import __version__
from syncd.wiring import build_notifiers, build_source, build_target

log = structlog.get_logger(__name__)

STOP_WITHIN = 9.0  # seconds a stopping daemon waits for the change in flight (systemd: TimeoutStopSec)
STANDBY_POLL = 5.0  # seconds between a standby node's tries for leadership (takeover well within 30 s)
RESYNC_POLL = 1.0  # a queued resync starts within this (plus the cycle it may wait for)
FULL_WAITS_FOR_LOCK = 600.0  # the daily full cycle waits this long for a running cycle rather than skip a day
HEALTHY_INTERVALS = 3
YEAR_SHARES_EVERY = 300.0  # seconds between two countings of the year's Article 9 shares for /metrics
RECONNECT_FIRST = 0.5  # seconds before the first retry of a database gone away; doubled up to STANDBY_POLL
# The leader's latest cycle (any outcome, skipped included), in the state: what a standby's health reads.
LAST_CYCLE = "daemon.last_cycle"
# A held run is the service doing its job (the guard worked; escalation asks for the decision).
HEALTHY_OUTCOMES = ("success", "skipped", "held")
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


@dataclass(frozen=True, slots=True)
class LastCycle:
    """How the daemon's latest cycle ended, for `/healthz`."""

    outcome: str
    at: datetime


class Engine:
    """The configuration and what is built from it: swapped whole on SIGHUP."""

    def __init__(self, config: Config, store: StateStore, on_call: Callable[[str], None],
                 interrupt: threading.Event, fence: Callable[[], None]) -> None:
        self.config = config
        self.source: Source = build_source(config)
        # Every write to the directory first checks this node still leads (a thawed old leader must not).
        self.target = cast(Target, FencedTarget(build_target(config, on_call=on_call, interrupt=interrupt), fence))
        self.notifiers = build_notifiers(config)
        self.escalation = Escalation(store, config, self.notifiers, config.unit.name)

    def close(self) -> None:
        """Release connections the source, the target and the notifiers hold."""
        for part in (self.source, self.target, *self.notifiers):
            close = getattr(part, "close", None)
            if close is not None:
                close()


def open_state(url: str) -> StateStore:
    """The state; a PostgreSQL that cannot be reached yet (it starts after this node, or restarts) is
    waited for with backoff, not a reason to exit. A refused password, or any other failure to open
    the state, still is: retrying cannot mend configuration."""
    retry, said = RECONNECT_FIRST, None
    while True:
        try:
            return StateStore(url)
        except StateUnavailable as exc:
            cause = exc.__cause__
            postgresql = make_url(url).get_backend_name() == "postgresql"
            if not postgresql or exc.refused or not isinstance(cause, OperationalError):
                raise
            reason = database_reason(cause)
            if reason != said:
                log.error("state.unwritable", reason=reason, error=type(cause).__name__, doing="opening the state")
                said = reason
            time.sleep(random.uniform(0.5, 1.0) * retry)
            retry = min(retry * 2, STANDBY_POLL)


M = TypeVar("M", bound=Callable[..., Any])


def reaching_state(method: M) -> M:
    """A `Control` method whose state database, out of reach, is StateUnavailable (the API's 503), not a 500."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OUT_OF_REACH as exc:
            raise unreachable(exc) from exc

    return cast(M, call)


class DaemonControl:
    """What the API may do, carried out on the daemon's state and directory (`syncd.service.control.Control`)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    @reaching_state
    def request_resync(self, scope: Scope, full: bool, requested_by: str) -> ResyncRequest:
        """Queue a resync and wake the poller."""
        request = self._daemon.store.queue_resync(scope, full, requested_by)
        log.info("resync.queued", resync_id=request.id, scope=scope.describe(), full=full, requested_by=requested_by)
        self._daemon.wake_resyncs()
        return request

    @reaching_state
    def resync(self, request_id: str) -> ResyncRequest | None:
        """One resync request."""
        return self._daemon.store.resync(request_id)

    @reaching_state
    def status(self) -> dict[str, Any]:
        """Runs, holds, overdue changes, resyncs and this daemon."""
        daemon = self._daemon
        return gather_status(daemon.store, daemon.today(), daemon.holder(), daemon.next_cycle())

    @reaching_state
    def decide(self, run_id: str, approve: bool, by: str) -> int:
        """Approve or reject a held run."""
        decided = self._daemon.store.decide(run_id, approve)
        log.info("run.decided", decided_run=run_id, approved=approve, changes=decided, by=by)
        return decided

    @reaching_state
    def set_frozen(self, employee_id: str, frozen: bool, by: str) -> str:
        """Freeze or unfreeze a login now, beside any running cycle (a lost phone cannot wait)."""
        engine = self._daemon.engine
        return set_frozen(engine.target, self._daemon.store, employee_id, frozen, by, engine.config.schedule.timezone)

    def health(self) -> Health:
        """Ok while the last cycle succeeded (or was skipped, or held for a decision) within three intervals."""
        return self._daemon.health()

    @reaching_state
    def directory_person(self, employee_id: str) -> DirectoryEntry | None:
        """A live read of one linked person for the console, beside any running cycle."""
        return read_directory_person(self._daemon.engine.target, self._daemon.store, employee_id)

    @reaching_state
    def escalations(self) -> dict[str, Any]:
        """Open and recently resolved problems, with their notices."""
        return problems_json(self._daemon.store)

    @reaching_state
    def acknowledge(self, key: str, by: str) -> bool:
        """Stop the reminders of an open problem."""
        return acknowledge(self._daemon.store, key, by, datetime.now(UTC))

    @reaching_state
    def compliance(self, start: date, end: date) -> dict[str, Any]:
        """The unit's Article 9 figures for the period."""
        return self._daemon.compliance(start, end).as_json()


class Daemon:
    """The service: scheduler, resync poller, control API, signals, systemd notifications."""

    def __init__(self, config_path: Path, config: Config, notifier: SystemdNotifier | None = None) -> None:
        self.config_path = config_path
        self.store = open_state(config.state.url)
        self.metrics = Metrics(held_changes=lambda: len(self.store.pending_holds()),
                               overdue_changes=lambda: len(self.store.overdue(self.today())),
                               open_problems=lambda: open_counts(self.store), compliance=self._year_shares)
        self._interrupt = threading.Event()  # set on SIGTERM: cycles finish the change in flight and stop
        self._lock = InstanceLock(self.store)
        self.alarm = StateAlarm()
        self.engine = Engine(config, self.store, self.metrics.count_api_call, self._interrupt, self._lock.fence)
        # The console's HR snapshot: every cycle that read HR offers its own; read on demand before the first.
        self.snapshots = SnapshotCache(lambda: read_hr(self.engine.config))
        self._completeness = LatestCompleteness()
        self._year_shares_made: tuple[float, tuple[float | None, float | None]] | None = None
        self._notifier = notifier or SystemdNotifier()
        self._leading = False
        self._cycle = threading.Lock()  # never two cycles of this process at once
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._reload = threading.Event()
        self._resyncs_due = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._api: WsgiServer | None = None
        self._last: LastCycle | None = None
        self._last_success: datetime | None = None
        self._escalating = threading.Lock()
        self._retired: list[Engine] = []  # replaced by a reload while a cycle used them; closed after it
        self._orphans_requeued = False  # since this daemon last became the leader

    # -- life cycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit code."""
        config = self.engine.config
        try:
            if not self._lock.shared:
                self._lock.acquire()
        except AlreadyRunning as exc:
            log.error("daemon.refused", reason=str(exc), **(exc.holder.as_json() if exc.holder else {}))
            self._close()
            return EXIT_FAILED
        try:
            tokens = TokenStore(config.api.tokens_file)
        except TokensError as exc:
            log.error("daemon.refused", reason=str(exc))
            self._close()
            return EXIT_CONFIG
        self._install_signals()
        try:
            self._serve_api(config, tokens)
        except OSError as exc:
            log.error("daemon.refused", reason=f"api.listen {config.api.listen}: {exc.strerror or exc}")
            self._close()
            return EXIT_FAILED
        self._log_start(config)
        # The last success survives a restart, even behind failed runs: /metrics and /healthz tell
        # how long the unit has gone without one, not how long this process has.
        try:
            last = self.store.last_unit_run(outcomes=HEALTHY_OUTCOMES)
        except SQLAlchemyError as exc:  # the database went away since the start: the nodes wait for it
            self.alarm.failed(exc, config, self.engine.notifiers, "reading the last run")
            last = None
        if last is not None and last.finished_at is not None:
            self._last_success = aware(last.finished_at)
            self.metrics.mark_success(self._last_success.timestamp())
        try:
            while not self._stopping.is_set():
                if not self._lead():
                    break
                self._notifier.ready(f"leader: syncing every {config.schedule.incremental_every}")
                self._serve_while_leader()
        finally:
            stopped_cleanly = self._shutdown()
        if not stopped_cleanly:
            # The cycle is still busy in its thread (a directory call that hangs, a long source read,
            # journaling a large plan as stopped), and returning would wait for it at interpreter exit.
            # Leave as a crash would: every change the directory accepted is journaled, one in flight
            # is `sent`, and the next start's recovery finishes the run. systemd would SIGKILL at
            # TimeoutStopSec anyway; this keeps the promise of an exit within 10 s.
            sys.stderr.flush()
            os._exit(EXIT_OK)
        return EXIT_OK

    def _lead(self) -> bool:
        """Become the leader; a standby node waits here. False when asked to stop meanwhile."""
        if self._lock.shared:
            announced = False
            retry = RECONNECT_FIRST
            while True:
                try:
                    if self._lock.acquire():
                        break
                except SQLAlchemyError as exc:
                    # PostgreSQL is restarting or gone: never exit for it, try again with backoff.
                    self.alarm.failed(exc, self.engine.config, self.engine.notifiers, "taking the leader lock")
                    if self._standby_wait(random.uniform(0.5, 1.0) * retry):
                        return False
                    retry = min(retry * 2, STANDBY_POLL)
                    continue
                retry = RECONNECT_FIRST
                self.alarm.succeeded(self.engine.config, self.engine.notifiers)
                if not announced:
                    log.info("daemon.standby", reason="another node holds the leader lock")
                    self._notifier.ready("standby: another node is the leader")
                    announced = True
                if self._standby_wait(STANDBY_POLL):
                    return False
        self._leading = True
        log.info("daemon.leading")
        self._orphans_requeued = False
        self._start_scheduler()
        return True

    def _standby_wait(self, seconds: float) -> bool:
        """Wait between tries for the lock, feeding the watchdog (a standby is alive too, or systemd would
        kill it); True when the daemon is stopping."""
        tick = min(self._notifier.watchdog_interval() or STANDBY_POLL, STANDBY_POLL, seconds)
        waited = 0.0
        while waited < seconds:
            if self._wait(tick):
                return True
            self._notifier.watchdog()
            waited += tick
        return False

    def _serve_while_leader(self) -> None:
        """The main thread's loop: signals, reloads, the watchdog, and (PostgreSQL) the leader lock."""
        tick = min(self._notifier.watchdog_interval() or 1.0, 1.0)
        while not self._stopping.is_set():
            self._wait(tick)
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            if self._lock.shared and not self._lock.alive():
                # The lock went with the connection: another node may lead now. Stop syncing at once:
                # the running cycle finishes the change in flight (its writes are fenced), then this
                # node waits as a standby.
                self._leading = False
                self._stop_scheduler()
                self._interrupt.set()
                if self._cycle.acquire(timeout=STOP_WITHIN):
                    self._cycle.release()
                self._interrupt.clear()
                self._lock.release()
                return
            self._notifier.watchdog()

    def _wait(self, seconds: float) -> bool:
        """Sleep until woken; True when the daemon is stopping."""
        self._wake.wait(seconds)
        self._wake.clear()
        return self._stopping.is_set()

    def _shutdown(self) -> bool:
        """Finish the change in flight (journaled), stop serving, let go of the state. False when the
        running cycle did not end within STOP_WITHIN: it is abandoned, still running in its thread."""
        deadline = time.monotonic() + STOP_WITHIN
        self._notifier.stopping()
        log.info("daemon.stopping")
        self._interrupt.set()
        self._stop_scheduler()
        if self._api is not None:
            self._api.stop()
        if not self._cycle.acquire(timeout=max(0.0, deadline - time.monotonic())):
            # The state stays open: the abandoned cycle still writes to it until the process ends.
            log.warning("daemon.stop_timeout", waited_s=STOP_WITHIN,
                        advice="the cycle was abandoned; the next start recovers its unfinished changes")
            return False
        try:
            self._close()
        finally:
            self._cycle.release()
        log.info("daemon.stopped")
        return True

    def _close(self) -> None:
        self._lock.release()
        self._close_retired()
        self.engine.close()
        self.store.close()

    def _close_retired(self) -> None:
        """Close engines a reload replaced while a cycle used them (call with no cycle running)."""
        while self._retired:
            self._retired.pop().close()

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("daemon.signal", signal=signal.Signals(signum).name)
            self._stopping.set()
            self._interrupt.set()
            self._wake.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self._reload.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)
        # A file-size limit (systemd LimitFSIZE=, ulimit -f) must fail the state's write with EFBIG, which
        # the state alarm reports, not kill the daemon with SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def _serve_api(self, config: Config, tokens: TokenStore) -> None:
        host, port = split_listen(config.api.listen)
        if not is_loopback(host):
            log.warning("api.listen_not_loopback", listen=config.api.listen,
                        advice="put TLS in front (a reverse proxy); bearer tokens travel in every request")
        if config.api.tokens_file is None:
            log.warning("api.no_tokens", advice="set api.tokens_file and run `syncd token add NAME --role hr`")
        app = create_api(DaemonControl(self), tokens, self.metrics)
        data = ConsoleData(self.store, self.snapshots, root_department=config.unit.root_department,
                           root_organization_code=config.unit.root_organization_code, today=self.today,
                           next_cycle=self.next_cycle, code_tables=config.source.code_tables,
                           safety=lambda: self.engine.config.safety)  # the reloaded one after SIGHUP
        # A key per start: a restart signs everyone out, and no key that could forge a session is ever stored.
        register_console(app, data, new_secret_key(), tokens_file=config.api.tokens_file, unit_name=config.unit.name,
                         timezone=config.schedule.timezone, secure_cookies=config.api.secure_cookies)
        # 接入核对: the onboarding review on an operator's request, from the latest HR read (syncd.engine.onboard).
        app.extensions[ONBOARD_EXTENSION] = OnboardReviews(lambda: build_review(
            self.engine.config, self.snapshots(), self.engine.target, self.store))
        self._api = WsgiServer(app, host, port, threads=4, ident="syncd-api", error_answer=server_error).start()

    def _log_start(self, config: Config) -> None:
        schedule = config.schedule
        log.info("daemon.started", version=__version__, config=str(self.config_path), source=config.source.kind,
                 unit=config.unit.root_department, unit_name=config.unit.name,
                 incremental_every=schedule.incremental_every, full_at=schedule.full_at, timezone=schedule.timezone,
                 api=f"{split_listen(config.api.listen)[0]}:{self._api.port if self._api else '-'}",
                 state=self.store.engine.url.get_backend_name())

    # -- scheduling --------------------------------------------------------------------------

    def _start_scheduler(self) -> None:
        schedule = self.engine.config.schedule
        zone = ZoneInfo(schedule.timezone)
        scheduler = BackgroundScheduler(timezone=zone, job_defaults={
            "coalesce": True,  # missed runs (a suspended VM, a long full cycle) run once, not once per miss
            "max_instances": 1,
            "misfire_grace_time": max(30, schedule.incremental_seconds()),
        })
        scheduler.add_listener(self._scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        scheduler.add_job(self._start_cycle, id="start", name="cycle at start")
        self._add_cycle_jobs(scheduler, self.engine.config)
        scheduler.add_job(self._poll_resyncs, IntervalTrigger(seconds=RESYNC_POLL), id="resyncs",
                          name="manual resyncs")
        scheduler.start()
        self._scheduler = scheduler

    def _add_cycle_jobs(self, scheduler: BackgroundScheduler, config: Config) -> None:
        schedule = config.schedule
        zone = ZoneInfo(schedule.timezone)
        every = schedule.incremental_seconds()
        hour, minute = (int(part) for part in schedule.full_at.split(":"))
        scheduler.add_job(self._incremental_cycle, IntervalTrigger(seconds=every, timezone=zone),
                          id="incremental", name="incremental cycle", replace_existing=True,
                          next_run_time=datetime.now(zone) + timedelta(seconds=every))
        scheduler.add_job(self._full_cycle, CronTrigger(hour=hour, minute=minute, timezone=zone),
                          id="full", name="full cycle", replace_existing=True)

    def _stop_scheduler(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    def _scheduler_event(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.info("scheduler.coalesced", job=event.job_id, scheduled=str(event.scheduled_run_time))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("scheduler.skipped", job=event.job_id, reason="the previous run of this job is still running")
        elif event.code == EVENT_JOB_ERROR:
            # APScheduler caught it (and logged the traceback): the scheduler and the service go on.
            exception = getattr(event, "exception", None)
            log.error("scheduler.job_failed", job=event.job_id, error=type(exception).__name__)
            self._record(None, "error", 0.0)
            self._escalate(cycle_error=type(exception).__name__)

    def next_cycle(self) -> datetime | None:
        """When the next scheduled cycle starts."""
        scheduler = self._scheduler
        if scheduler is None:
            return None
        times = [job.next_run_time for job in scheduler.get_jobs()
                 if job.id in ("incremental", "full") and job.next_run_time is not None]
        return min(times) if times else None

    # -- cycles ------------------------------------------------------------------------------

    def _start_cycle(self) -> None:
        self._cycle_now(CycleOptions(trigger="start", stop=self._interrupt), wait=FULL_WAITS_FOR_LOCK)

    def _incremental_cycle(self) -> None:
        self._cycle_now(CycleOptions(trigger="schedule", skip_unchanged=True, stop=self._interrupt))

    def _full_cycle(self) -> None:
        self._cycle_now(CycleOptions(trigger="full", full=True, stop=self._interrupt), wait=FULL_WAITS_FOR_LOCK)

    def _cycle_now(self, options: CycleOptions, wait: float = 0.0) -> CycleResult | None:
        """Run one cycle unless another is running (then skip, or wait up to `wait` seconds); then let
        the escalation look at the state (after skipped cycles too: that is its clock)."""
        result = self._cycle_locked(options, wait)
        if result is not None:
            self._escalate()
        return result

    def _cycle_locked(self, options: CycleOptions, wait: float) -> CycleResult | None:
        if not self._cycle.acquire(timeout=wait) if wait else not self._cycle.acquire(blocking=False):
            log.info("scheduler.skipped", trigger=options.trigger, reason="another cycle is running")
            return None
        try:
            if self._stopping.is_set():
                return None
            engine = self.engine
            started = time.monotonic()
            try:
                result = run_cycle(engine.config, engine.source, engine.target, self.store, options)
            except Busy as exc:
                log.info("scheduler.skipped", trigger=options.trigger, reason=str(exc))
                return None
            except LeadershipLost as exc:
                # Left as a crash leaves it: the new leader's recovery finishes what this run began.
                log.error("daemon.fenced", trigger=options.trigger, reason=str(exc))
                return None
            except SQLAlchemyError as exc:
                if self._lock.shared and not self._leading:
                    # The lease ended meanwhile, and the new leader ended this cycle's session.
                    log.error("daemon.fenced", trigger=options.trigger, reason=database_reason(exc))
                    return None
                self.alarm.failed(exc, engine.config, engine.notifiers, "running a cycle")
                self._record(None, "error", time.monotonic() - started)
                return None
            self._record(result, result.outcome, time.monotonic() - started)
            self.snapshots.offer(result.snapshot)  # the console's HR data; a skipped cycle's empty one is ignored
            return result
        finally:
            self._close_retired()
            self._cycle.release()

    def _record(self, result: CycleResult | None, outcome: str, duration_s: float) -> None:
        counts = {} if result is None else result.report.counts()
        self.metrics.observe_cycle(outcome, duration_s, counts)
        now = datetime.now(UTC)
        if outcome in HEALTHY_OUTCOMES:
            self.metrics.mark_success(now.timestamp())
            self._last_success = now
        self._last = LastCycle(outcome, now)
        engine = self.engine
        try:
            # Every cycle writes this, skipped ones too: standbys judge the leader by it, and an
            # unwritable state is found on a quiet day as well.
            self.store.set_value(LAST_CYCLE, {"at": now.isoformat(), "outcome": outcome})
        except SQLAlchemyError as exc:
            self.alarm.failed(exc, engine.config, engine.notifiers, "recording the cycle")
        else:
            self.alarm.succeeded(engine.config, engine.notifiers)

    def _escalate(self, cycle_error: str | None = None) -> None:
        """Open, remind, escalate and resolve problems, and send the weekly digest (one caller at a time:
        a caller that finds it busy leaves it to the next cycle)."""
        if self._stopping.is_set() or not self._escalating.acquire(blocking=False):
            return
        try:
            engine = self.engine
            now = datetime.now(UTC)
            facts = gather_facts(self.store, self.today(), engine.config.escalation, cycle_error=cycle_error,
                                 root_organization_code=engine.config.unit.root_organization_code,
                                 timezone=engine.config.schedule.timezone)
            deliveries = [*engine.escalation.observe(now, facts), *engine.escalation.weekly_digest(now)]
        except SQLAlchemyError as exc:  # the state is unreachable: the alarm tells it without the state
            log.error("escalation.failed", error=type(exc).__name__)
            self.alarm.failed(exc, self.engine.config, self.engine.notifiers, "escalating")
            return
        finally:
            self._escalating.release()
        for delivery in deliveries:
            self.metrics.count_notice(delivery.channel, delivery.ok)

    def wake_resyncs(self) -> None:
        """A resync was queued in this process: start it without waiting for the next poll."""
        scheduler = self._scheduler
        if scheduler is not None:
            job = scheduler.get_job("resyncs")
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def _poll_resyncs(self) -> None:
        """Carry out every queued resync, oldest first; one waiting for a running cycle stays queued."""
        while not self._stopping.is_set():
            if not self._cycle.acquire(blocking=False):
                return  # a cycle is running; the next poll after it ends takes the request
            try:
                if not self._orphans_requeued:
                    self._orphans_requeued = self._requeue_orphaned_resyncs()
                request = self.store.claim_resync()
                if request is None:
                    return
                engine = self.engine
                started = time.monotonic()
                done = carry_out(request, engine.config, engine.source, engine.target, self.store, self._interrupt)
                if done is None:
                    return
                self.snapshots.refresh_soon()  # the resync read HR afresh: the console reads it again too
                self.metrics.observe_cycle(cycle_outcome(done), time.monotonic() - started, {})
            except LeadershipLost as exc:
                log.error("daemon.fenced", trigger="resync", reason=str(exc))
                return
            except SQLAlchemyError as exc:  # every second while the database is away: the alarm logs it once
                self.alarm.failed(exc, self.engine.config, self.engine.notifiers, "polling resyncs")
                return
            finally:
                self._close_retired()
                self._cycle.release()

    def _requeue_orphaned_resyncs(self) -> bool:
        """Resyncs a daemon claimed and never finished (it was killed, or its node died) go back to the
        queue; False when a cycle held the lock, so the next poll tries again.

        This daemon leads, so a request still `running` is nobody's, unless an inline `syncd resync`
        is carrying it out: that one holds the cycle lock, and then nothing is touched.
        """
        try:
            with self.store.exclusive():
                for request in self.store.resyncs():
                    if request.status == "running":
                        self.store.requeue_resync(request.id)
                        log.warning("resync.requeued", resync_id=request.id, scope=request.scope.describe(),
                                    reason="claimed by a daemon that stopped before finishing it")
        except Busy:
            return False
        return True

    # -- reload ------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the configuration again (SIGHUP). A bad one is refused and the running one kept."""
        self._notifier.reloading()
        try:
            config = load(self.config_path)
            TokenStore(config.api.tokens_file)  # a malformed tokens file fails the reload, not the next request
            engine = Engine(config, self.store, self.metrics.count_api_call, self._interrupt, self._lock.fence)
        except ConfigError as exc:
            log.error("config.reload_refused", problems=[p.key for p in exc.problems], detail=str(exc))
            self._notifier.ready_after_reload("reload refused: configuration kept")
            return False
        except TokensError as exc:
            log.error("config.reload_refused", problems=["api.tokens_file"], detail=str(exc))
            self._notifier.ready_after_reload("reload refused: configuration kept")
            return False
        old = self.engine.config
        restart_keys = [key for key in ("state", "api") if getattr(old, key) != getattr(config, key)]
        if restart_keys:
            log.warning("config.reload_needs_restart", keys=restart_keys)
        logging_setup.configure(config.logging.format, config.logging.level, config.logging.show_personal_data)
        # Swapped at once, never waiting for a running cycle (a full cycle can outlast the systemd
        # watchdog, which this thread feeds): the cycle keeps the engine it started with, and that
        # engine is closed once no cycle uses it.
        previous, self.engine = self.engine, engine
        if self._cycle.acquire(blocking=False):
            try:
                previous.close()
            finally:
                self._cycle.release()
        else:
            self._retired.append(previous)
        # The plan depends on the configuration too (safety, unit, columns): the next incremental cycle
        # reads and plans even though HR is unchanged.
        self.store.set_value(SOURCE_TOKEN, None)
        if self._scheduler is not None and old.schedule != config.schedule:
            self._add_cycle_jobs(self._scheduler, config)
        log.info("config.reloaded", config=str(self.config_path), source=config.source.kind,
                 incremental_every=config.schedule.incremental_every, full_at=config.schedule.full_at)
        self._notifier.ready_after_reload(f"configuration reloaded; syncing every {config.schedule.incremental_every}")
        return True

    # -- views -------------------------------------------------------------------------------

    def today(self) -> date:
        """Today in the unit's time zone (due dates are calendar days there)."""
        return datetime.now(ZoneInfo(self.engine.config.schedule.timezone)).date()

    def compliance(self, start: date, end: date, read_hr: bool = True) -> Compliance:
        """The unit's Article 9 figures for changes detected from `start` to `end`; the completeness of the
        latest HR read (read now when none is held, unless `read_hr` is False: a scrape never waits for HR)."""
        config = self.engine.config
        snapshot = self.snapshots() if read_hr else self.snapshots.latest
        return compliance(self.store, config.unit.name, start, end, self.today(), Rules.of(config),
                          self._completeness.of(snapshot))

    def _year_shares(self) -> tuple[float | None, float | None]:
        """This calendar year's on-time share and the completeness share, for a scrape (HR is never read for it).

        Worked out at most every YEAR_SHARES_EVERY seconds: a year's journal at a large unit takes a
        second or two to count, and a yearly share does not move between two scrapes.
        """
        made = self._year_shares_made
        if made is not None and time.monotonic() - made[0] < YEAR_SHARES_EVERY:
            return made[1]
        today = self.today()
        result = self.compliance(date(today.year, 1, 1), today, read_hr=False)
        shares = (result.figures.on_time_share, result.completeness_share)
        self._year_shares_made = (time.monotonic(), shares)
        return shares

    def holder(self) -> Holder | None:
        """Who holds the state (this daemon when it leads)."""
        return running_daemon(self.store)

    def health(self) -> Health:
        """The leader: ok while the last cycle succeeded, was skipped or held within three intervals. A
        standby: ok while it reaches the state and the leader's last cycle (any outcome) is that recent.
        Never ok while the state cannot be written or reached; the reason says so."""
        window = timedelta(seconds=HEALTHY_INTERVALS * self.engine.config.schedule.incremental_seconds())
        role = ("leader" if self._leading else "standby") if self._lock.shared else None
        last = self._last
        if self.alarm.reason is not None:
            return Health(False, self._last_success, last.outcome if last else None,
                          reason=f"the state database cannot be written or reached: {self.alarm.reason}", role=role)
        try:
            if self._lock.shared and not self._leading:
                return self._standby_health(window)
            if last is None:  # nothing ran in this process yet (starting): the store tells
                run = self.store.last_unit_run()
                last = None if run is None or run.finished_at is None else LastCycle(run.outcome or "crashed",
                                                                                      aware(run.finished_at))
        except SQLAlchemyError as exc:
            return Health(False, self._last_success, None, role=role,
                          reason=f"the state database cannot be reached: {database_reason(exc)}")
        if last is None:
            return Health(False, None, None, reason="no cycle has finished yet", role=role)
        good = last.outcome in HEALTHY_OUTCOMES
        return Health(good and datetime.now(UTC) - last.at <= window, self._last_success, last.outcome, role=role)

    def _standby_health(self, window: timedelta) -> Health:
        """A standby's view: the leader's latest cycle as the leader recorded it (skipped ones included)."""
        recorded = self.store.value(LAST_CYCLE)
        at = datetime.fromisoformat(recorded["at"]) if isinstance(recorded, dict) and recorded.get("at") else None
        if at is None:
            return Health(False, self._last_success, None, reason="no leader has recorded a cycle", role="standby")
        outcome = str(recorded.get("outcome"))
        if datetime.now(UTC) - at > window:
            return Health(False, self._last_success, outcome, role="standby",
                          reason=f"the leader's last cycle was at {at.isoformat()}, longer ago than {window}")
        return Health(True, self._last_success, outcome, role="standby")

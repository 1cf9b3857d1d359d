"""A client-side rate limiter: one token bucket shared by every thread of the client (zzd-api.md §7).

No QPS figure is published for the contacts calls, so syncd limits itself (configurable, default
10 calls/s) and treats throttling as a signal to slow down: a throttled answer pauses every
caller for the Retry-After time and halves the rate, which then recovers step by step with each
successful call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most `rate` calls per second across all threads, with a burst of `burst` calls."""

    def __init__(
        self, rate: float, burst: float = 1.0, *,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        min_share: float = 0.125, recovery: float = 0.1,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.configured_rate = rate
        self.rate = rate
        self._burst = burst
        self._min_rate = rate * min_share
        self._recovery = rate * recovery
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one call's token, sleeping until it is due; return the seconds waited."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            # Reserve the token now (the balance may go negative) so that concurrent callers queue
            # behind each other instead of all waking at the same moment.
            self._tokens -= 1
            debt = -self._tokens / self.rate if self._tokens < 0 else 0.0
            wait = max(0.0, self._paused_until - now) + debt
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self, retry_after: float | None = None) -> None:
        """The service said slow down: pause everyone for `retry_after` (or one interval) and halve the rate."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            # Calls in flight together are throttled together: one episode halves the rate once,
            # not once per concurrent answer (which would drop it to the floor at once).
            if now >= self._paused_until:
                self.rate = max(self._min_rate, self.rate / 2)
            pause = retry_after if retry_after is not None else 1 / self.rate
            self._paused_until = max(self._paused_until, now + pause)
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        """A call went through: win back part of the rate lost to throttling."""
        with self._lock:
            if self.rate < self.configured_rate:
                now = self._clock()
                self._refill(now)
                self.rate = min(self.configured_rate, self.rate + self._recovery)

    def _refill(self, now: float) -> None:
        # Tokens accrue only outside a pause, so a pause does not end in a burst.
        start = max(self._updated, self._paused_until) if now > self._paused_until else now
        self._tokens = min(self._burst, self._tokens + max(0.0, now - start) * self.rate)
        self._updated = now

"""The shared token bucket, on a fake clock: spacing, thread safety, slowing down when throttled."""

from __future__ import annotations

import threading

import pytest

from connectors.zzd.ratelimit import RateLimiter


class FakeTime:
    """A clock that moves only when told, and a sleep that records and advances it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_at_the_rate_after_the_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, burst=2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(12):
        limiter.acquire()
    assert fake.now == pytest.approx(1.0)
    assert fake.slept == pytest.approx([0.1] * 10)


def test_concurrent_callers_each_get_their_own_slot() -> None:
    # The clock stands still: every reservation is made "at once", so the waits handed out must be
    # exactly one interval apart, whatever the interleaving of the threads.
    waits: list[float] = []
    lock = threading.Lock()
    limiter = RateLimiter(10, clock=lambda: 0.0, sleep=lambda _s: None)

    def worker() -> None:
        for _ in range(25):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([i / 10 for i in range(100)])


def test_throttling_pauses_everyone_and_halves_the_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    limiter.acquire()
    limiter.throttled(retry_after=2.0)
    assert limiter.rate == 5
    first = limiter.acquire()
    second = limiter.acquire()
    assert first >= 2.0
    assert second == pytest.approx(1 / 5)


def test_rate_recovers_with_successes_but_not_above_the_configured_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    limiter.throttled()
    fake.now += 1  # a second, separate throttling episode
    limiter.throttled()
    assert limiter.rate == 2.5
    for _ in range(20):
        limiter.succeeded()
    assert limiter.rate == 10


def test_rate_never_falls_below_its_floor() -> None:
    limiter = RateLimiter(8, clock=lambda: 0.0, sleep=lambda _s: None)
    for _ in range(10):
        limiter.throttled(retry_after=0)
    assert limiter.rate == 1


def test_concurrent_throttled_answers_halve_the_rate_once() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0], sleep=lambda s: None)
    for _ in range(4):  # four calls in flight, all turned away in the same moment
        limiter.throttled(retry_after=1.0)
    assert limiter.rate == 5
    now[0] = 2.0  # a later, separate episode halves again
    limiter.throttled(retry_after=1.0)
    assert limiter.rate == 2.5

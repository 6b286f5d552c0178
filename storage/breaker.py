"""A thread-safe circuit breaker: stop hammering a store that is down, probe it now and then.

Why: when the store is unreachable every append would spend its whole retry budget (seconds of
backoff) before falling back to the spool. After `failure_threshold` consecutive transient failures
the breaker opens and callers go straight to the spool; after `reset_timeout_s` it lets exactly ONE
probe through (half-open). The probe's success closes the breaker, its failure re-opens it.

Only transient failures should be recorded as failures: a terminal error (bad data) means the store
answered, so callers record it as a success (the store is up) or not at all.

The clock is injectable so tests drive time by hand; times are the clock's (monotonic) seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerSnapshot", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """The breaker's state for /health and metrics, taken atomically.

    `opened_at` is the clock time the breaker last opened (None while it has never opened since the
    last close); `open_for_s` is how long it has been open or half-open (0.0 when closed).
    `times_opened` counts every transition into `open` since construction (a Prometheus counter).
    """

    state: BreakerState
    consecutive_failures: int
    opened_at: float | None
    open_for_s: float
    times_opened: int
    failure_threshold: int
    reset_timeout_s: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for the health endpoint."""
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "open_for_s": round(self.open_for_s, 3),
            "times_opened": self.times_opened,
            "failure_threshold": self.failure_threshold,
            "reset_timeout_s": self.reset_timeout_s,
        }


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> half-open (one probe) -> closed or open again.

    Usage by a caller::

        if breaker.allow():
            try:
                store.append(batch)
            except TransientStoreError:
                breaker.record_failure()
                raise
            breaker.record_success()

    Every `allow()` that returned True must be followed by `record_success()` or `record_failure()`;
    in half-open state a probe that never reports is given up after another `reset_timeout_s`, so a
    lost probe (a thread killed mid-call) cannot wedge the breaker half-open forever.
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_timeout_s < 0:
            raise ValueError("reset_timeout_s must be >= 0")
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = CLOSED
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started_at: float | None = None
        self._times_opened = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an expired `open` reads as `open` until someone calls `allow()`."""
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """May the caller try the store now? In half-open state only the one probe may."""
        with self._lock:
            now = self._clock()
            if self._state == CLOSED:
                return True
            # Open: wait out the timeout since opening. Half-open: one probe is out; give up on
            # it (and let another through) if it has not reported back within the same timeout.
            since = self._opened_at if self._state == OPEN else self._probe_started_at
            if since is not None and now - since < self._reset_timeout_s:
                return False
            self._state = HALF_OPEN
            self._probe_started_at = now
            return True

    def record_success(self) -> None:
        """The store answered: close the breaker and forget past failures."""
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._opened_at = None
            self._probe_started_at = None

    def record_failure(self) -> None:
        """A transient failure: count it; open at the threshold, or re-open after a failed probe."""
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self._threshold):
                self._open()

    def snapshot(self) -> BreakerSnapshot:
        """Consistent view of every field, for /health and metrics."""
        with self._lock:
            open_for = 0.0 if self._opened_at is None else max(0.0, self._clock() - self._opened_at)
            return BreakerSnapshot(
                state=self._state,
                consecutive_failures=self._failures,
                opened_at=self._opened_at,
                open_for_s=open_for if self._state != CLOSED else 0.0,
                times_opened=self._times_opened,
                failure_threshold=self._threshold,
                reset_timeout_s=self._reset_timeout_s,
            )

    def _open(self) -> None:
        """Enter `open` now (lock held). A late failure while already open does not restart it."""
        self._state = OPEN
        self._opened_at = self._clock()
        self._probe_started_at = None
        self._times_opened += 1

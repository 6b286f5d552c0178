"""CircuitBreaker state machine, driven by a hand-moved clock."""

from __future__ import annotations

import threading

import pytest

from storage.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout_s=10.0, clock=clock)


def state_of(breaker: CircuitBreaker) -> str:
    """Read the state through a call, so mypy does not narrow it across asserts."""
    return breaker.state


def fail(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert breaker.allow()
        breaker.record_failure()


def test_starts_closed_and_allows(breaker: CircuitBreaker) -> None:
    assert state_of(breaker) == "closed"
    assert breaker.allow()
    snap = breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.opened_at, snap.times_opened) == (
        "closed",
        0,
        None,
        0,
    )


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 2)
    assert state_of(breaker) == "closed"
    fail(breaker, 1)
    assert state_of(breaker) == "open"
    assert not breaker.allow()
    snap = breaker.snapshot()
    assert snap.opened_at == clock.now
    assert snap.consecutive_failures == 3
    assert snap.times_opened == 1


def test_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)
    assert state_of(breaker) == "closed"
    assert breaker.snapshot().consecutive_failures == 2


def test_half_open_lets_exactly_one_probe_through(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(9.999)
    assert not breaker.allow()
    clock.advance(0.001)
    assert breaker.allow()
    assert state_of(breaker) == "half_open"
    assert not breaker.allow()
    assert not breaker.allow()


def test_probe_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    snap = breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.opened_at, snap.open_for_s) == (
        "closed",
        0,
        None,
        0.0,
    )
    assert breaker.allow()
    assert breaker.allow()


def test_probe_failure_reopens_for_a_full_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.allow()
    clock.advance(2)
    breaker.record_failure()
    assert state_of(breaker) == "open"
    assert breaker.snapshot().opened_at == clock.now
    assert breaker.snapshot().times_opened == 2
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_a_lost_probe_does_not_wedge_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    assert breaker.allow()  # this probe never reports back
    clock.advance(5)
    assert not breaker.allow()
    clock.advance(5)
    assert breaker.allow()
    assert state_of(breaker) == "half_open"


def test_late_failure_while_open_does_not_restart_the_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    opened = clock.now
    clock.advance(4)
    breaker.record_failure()  # an attempt that started before the breaker opened
    assert breaker.snapshot().opened_at == opened
    clock.advance(6)
    assert breaker.allow()


def test_open_for_grows_with_the_clock(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(4.5)
    assert breaker.snapshot().open_for_s == pytest.approx(4.5)
    assert breaker.snapshot().as_dict()["state"] == "open"


def test_threshold_one_and_zero_timeout() -> None:
    b = CircuitBreaker(failure_threshold=1, reset_timeout_s=0.0)
    assert b.allow()
    b.record_failure()
    assert state_of(b) == "open"
    assert b.allow()  # timeout 0: the probe is due at once
    assert state_of(b) == "half_open"


@pytest.mark.parametrize(("threshold", "timeout"), [(0, 1.0), (1, -1.0)])
def test_rejects_bad_configuration(threshold: int, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(threshold, timeout)


def test_only_one_probe_under_concurrency(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        allowed = breaker.allow()
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]

"""ResilientAppender on every real store behind FaultyStore: acknowledged means stored exactly once.

The breaker runs on a hand-moved clock and retries sleep through a recorder, so no test waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from storage.base import EventFilter, EventStore, Page
from storage.breaker import CircuitBreaker
from storage.errors import TerminalStoreError
from storage.resilient import ResilientAppender
from storage.spool import Spool, SpoolFullError
from tests.faults import FaultyStore, SimulatedCrash, event_ids, make_batch

MiB = 1024 * 1024
RESET_S = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """One appender over a FaultyStore, with its spool, breaker, clock and recorded sleeps."""

    def __init__(self, store: EventStore, spool_dir: Path, *, attempts: int = 3, threshold: int = 3) -> None:
        self.faulty = FaultyStore(store)
        self.spool_dir = spool_dir
        self.clock = FakeClock()
        self.sleeps: list[float] = []
        self.attempts = attempts
        self.threshold = threshold
        self.spool = Spool(spool_dir, 64 * MiB)
        self.appender = self._build()

    def _build(self, retry_total_s: float | None = None) -> ResilientAppender:
        breaker = CircuitBreaker(self.threshold, RESET_S, clock=self.clock)
        return ResilientAppender(
            self.faulty,
            self.spool,
            breaker,
            retry_attempts=self.attempts,
            retry_max_wait_s=0.5,
            retry_initial_wait_s=0.01,
            sleep=self.sleeps.append,
            retry_total_s=retry_total_s,
        )

    def restart(self) -> None:
        """What a process restart does: a fresh spool object over the same directory, new appender."""
        self.spool.close()
        self.spool = Spool(self.spool_dir, 64 * MiB)
        self.appender = self._build()

    def reconfigure(self, retry_total_s: float) -> None:
        self.appender = self._build(retry_total_s)

    def breaker_state(self) -> str:
        return self.appender.breaker.state

    def stored_ids(self) -> list[str]:
        table = self.faulty.inner.query(EventFilter(), Page(limit=100_000, order="asc"))
        return [str(v) for v in table.column("event_id").to_pylist()]

    def total(self) -> int:
        return self.faulty.inner.stats(EventFilter(), 10).total_events

    def assert_exactly(self, ids: list[str]) -> None:
        stored = self.stored_ids()
        assert len(stored) == len(set(stored)), "a duplicate event is visible"
        assert sorted(stored) == sorted(ids)
        assert self.total() == len(ids)


@pytest.fixture
def h(store: EventStore, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(store, tmp_path / "spool")
    try:
        yield harness
    finally:
        harness.faulty.resume()
        harness.spool.close()


def test_transient_failures_are_retried_then_stored(h: Harness) -> None:
    h.faulty.fail_next(2)
    outcome = h.appender.append(make_batch(20))
    assert (outcome.status, outcome.rows, outcome.entry) == ("stored", 20, None)
    assert outcome.result is not None
    assert outcome.result.stored == 20
    assert h.faulty.append_calls == 3
    assert len(h.sleeps) == 2
    assert all(0 <= s <= 0.5 for s in h.sleeps)
    assert h.breaker_state() == "closed"
    assert h.appender.health_snapshot().stats.retries == 2
    assert h.spool.depth == 0
    h.assert_exactly(event_ids(0, 20))


def test_past_retries_the_batch_is_queued_then_replayed_exactly_once(h: Harness) -> None:
    h.faulty.fail_next(3)
    first = h.appender.append(make_batch(10))
    assert (first.status, first.reason) == ("queued", "retries_exhausted")
    assert first.entry is not None
    assert h.spool.depth == 1
    assert h.total() == 0
    # The store works again, but an earlier batch is queued: this one must not overtake it.
    second = h.appender.append(make_batch(15, start=10))
    assert (second.status, second.reason) == ("queued", "spool_not_empty")
    assert h.faulty.append_calls == 3
    assert h.breaker_state() == "open"  # three consecutive failures = the threshold
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 2
    assert h.spool.depth == 0
    assert h.faulty.committed == ["b-0", "b-10"]
    h.assert_exactly(event_ids(0, 25))
    snap = h.appender.health_snapshot()
    assert (snap.stats.queued_batches, snap.stats.replayed_batches, snap.stats.replayed_rows) == (2, 2, 25)
    assert not snap.degraded


def test_replay_keeps_order_so_the_first_version_wins(h: Harness) -> None:
    h.faulty.go_down()
    h.appender.append(make_batch(1, value="first", batch_id="one"))
    h.appender.append(make_batch(1, value="second", batch_id="two"))
    h.faulty.come_up()
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 2
    event = h.faulty.inner.get_event(event_ids(0, 1)[0])
    assert event.column("new_value").to_pylist() == ["first"]
    h.assert_exactly(event_ids(0, 1))


def test_open_breaker_spools_without_touching_the_store(h: Harness) -> None:
    h.faulty.go_down()
    assert h.appender.append(make_batch(5)).reason == "retries_exhausted"
    assert h.breaker_state() == "open"
    calls = h.faulty.append_calls
    assert h.appender.append(make_batch(5, start=5)).reason == "spool_not_empty"
    assert h.appender.replay_once() == 0  # breaker open: not even a probe before the timeout
    assert h.faulty.append_calls == calls
    snap = h.appender.health_snapshot()
    assert snap.degraded
    assert snap.spool.depth == 2
    assert snap.last_error is not None
    assert "store down" in snap.last_error
    json.dumps(snap.as_dict())

    h.clock.now += RESET_S
    assert h.appender.replay_once() == 0  # the one probe fails: open again
    assert h.faulty.append_calls == calls + 1
    assert h.breaker_state() == "open"

    h.faulty.come_up()
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 2
    assert h.breaker_state() == "closed"
    assert not h.appender.health_snapshot().degraded
    h.assert_exactly(event_ids(0, 10))
    # Healthy and drained: the next batch goes straight to the store again.
    assert h.appender.append(make_batch(5, start=10)).status == "stored"
    h.assert_exactly(event_ids(0, 15))


def test_breaker_open_with_empty_spool_queues_at_once(h: Harness) -> None:
    for _ in range(h.threshold):
        h.appender.breaker.record_failure()
    outcome = h.appender.append(make_batch(3))
    assert (outcome.status, outcome.reason) == ("queued", "breaker_open")
    assert h.faulty.append_calls == 0
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 1
    h.assert_exactly(event_ids(0, 3))


def test_terminal_error_propagates_and_is_not_spooled(h: Harness) -> None:
    h.faulty.fail_terminally()
    with pytest.raises(TerminalStoreError):
        h.appender.append(make_batch(4))
    assert h.faulty.append_calls == 1  # not retried
    assert h.spool.depth == 0
    assert h.breaker_state() == "closed"
    assert h.total() == 0


def test_terminal_refusal_during_replay_is_set_aside_and_replay_goes_on(h: Harness) -> None:
    h.faulty.go_down()
    h.appender.append(make_batch(4, batch_id="bad"))
    h.appender.append(make_batch(6, start=4, batch_id="good"))
    h.faulty.come_up()
    h.faulty.fail_terminally()
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 1
    assert h.spool.depth == 0
    snap = h.appender.health_snapshot()
    assert (snap.spool.rejected_files, snap.stats.rejected_batches) == (1, 1)
    assert snap.degraded  # an operator has to look at rejected/
    assert len(list((h.spool_dir / "rejected").iterdir())) == 1
    h.assert_exactly(event_ids(4, 6))


def test_crash_between_store_append_and_spool_remove_does_not_duplicate(h: Harness) -> None:
    h.faulty.go_down()
    h.appender.append(make_batch(30))
    h.appender.append(make_batch(10, start=30))
    h.faulty.come_up()
    h.clock.now += RESET_S
    h.faulty.crash_after_commit_next()
    with pytest.raises(SimulatedCrash):
        h.appender.replay_once()
    assert h.total() == 30  # the first entry is in the store...
    assert h.spool.depth == 2  # ...and still in the spool
    h.restart()
    assert h.spool.depth == 2
    assert h.appender.replay_once() == 2
    assert h.faulty.committed == ["b-0", "b-0", "b-30"]
    assert h.spool.depth == 0
    h.assert_exactly(event_ids(0, 40))


def test_lost_acknowledgement_is_retried_without_duplicates(h: Harness) -> None:
    h.faulty.lose_ack_next(1)
    assert h.appender.append(make_batch(12)).status == "stored"
    assert h.faulty.committed == ["b-0", "b-0"]
    h.assert_exactly(event_ids(0, 12))


def test_every_ack_lost_queues_and_replay_does_not_duplicate(h: Harness) -> None:
    h.faulty.lose_ack_next(3)
    assert h.appender.append(make_batch(8)).status == "queued"
    h.clock.now += RESET_S
    assert h.appender.replay_once() == 1
    assert len(h.faulty.committed) == 4
    h.assert_exactly(event_ids(0, 8))


def test_a_hanging_store_gets_no_new_attempt_after_the_total_budget(h: Harness) -> None:
    h.reconfigure(retry_total_s=0.01)
    h.faulty.hang(0.05, then_fail=True)  # longer than the whole retry budget
    outcome = h.appender.append(make_batch(3))
    assert (outcome.status, outcome.reason) == ("queued", "retries_exhausted")
    assert h.faulty.append_calls == 1
    h.faulty.heal()
    assert h.appender.replay_once() == 1
    h.assert_exactly(event_ids(0, 3))


def test_spool_full_while_store_down_is_not_acknowledged(store: EventStore, tmp_path: Path) -> None:
    faulty = FaultyStore(store)
    with Spool(tmp_path / "tiny", 1000) as spool:
        appender = ResilientAppender(
            faulty, spool, CircuitBreaker(1, RESET_S), retry_attempts=1, retry_max_wait_s=0.0
        )
        faulty.go_down()
        with pytest.raises(SpoolFullError):
            appender.append(make_batch(50))
        assert spool.depth == 0


def test_only_one_replay_runs_at_a_time(h: Harness) -> None:
    h.faulty.go_down()
    h.appender.append(make_batch(2))
    h.faulty.come_up()
    h.clock.now += RESET_S
    h.faulty.pause()
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(h.appender.replay_once()))
    worker.start()
    assert h.faulty.entered.wait(timeout=30)
    assert h.appender.replay_once() == 0  # the other thread holds the replay
    h.faulty.resume()
    worker.join()
    assert results == [1]
    h.assert_exactly(event_ids(0, 2))


def test_concurrent_appends_through_an_outage_store_everything_once(h: Harness) -> None:
    batches = [make_batch(5, start=i * 5) for i in range(24)]
    h.faulty.go_down()
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(mine: list[pa.Table]) -> None:
        for batch in mine:
            result = h.appender.append(batch)
            with lock:
                outcomes.append(result.status)

    threads = [threading.Thread(target=worker, args=(batches[w::4],)) for w in range(4)]
    for t in threads[:2]:
        t.start()
    for t in threads[:2]:
        t.join()
    h.faulty.come_up()
    h.clock.now += RESET_S
    replayer = threading.Thread(target=h.appender.replay_once)
    replayer.start()
    for t in threads[2:]:
        t.start()
    for t in (*threads[2:], replayer):
        t.join()
    h.appender.replay_once()
    assert len(outcomes) == 24
    assert h.spool.depth == 0
    h.assert_exactly(event_ids(0, 120))


def test_replay_with_an_empty_spool_does_nothing(h: Harness) -> None:
    assert h.appender.replay_once() == 0
    assert h.faulty.append_calls == 0

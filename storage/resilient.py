"""Append to the store, or, when it is unavailable, to the durable spool, and replay it later.

The promise: once a batch is acknowledged (stored *or* queued) every event in it becomes queryable
exactly once, whatever happens next. How:

* `append` tries the store with bounded tenacity retries (exponential backoff with full jitter,
  at most `retry_attempts` attempts and `retry_total_s` seconds) behind a circuit breaker. Only
  `TransientStoreError` is retried. When the retries run out or the breaker is open, the batch is
  written to the spool (fsync'd before `append` returns) and reported `queued`.
* `TerminalStoreError` propagates and is *not* spooled: asking again would fail forever.
* Order: while the spool holds anything, new batches are spooled too, behind it. Identity is
  event_id and "the first stored version wins", so a later batch must not overtake an earlier
  acknowledged one carrying the same id. (Concurrent `append` calls have no order between them.)
* `replay_once` appends spool entries in sequence order, one attempt each, and removes an entry
  only after its append returned. A crash between the two re-appends the entry at the next start;
  the store drops rows whose event_id it already holds, so nothing is duplicated.
* A spool entry the store refuses terminally is moved to `rejected/` (kept, logged, counted), so
  one bad batch cannot block the queue; an unreadable one goes to `corrupt/`.

Everything here is synchronous and thread-safe: the writer calls `append` from a worker thread,
the API runs `replay_once` periodically in another. A hung store call cannot be interrupted from
here: timeouts belong to the driver (clickhouse-connect's send_receive_timeout); retries stop
starting new attempts once `retry_total_s` has passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from storage.base import AppendResult, EventStore
from storage.breaker import CLOSED, BreakerSnapshot, CircuitBreaker
from storage.errors import TerminalStoreError, TransientStoreError
from storage.spool import Spool, SpoolCorruptError, SpoolEntry, SpoolSnapshot

__all__ = ["Outcome", "QueueReason", "ResilienceSnapshot", "ResilienceStats", "ResilientAppender"]

QueueReason = Literal["breaker_open", "retries_exhausted", "spool_not_empty"]
#: Told the duration (s) and the exception (None on success) of each store append.
StoreCallObserver = Callable[[float, BaseException | None], None]
_Step = Literal["replayed", "skipped", "stop"]

log = structlog.get_logger(__name__)


class _BreakerOpenError(Exception):
    """Internal: the breaker refused the attempt (not retried; the batch goes to the spool)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an appended batch: `stored` (with the store's result) or `queued` (spooled).

    Both are acknowledgements: a queued batch is on disk and will be replayed. HTTP maps `stored`
    to 200/207 and `queued` to 202.
    """

    status: Literal["stored", "queued"]
    rows: int
    result: AppendResult | None = None
    entry: SpoolEntry | None = None
    reason: QueueReason | None = None

    @property
    def queued(self) -> bool:
        """True when the batch went to the spool."""
        return self.status == "queued"


@dataclass(slots=True)
class ResilienceStats:
    """Counters since construction (Prometheus counters); batches unless named rows."""

    stored_batches: int = 0
    queued_batches: int = 0
    queued_rows: int = 0
    retries: int = 0
    replayed_batches: int = 0
    replayed_rows: int = 0
    rejected_batches: int = 0
    corrupt_batches: int = 0


@dataclass(frozen=True, slots=True)
class ResilienceSnapshot:
    """The write path's state for /health and metrics.

    `degraded` when the breaker is not closed, the spool holds batches, or files sit in
    quarantine (`corrupt/`, `rejected/`) waiting for an operator.
    """

    breaker: BreakerSnapshot
    spool: SpoolSnapshot
    last_error: str | None
    last_error_at: dt.datetime | None
    stats: ResilienceStats = field(default_factory=ResilienceStats)

    @property
    def degraded(self) -> bool:
        """Whether /health should say `degraded` on account of the write path."""
        quarantined = self.spool.corrupt_files + self.spool.rejected_files
        return self.breaker.state != CLOSED or self.spool.depth > 0 or quarantined > 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for the health endpoint."""
        return {
            "status": "degraded" if self.degraded else "ok",
            "breaker": self.breaker.as_dict(),
            "spool": self.spool.as_dict(),
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
        }


class ResilientAppender:
    """Store-or-spool appends and in-order replay, around one store, spool and breaker."""

    def __init__(
        self,
        store: EventStore,
        spool: Spool,
        breaker: CircuitBreaker,
        *,
        retry_attempts: int,
        retry_max_wait_s: float,
        retry_initial_wait_s: float = 0.05,
        retry_total_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_store_call: StoreCallObserver | None = None,
    ) -> None:
        """Wire the parts; nothing is attempted until `append` or `replay_once`.

        Args:
            store: the engine, opened.
            spool: where batches go while the store is unavailable.
            breaker: shared view of the store's availability (also read by /health).
            retry_attempts: attempts per `append`, the first included (>= 1).
            retry_max_wait_s: cap of one backoff wait.
            retry_initial_wait_s: scale of the first backoff wait (doubles each retry, jittered).
            retry_total_s: stop starting attempts after this long; default attempts x max wait.
            sleep: how to wait between attempts (tests pass a no-op).
            on_store_call: told the duration and the error (None on success) of every store
                append this appender makes, replays included (metrics).
        """
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be >= 1")
        self._store = store
        self._on_store_call = on_store_call
        self._spool = spool
        self._breaker = breaker
        total = retry_total_s if retry_total_s is not None else retry_attempts * retry_max_wait_s
        self._retrying = Retrying(
            stop=stop_after_attempt(retry_attempts) | stop_after_delay(total),
            wait=wait_random_exponential(multiplier=retry_initial_wait_s, max=retry_max_wait_s),
            retry=retry_if_exception_type(TransientStoreError),
            reraise=True,
            sleep=sleep,
            before_sleep=self._before_retry,
        )
        self._replay_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = ResilienceStats()
        self._last_error: str | None = None
        self._last_error_at: dt.datetime | None = None

    @property
    def spool(self) -> Spool:
        """The spool this appender writes to."""
        return self._spool

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker guarding the store."""
        return self._breaker

    def append(self, table: pa.Table) -> Outcome:
        """Store `table`, or spool it durably; either way it is acknowledged when this returns.

        Raises:
            TerminalStoreError: the store refused the batch for good (not spooled).
            SpoolFullError: the store is unavailable and the spool has no room (not acknowledged).
            OSError: the spool's disk failed (not acknowledged).
        """
        if self._spool.depth > 0:
            return self._enqueue(table, "spool_not_empty")
        try:
            result = self._retrying.copy()(self._try_store, table)  # a copy per call: per-call state
        except _BreakerOpenError:
            return self._enqueue(table, "breaker_open")
        except TransientStoreError:
            return self._enqueue(table, "retries_exhausted")
        with self._stats_lock:
            self._stats.stored_batches += 1
        return Outcome("stored", table.num_rows, result=result)

    def replay_once(self, max_entries: int | None = None) -> int:
        """Replay spooled batches in order while the store takes them; the number replayed.

        One attempt per entry, no backoff here: the caller's periodic schedule is the retry, and
        the breaker keeps a down store from being probed more than once per reset timeout. Stops
        at the first transient failure, at an empty spool, or after `max_entries`. Returns 0 at
        once if another thread is replaying.
        """
        if not self._replay_lock.acquire(blocking=False):
            return 0
        try:
            replayed = 0
            while max_entries is None or replayed < max_entries:
                entry = self._spool.first()
                if entry is None:
                    break
                step = self._replay_entry(entry)
                if step == "stop":
                    break
                if step == "replayed":
                    replayed += 1
            return replayed
        finally:
            self._replay_lock.release()

    def health_snapshot(self) -> ResilienceSnapshot:
        """Breaker, spool, last error and counters, for /health and /metrics."""
        with self._stats_lock:
            stats = dataclasses.replace(self._stats)
            last_error, last_error_at = self._last_error, self._last_error_at
        return ResilienceSnapshot(
            breaker=self._breaker.snapshot(),
            spool=self._spool.snapshot(),
            last_error=last_error,
            last_error_at=last_error_at,
            stats=stats,
        )

    # -- internals ----------------------------------------------------------------------------

    def _try_store(self, table: pa.Table) -> AppendResult:
        """One attempt behind the breaker; reports the outcome to the breaker."""
        if not self._breaker.allow():
            raise _BreakerOpenError
        try:
            result = self._timed_append(table)
        except TransientStoreError as exc:
            self._breaker.record_failure()
            self._note_error(exc)
            raise
        except TerminalStoreError as exc:
            self._breaker.record_success()  # the store answered: it is up, the batch is bad
            self._note_error(exc)
            raise
        self._breaker.record_success()
        return result

    def _enqueue(self, table: pa.Table, reason: QueueReason) -> Outcome:
        """Spool the batch durably and report it queued."""
        entry = self._spool.write(table)
        with self._stats_lock:
            self._stats.queued_batches += 1
            self._stats.queued_rows += table.num_rows
        log.warning("store.batch_spooled", reason=reason, seq=entry.seq, rows=entry.rows, bytes=entry.size)
        return Outcome("queued", table.num_rows, entry=entry, reason=reason)

    def _replay_entry(self, entry: SpoolEntry) -> _Step:
        """Append one entry and remove it only after the append returned."""
        try:
            table = self._spool.read(entry)
        except SpoolCorruptError:
            with self._stats_lock:
                self._stats.corrupt_batches += 1
            return "skipped"
        if not self._breaker.allow():
            return "stop"
        try:
            self._timed_append(table)
        except TransientStoreError as exc:
            self._breaker.record_failure()
            self._note_error(exc)
            return "stop"
        except TerminalStoreError as exc:
            self._breaker.record_success()
            self._note_error(exc)
            self._spool.reject(entry, reason=f"{type(exc).__name__}: {exc}")
            with self._stats_lock:
                self._stats.rejected_batches += 1
            return "skipped"
        self._breaker.record_success()
        self._spool.remove(entry)
        with self._stats_lock:
            self._stats.replayed_batches += 1
            self._stats.replayed_rows += entry.rows
        log.info("store.spool_replayed", seq=entry.seq, rows=entry.rows, remaining=self._spool.depth)
        return "replayed"

    def _timed_append(self, table: pa.Table) -> AppendResult:
        """One store append, reported to the observer (duration, error or None)."""
        started = time.perf_counter()
        try:
            result = self._store.append(table)
        except Exception as exc:
            if self._on_store_call is not None:
                self._on_store_call(time.perf_counter() - started, exc)
            raise
        if self._on_store_call is not None:
            self._on_store_call(time.perf_counter() - started, None)
        return result

    def _note_error(self, exc: BaseException) -> None:
        with self._stats_lock:
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._last_error_at = dt.datetime.now(dt.UTC)

    def _before_retry(self, state: RetryCallState) -> None:
        """Count and log each retry (tenacity calls this before sleeping)."""
        with self._stats_lock:
            self._stats.retries += 1
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info("store.append_retry", attempt=state.attempt_number, wait_s=round(wait, 3))

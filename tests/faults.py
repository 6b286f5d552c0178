"""Fault injection around a REAL store, plus a deterministic event-batch builder.

`FaultyStore` implements the `EventStore` Protocol by delegating every call to the store it wraps
(never a mock), with switchable faults on the write path:

* `fail_next(n)`: the next n appends raise TransientStoreError without touching the store;
* `fail_terminally(n)`: the next n appends raise TerminalStoreError;
* `hang(seconds)`: each append sleeps first (then proceeds, or raises a transient timeout);
* `go_down()` / `come_up()`: appends, reads and health fail (transient) until told otherwise;
* `lose_ack_next(n)`: the append is committed to the store, then a TransientStoreError is raised,
  as when the connection drops after the server committed;
* `crash_after_commit_next(n)`: committed, then `SimulatedCrash` (a BaseException) escapes,
  standing in for the process dying between the store's commit and the caller's bookkeeping;
* `pause()` / `resume()`: appends block at entry (setting `entered`) until resumed, so a test can
  act while a store call is known to be in flight, without sleeping.

`committed` records the `batch_id` of each append the inner store accepted, in order.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from storage.base import (
    AppendResult,
    EventFilter,
    EventStore,
    ExportResult,
    HealthCheck,
    Page,
)
from storage.errors import TerminalStoreError, TransientStoreError
from storage.forwarding import ForwardingStore
from storage.schema import EVENT_SCHEMA, conform

__all__ = ["FaultyStore", "PausingExports", "SimulatedCrash", "event_ids", "make_batch"]

T = TypeVar("T")
_BASE_TS = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
_NAMESPACE = uuid.UUID("6f1c0b8e-3d2a-4b7e-9f0a-2c4d6e8f1a3b")


class SimulatedCrash(BaseException):
    """Stands in for the process dying: a BaseException, so `except Exception` cannot swallow it."""


class FaultyStore(ForwardingStore):
    """An `EventStore` that delegates to `inner` and misbehaves on request; thread-safe."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self._transient = 0
        self._terminal = 0
        self._lost_acks = 0
        self._crashes = 0
        self._down = False
        self._hang_s = 0.0
        self._hang_fails = False
        self._gate = threading.Event()
        self._gate.set()
        self.entered = threading.Event()
        self.append_calls = 0
        self.committed: list[str] = []

    # -- switches -----------------------------------------------------------------------------

    def fail_next(self, n: int) -> None:
        """The next `n` appends raise TransientStoreError."""
        with self._lock:
            self._transient = n

    def fail_terminally(self, n: int = 1) -> None:
        """The next `n` appends raise TerminalStoreError."""
        with self._lock:
            self._terminal = n

    def hang(self, seconds: float, *, then_fail: bool = False) -> None:
        """Each append first sleeps `seconds`; with `then_fail` it then raises a transient timeout."""
        with self._lock:
            self._hang_s, self._hang_fails = seconds, then_fail

    def go_down(self) -> None:
        """Every call but open/close fails transiently until `come_up`."""
        with self._lock:
            self._down = True

    def come_up(self) -> None:
        """Undo `go_down`."""
        with self._lock:
            self._down = False

    def lose_ack_next(self, n: int = 1) -> None:
        """The next `n` appends commit, then raise TransientStoreError (the answer got lost)."""
        with self._lock:
            self._lost_acks = n

    def crash_after_commit_next(self, n: int = 1) -> None:
        """The next `n` appends commit, then raise SimulatedCrash."""
        with self._lock:
            self._crashes = n

    def pause(self) -> None:
        """Block every append at entry until `resume`; `entered` is set when one is blocked."""
        self.entered.clear()
        self._gate.clear()

    def resume(self) -> None:
        """Let blocked and future appends through."""
        self._gate.set()

    def heal(self) -> None:
        """Clear every fault."""
        with self._lock:
            self._transient = self._terminal = self._lost_acks = self._crashes = 0
            self._down, self._hang_s, self._hang_fails = False, 0.0, False

    # -- the Protocol -------------------------------------------------------------------------

    def append(self, batch: pa.Table, /) -> AppendResult:
        with self._lock:
            self.append_calls += 1
            hang_s, hang_fails = self._hang_s, self._hang_fails
        self.entered.set()
        self._gate.wait()
        if hang_s > 0:
            time.sleep(hang_s)
            if hang_fails:
                raise TransientStoreError("injected: timed out")
        self._fail_before_commit()
        result = self.inner.append(batch)
        with self._lock:
            self.committed.append(str(batch.column("batch_id")[0]) if batch.num_rows else "")
            lost, crash = self._lost_acks > 0, self._crashes > 0
            self._lost_acks = max(0, self._lost_acks - 1)
            self._crashes = max(0, self._crashes - 1)
        if crash:
            raise SimulatedCrash("injected: process died after the store committed")
        if lost:
            raise TransientStoreError("injected: connection lost after commit")
        return result

    def health(self) -> HealthCheck:
        with self._lock:
            if self._down:
                return HealthCheck(ok=False, detail="injected: store down")
        return self.inner.health()

    # -- internals ----------------------------------------------------------------------------

    def _fail_before_commit(self) -> None:
        with self._lock:
            if self._down:
                raise TransientStoreError("injected: store down")
            if self._terminal > 0:
                self._terminal -= 1
                raise TerminalStoreError("injected: batch refused")
            if self._transient > 0:
                self._transient -= 1
                raise TransientStoreError("injected: transient failure")

    def _forward(self, call: Callable[[], T]) -> T:
        """Reads fail while the store is "down"; appends take their own path above."""
        with self._lock:
            if self._down:
                raise TransientStoreError("injected: store down")
        return call()


class PausingExports(ForwardingStore):
    """The real store; the first export (or its first page read) waits until released.

    `entered` tells the export came. The archive tier's exporter reads pages through `query`
    rather than the hot store's `export`, so the first page read pauses too.
    """

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = True

    def _pause_once(self) -> None:
        if self._first:
            self._first = False
            self.entered.set()
            assert self.release.wait(60), "the test never released the export"

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        self._pause_once()
        return self.inner.export(flt, destination)

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        self._pause_once()
        return self.inner.query(flt, page)


def event_ids(start: int, n: int) -> list[str]:
    """The deterministic ids `make_batch(n, start=start)` gives its rows."""
    return [str(uuid.uuid5(_NAMESPACE, f"event-{i}")) for i in range(start, start + n)]


def make_batch(
    n: int, *, start: int = 0, user: str = "alice", value: str | None = None, batch_id: str | None = None
) -> pa.Table:
    """`n` valid events in EVENT_SCHEMA, built column-wise; row i has a fixed id and timestamp.

    Batches with overlapping `[start, start + n)` ranges share ids, i.e. are re-sends; `value`
    overrides new_value (to tell two versions of the same event apart). batch_id defaults to `b-<start>`.
    """
    idx = range(start, start + n)
    ts = [_BASE_TS + dt.timedelta(seconds=i) for i in idx]
    columns: dict[str, list[object]] = {
        "event_id": list(event_ids(start, n)),
        "timestamp": list(ts),
        "event_type": ["cell_change"] * n,
        "user_name": [user] * n,
        "machine_name": ["PC-01"] * n,
        "session_id": [f"s-{i // 50}" for i in idx],
        "workbook_name": ["budget.xlsx"] * n,
        "sheet_name": ["Q1"] * n,
        "cell_address": [f"A{i % 100 + 1}" for i in idx],
        "old_value": [str(i) for i in idx],
        "new_value": [value if value is not None else str(i + 1) for i in idx],
        "formula": [None] * n,
        "correlation_id": [None] * n,
        "attributes": [[("AddinVersion", '"3.4.1.0"')]] * n,
        "received_at": [_BASE_TS] * n,
        "batch_id": [batch_id or f"b-{start}"] * n,
    }
    given = pa.schema([EVENT_SCHEMA.field(name) for name in columns])
    return conform(pa.Table.from_pydict(columns, schema=given))  # columns added since: null

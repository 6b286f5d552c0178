"""Appends against moves: a late event never slips between a month's reconcile and its drop.

Why: the mover reconciles the hot month with the archived files, commits the manifest, then drops
the hot month. An append of that month between the reconcile and the drop would be dropped with
it, never archived. So the mover freezes the month for those steps: appends touching it wait
(about a second), then see the committed manifest and are deduplicated against the archive.
The embedded engine and the Parquet store have exactly one writer process, this one, so the
freeze covers every writer (a ClickHouse server shared by replicas is refused by the mover).

The ingest path must not pay for this: a batch whose rows all lie at or after the horizon (the
end of the newest month that is archived or being archived) takes the fast path, one counter
under a lock. Only batches reaching below it are split by month, wait for frozen months, and are
looked up in the archive. Raising the horizon waits for fast-path appends already running.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MonthGate", "ViewLock"]


class MonthGate:
    """Admission of appends by month; the mover's freeze."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._horizon_us = -(1 << 62)
        self._raising = False
        self._fast = 0
        self._active: Counter[int] = Counter()
        self._frozen: set[int] = set()

    @property
    def horizon_us(self) -> int:
        """Rows at or after this instant need no archive lookup."""
        with self._cond:
            return self._horizon_us

    def raise_horizon(self, horizon_us: int) -> None:
        """Move the horizon up to `horizon_us` (never down), once fast appends in flight finished."""
        with self._cond:
            if horizon_us <= self._horizon_us:
                return
            while self._raising:
                self._cond.wait()
            self._raising = True
            try:
                while self._fast:
                    self._cond.wait()
                self._horizon_us = horizon_us
            finally:
                self._raising = False
                self._cond.notify_all()

    @contextmanager
    def admit_fast(self, min_us: int) -> Iterator[bool]:
        """True inside: the batch (earliest row `min_us`) is past the horizon and may go straight in."""
        with self._cond:
            while self._raising:
                self._cond.wait()
            fast = min_us >= self._horizon_us
            if fast:
                self._fast += 1
        try:
            yield fast
        finally:
            if fast:
                with self._cond:
                    self._fast -= 1
                    self._cond.notify_all()

    @contextmanager
    def admit_months(self, months: set[int]) -> Iterator[None]:
        """Hold `months` open for an append: waits while any is frozen."""
        with self._cond:
            while months & self._frozen:
                self._cond.wait()
            self._active.update(months)
        try:
            yield
        finally:
            with self._cond:
                self._active.subtract(months)
                self._cond.notify_all()

    @contextmanager
    def frozen(self, month: int) -> Iterator[None]:
        """No append of `month` runs inside (those running are waited for, new ones wait)."""
        with self._cond:
            while month in self._frozen:
                self._cond.wait()
            self._frozen.add(month)
            while self._active[month] > 0:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._frozen.discard(month)
                self._cond.notify_all()


class ViewLock:
    """Reads share it; a move's commit-and-drop holds it alone, so no read sees a month twice or not at all."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """One read: waits while a move swaps tiers (and while one waits to)."""
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The swap: waits for reads in flight, holds new ones back."""
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

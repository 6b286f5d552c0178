"""A store in a child process, killed (SIGKILL, by itself) at a chosen point of an append.

`python -m tests.storage.crash_child URL load POINT`: open the store at URL, append the first
batch (answered), then append the unanswered batch with a crash hook at POINT: the process kills
itself there, so nothing after that point runs, exactly as with an outside kill -9 at that
instant. The hooks wrap the store's own real objects (its ClickHouse client, its Parquet file
set); nothing is replaced by a fake. Exit code 3 means the hook never fired.

`python -m tests.storage.crash_child URL check POINT`: open the store again (a fresh process, as after
a restart), check that what it holds agrees with the oracle, resend the unanswered batch inside a
bigger append with new events, and check again: every id once, every figure exact. Exit 0 or 1.
Points named ch_shared_* run the store as one of several writers (reads with FINAL), and their
check also inserts copies of the resent batch as a writer racing past the lookup would.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from storage.base import EventStore
from storage.clickhouse.store import ClickHouseStore
from storage.factory import create_store
from tests.contract.agreement import assert_store_agrees, stored_rows
from tests.contract.events import Row, event, table
from tests.storage.log.storekit import assert_log_agrees

#: The last day of March: the unanswered batch runs past midnight into April (half and half), so it
#: is two parts (ClickHouse) or two files (Parquet), committed one after the other or at once.
START = dt.datetime(2024, 3, 31, 3, 40, tzinfo=dt.UTC)


def rows(first: int, count: int) -> list[Row]:
    """Events 23 minutes apart, sessions and users spanning the batches, some without a workbook."""
    return [
        event(
            i,
            timestamp=START + dt.timedelta(minutes=23 * i),
            event_type=("cell_change", "formula_change", "sheet_add", "workbook_save")[i % 4],
            user_name=f"CORP\\u{i % 5}",
            machine_name=None if i % 6 == 0 else f"PC-{i % 3}",
            session_id=None if i % 9 == 0 else f"s-{i % 4}",
            workbook_name=None if i % 5 == 0 else f"book{i % 3}.xlsx",
        )
        for i in range(first, first + count)
    ]


BEFORE, UNANSWERED, LATER = rows(1, 40), rows(41, 25), rows(66, 15)


def die() -> None:
    """What kill -9 does: no cleanup, no flush, no finally."""
    os.kill(os.getpid(), signal.SIGKILL)


class Hooked:
    """A real object whose method `name` runs `around(real_method, *args)` instead."""

    def __init__(self, real: Any, name: str, around: Callable[..., Any]) -> None:
        self._real = real
        self._name = name
        self._around = around

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._real, attr)
        if attr != self._name:
            return method
        return lambda *args, **kwargs: self._around(method, *args, **kwargs)


def _after(real: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    real(*args, **kwargs)
    die()


def _before(real: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    die()


def _first_month_only(real: Callable[..., Any], name: str, rows_: Any, **kwargs: Any) -> Any:
    """The engine commits one part per month: commit the first month's, then die before the next.

    A store keeping the transparency log inserts one month per call (its leaves in month order):
    the first call is let through and the second dies. Otherwise one call holds both months.
    """
    months = {m.strftime("%Y%m") for m in rows_.column("timestamp").to_pylist()}
    if len(months) == 1:
        if getattr(_first_month_only, "done", False):
            die()
        _first_month_only.done = True  # type: ignore[attr-defined]
        return real(name, rows_, **kwargs)
    first = min(months)
    keep = [m.strftime("%Y%m") == first for m in rows_.column("timestamp").to_pylist()]
    assert 0 < sum(keep) < len(keep), "the unanswered batch must span two months"
    real(name, rows_.filter(keep), **kwargs)
    die()


def _random_moment(real: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Die at a random instant while the real call runs (wherever inside the engine it is)."""
    timer = threading.Timer(random.uniform(0.0, 0.03), die)
    timer.start()
    real(*args, **kwargs)
    timer.join()  # the call returned first: die right after it, still unanswered
    die()


def _first_file_only(real: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Let the first month's file be written, die when the second is about to be."""
    if getattr(_first_file_only, "done", False):
        die()
    _first_file_only.done = True  # type: ignore[attr-defined]
    return real(*args, **kwargs)


POINTS: dict[str, tuple[str, str, Callable[..., Any]]] = {
    # name: (the store's attribute whose method is hooked, "" for the store itself; method; hook)
    "ch_before_insert": ("_client", "insert_arrow", _before),
    "ch_after_insert": ("_client", "insert_arrow", _after),
    "ch_one_month_committed": ("_client", "insert_arrow", _first_month_only),
    "ch_random_moment": ("_client", "insert_arrow", _random_moment),
    # Several writers (an HTTP server shared by API replicas; FINAL at read): the same points.
    "ch_shared_after_insert": ("_client", "insert_arrow", _after),
    "ch_shared_one_month_committed": ("_client", "insert_arrow", _first_month_only),
    "pq_first_file_written": ("_files", "write", _first_file_only),
    "pq_files_durable_not_committed": ("_files", "commit", _before),
    "pq_committed_not_answered": ("_files", "commit", _after),
    "pq_random_moment": ("", "_commit", _random_moment),
    # The transparency log: the events (and their leaf columns) committed, the tree files not yet
    # extended (storage.log.store_log: the store calls `committed` after its commit returned).
    "ch_log_committed_not_in_tree": ("transparency_log", "committed", _before),
    "pq_log_committed_not_in_tree": ("transparency_log", "committed", _before),
}


def load(store: EventStore, point: str) -> int:
    store.append(table(BEFORE))
    attribute, method, hook = POINTS[point]
    if attribute:
        setattr(store, attribute, Hooked(getattr(store, attribute), method, hook))
    else:
        real = getattr(store, method)
        setattr(store, method, lambda *args, **kwargs: hook(real, *args, **kwargs))
    store.append(table(UNANSWERED))
    return 3  # the hook never fired


def check(store: EventStore, point: str) -> int:
    known = {r["event_id"]: r for r in [*BEFORE, *UNANSWERED]}
    held = [known[r["event_id"]] for r in stored_rows(store)]
    missing = {r["event_id"] for r in BEFORE} - {r["event_id"] for r in held}
    assert not missing, f"{len(missing)} answered events lost"
    assert_store_agrees(store, held)  # before the resend: figures agree with what is stored
    assert_log_agrees(store, len(held))
    store.append(table([*LATER[:7], *UNANSWERED, *LATER[7:]]))
    assert_store_agrees(store, [*BEFORE, *UNANSWERED, *LATER])
    assert_log_agrees(store, len(BEFORE) + len(UNANSWERED) + len(LATER))
    if isinstance(store, ClickHouseStore) and not store.single_writer:
        store._insert(table(UNANSWERED))  # what a writer racing past the lookup leaves: copies
        assert_store_agrees(store, [*BEFORE, *UNANSWERED, *LATER])  # FINAL and idempotent sessions
    print(f"held {len(held) - len(BEFORE)} of {len(UNANSWERED)} unanswered before the resend", flush=True)
    return 0


def main(argv: list[str]) -> int:
    url, phase, point = argv
    store = ClickHouseStore(url, single_writer=False) if point.startswith("ch_shared") else create_store(url)
    store.open()
    try:
        return load(store, point) if phase == "load" else check(store, point)
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

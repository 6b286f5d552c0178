"""The write path's life: build it, keep the store opening and the spool replaying, shut it down.

Built once per app by the lifespan (`start`), torn down by `stop`:

    requests -> GroupCommitWriter -> ResilientAppender -> DeferredOpenStore -> store
                                           └─(store unavailable / breaker open)─> Spool

* The store is opened in the background (`_keep_opening`, jittered backoff up to
  `store_open_retry_max_s`), so the service starts and takes batches (into the spool) while its
  database is unreachable; the DDL is applied by the store's `open` once it answers. Startup waits
  for the first attempt only, at most `FIRST_OPEN_WAIT_S`.
* `_keep_replaying` replays the spool into the store every `replay_interval_s` once the store is
  open; the breaker limits probes of a store that is still down.
* `stop`: new requests are refused (`draining`), the writer drains (bounded), one last replay runs
  (bounded, one entry at a time), then the spool and the store are closed. A store call still
  hanging when a bound expires is left alone (neither store nor spool is closed under it): the
  process is exiting anyway, and nothing it holds was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from api import tiers
from api.logging import get_logger
from api.metrics import Metrics, store_internals_hook
from api.settings import Settings
from api.state import AppState
from storage import tracing
from storage.base import EventStore
from storage.breaker import CLOSED, CircuitBreaker
from storage.deferred import DeferredOpenStore
from storage.errors import TerminalStoreError, TransientStoreError
from storage.resilient import ResilientAppender
from storage.spool import Spool
from storage.writer import GroupCommitWriter

__all__ = ["FIRST_OPEN_WAIT_S", "Runtime", "error_kind", "start", "stop"]

log = get_logger("govtrack.runtime")

#: Startup waits at most this long for the first attempt to open the store, then serves anyway.
FIRST_OPEN_WAIT_S: Final = 3.0
_FIRST_OPEN_BACKOFF_S: Final = 0.25
_FINAL_REPLAY_SHARE: Final = 0.5  # of shutdown_timeout_s, for the last replay at shutdown


def error_kind(exc: BaseException) -> str:
    """A small fixed label set for store errors (metrics)."""
    if isinstance(exc, TransientStoreError):
        return "transient"
    if isinstance(exc, TerminalStoreError):
        return "terminal"
    return "other"


@dataclass
class Runtime:
    """The app state plus the background tasks the lifespan must stop."""

    state: AppState
    owned: bool
    tasks: list[asyncio.Task[None]]


def _store_call_observer(metrics: Metrics) -> Callable[[float, BaseException | None], None]:
    def observe(seconds: float, exc: BaseException | None) -> None:
        metrics.record_store_append(seconds)
        if exc is not None:
            metrics.record_store_error(error_kind(exc))

    return observe


def _gauges(state: AppState) -> Callable[[Metrics], None]:
    """Scrape hook: spool depth/bytes, breaker state, store up, writer backlog."""

    def refresh(metrics: Metrics) -> None:
        spool, breaker = state.appender.spool, state.appender.breaker.state
        metrics.set_spool(files=spool.depth, size_bytes=spool.bytes)
        metrics.set_breaker(breaker)
        metrics.set_store_up(state.deferred.is_open and breaker == CLOSED)
        metrics.set_writer_pending(state.writer.pending_rows)

    return refresh


async def start(settings: Settings, injected: EventStore | None, metrics: Metrics) -> Runtime:
    """Build the write path and start its background tasks; the store need not answer yet."""
    # reads span the archive; appends dedup against it (the CLI's jobs build the same store)
    inner = tiers.tiered(injected, settings) if injected is not None else tiers.configured_store(settings)
    deferred = DeferredOpenStore(tracing.traced(inner))  # spans around store calls when tracing
    spool = await asyncio.to_thread(Spool, settings.spool_dir, settings.spool_max_bytes)
    breaker = CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_reset_timeout_s)
    appender = ResilientAppender(
        deferred,
        spool,
        breaker,
        retry_attempts=settings.retry_attempts_for(inner.name),
        retry_max_wait_s=settings.store_retry_max_wait_s,
        on_store_call=_store_call_observer(metrics),
    )
    writer = GroupCommitWriter(
        appender,
        max_rows=settings.writer_max_rows,
        max_wait_s=settings.writer_max_wait_s,
        max_pending_rows=settings.max_pending_rows,
    )
    writer.start()
    state = AppState(
        settings=settings,
        store=deferred,
        deferred=deferred,
        appender=appender,
        writer=writer,
        metrics=metrics,
        started_monotonic=time.monotonic(),
    )
    metrics.add_scrape_hook(_gauges(state))
    metrics.add_scrape_hook(store_internals_hook(deferred))  # parts, merges, files per month
    first_attempt = asyncio.Event()
    tasks = [
        _task(_keep_opening(deferred, settings, first_attempt), "govtrack-store-opener"),
        _task(_keep_replaying(state), "govtrack-spool-replay"),
        *tiers.archive_tasks(state),
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(first_attempt.wait(), timeout=FIRST_OPEN_WAIT_S)
    log.info(
        "write_path_started",
        store=inner.name,
        store_open=deferred.is_open,
        spool_depth=spool.depth,
        spool_dir=str(spool.directory),
    )
    return Runtime(state=state, owned=injected is None, tasks=tasks)


def _task(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro, name=name)


async def _keep_opening(deferred: DeferredOpenStore, settings: Settings, first: asyncio.Event) -> None:
    """Try to open the store until it opens, with jittered exponential backoff."""
    delay = _FIRST_OPEN_BACKOFF_S
    while True:
        opened = await asyncio.to_thread(deferred.try_open)
        first.set()
        if opened:
            log.info("store_opened", attempts=deferred.open_attempts)
            return
        log.warning("store_open_failed", error=deferred.last_error, retry_in_s=round(delay, 2))
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, settings.store_open_retry_max_s)


async def _keep_replaying(state: AppState) -> None:
    """Replay the spool into the store every `replay_interval_s` once the store is open."""
    while True:
        await asyncio.sleep(state.settings.replay_interval_s)
        await replay_now(state)


async def replay_now(state: AppState, max_entries: int | None = None) -> int:
    """One replay pass (in a worker thread) when there is something to replay; never raises."""
    if not state.deferred.is_open or state.appender.spool.depth == 0:
        return 0
    try:
        return await asyncio.to_thread(state.appender.replay_once, max_entries)
    except Exception as exc:  # a replay bug or disk error must not end the loop
        log.error("spool_replay_failed", error=f"{type(exc).__name__}: {exc}")
        return 0


async def stop(runtime: Runtime) -> None:
    """Refuse new work, drain the writer, replay once more, close spool and store (all bounded)."""
    state, settings = runtime.state, runtime.state.settings
    state.draining = True
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    clean = await _bounded(state.writer.drain_and_stop(), settings.shutdown_timeout_s, "writer_drain")
    if clean:
        clean = await _final_replay(state, settings.shutdown_timeout_s * _FINAL_REPLAY_SHARE)
    state.appender.spool.close()
    if runtime.owned and clean:
        await asyncio.to_thread(state.deferred.close)
    elif runtime.owned:
        log.error("store_left_open", reason="a store call did not finish within the shutdown bound")
    log.info(
        "stopped",
        appends=state.writer.stats.appends,
        rows=state.writer.stats.rows,
        spool_depth=state.appender.spool.depth,
    )


async def _bounded(awaitable: Coroutine[Any, Any, None], timeout_s: float, what: str) -> bool:
    """Wait for `awaitable` up to `timeout_s`; False when it is still running then.

    It is not cancelled: that cannot stop a store call in a worker thread, only hide that one runs.
    """
    step = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({step}, timeout=timeout_s)
    if not done:
        log.error("shutdown_step_timed_out", step=what, timeout_s=timeout_s)
        return False
    step.result()
    return True


async def _final_replay(state: AppState, budget_s: float) -> bool:
    """Replay what the store takes within `budget_s`, one entry per call; False if a call hung."""
    deadline = time.monotonic() + budget_s
    while state.appender.spool.depth and time.monotonic() < deadline:
        call = asyncio.ensure_future(replay_now(state, 1))
        done, _ = await asyncio.wait({call}, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            log.error("shutdown_step_timed_out", step="final_replay", timeout_s=budget_s)
            return False
        if call.result() == 0:
            break
    if state.appender.spool.depth:
        log.warning("spool_kept", depth=state.appender.spool.depth, note="replayed at the next start")
    return True

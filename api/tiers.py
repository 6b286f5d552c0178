"""The archive tier in the service: the tiered store built from settings, and its background job.

`tiered(store, settings)` wraps whatever store the app (or a CLI job) built in
storage.archive.tiers.TieredStore over GOVTRACK_ARCHIVE_URL, so every read answers from both
tiers and every append is deduplicated against the archive. With nothing archived it costs one
comparison per append and per read. `configured_store(settings)` is the store of
GOVTRACK_STORE_URL built exactly as the server builds it (engine memory, GOVTRACK_LOG_*, the
archive tier): the server and every CLI job use it, so a job never keeps a second log or misses
archived months.

The background job runs when GOVTRACK_ARCHIVE_AFTER_DAYS or GOVTRACK_RETENTION_DAYS is set: a
first pass shortly after the store opens, then every GOVTRACK_ARCHIVE_INTERVAL_S. A pass moves the
months that ended more than ARCHIVE_AFTER_DAYS ago, then deletes archived months wholly older
than RETENTION_DAYS unless a legal hold covers them. A failing pass is logged and retried next
time; nothing it did not commit counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any, Final

from api.logging import get_logger
from api.settings import Settings
from storage.archive.location import ObjectStoreOptions, open_location
from storage.archive.tiers import TieredStore
from storage.base import EventStore
from storage.layers import layers

if TYPE_CHECKING:
    from api.state import AppState

__all__ = [
    "archive_tasks",
    "configured_store",
    "cutoff_month",
    "find_tiered",
    "object_store_options",
    "run_pass",
    "tiered",
]

log = get_logger("govtrack.archive")

#: The first background pass waits this long after start (the store opens meanwhile).
FIRST_PASS_DELAY_S: Final = 5.0


def object_store_options(settings: Settings) -> ObjectStoreOptions:
    """The object-store connection settings (unset ones: pyarrow's and boto3's own defaults)."""
    key = settings.azure_account_key
    return ObjectStoreOptions(
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        azure_account_name=settings.azure_account_name,
        azure_account_key=key.get_secret_value() if key is not None else None,
        azure_blob_endpoint=settings.azure_blob_endpoint,
    )


def tiered(store: EventStore, settings: Settings) -> TieredStore:
    """`store` as the hot tier of the archive at GOVTRACK_ARCHIVE_URL (not opened here)."""
    options = object_store_options(settings)
    return TieredStore(store, open_location(settings.archive_url, options), options=options)


def configured_store(settings: Settings) -> TieredStore:
    """The store of GOVTRACK_STORE_URL as the server runs it, behind the archive tier (not opened)."""
    from api.transparency import log_options
    from storage.factory import create_store  # engines load lazily (local mode needs no driver)

    hot = create_store(settings.store_url, memory_mb=settings.engine_memory_mb, log=log_options(settings))
    return tiered(hot, settings)


def find_tiered(store: object) -> TieredStore | None:
    """The TieredStore inside the app's store wrappers (deferred opening, tracing), if any."""
    return next((layer for layer in layers(store) if isinstance(layer, TieredStore)), None)


def cutoff_month(now: dt.datetime, days: int) -> int:
    """YYYYMM of the month holding `now - days`: every month before it ended more than `days` ago."""
    cutoff = now - dt.timedelta(days=days)
    return cutoff.year * 100 + cutoff.month


def run_pass(store: TieredStore, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """One pass of the background job (blocking): archive, then retention."""
    from storage.archive.mover import archive_months
    from storage.archive.retention import apply_retention

    now = now or dt.datetime.now(dt.UTC)
    done: dict[str, Any] = {}
    if settings.archive_after_days is not None:
        done["archive"] = archive_months(store, cutoff_month(now, settings.archive_after_days)).to_dict()
    if settings.retention_days is not None:
        done["retention"] = apply_retention(store, settings.retention_days, now=now).to_dict()
    return done


def archive_tasks(state: AppState) -> list[asyncio.Task[None]]:
    """The background job's task, when archiving or retention is configured."""
    settings = state.settings
    store = find_tiered(state.deferred)
    if store is None or (settings.archive_after_days is None and settings.retention_days is None):
        return []
    return [asyncio.get_running_loop().create_task(_keep_archiving(state, store), name="govtrack-archive")]


async def _keep_archiving(state: AppState, store: TieredStore) -> None:
    delay = FIRST_PASS_DELAY_S
    while True:
        await asyncio.sleep(delay)
        delay = state.settings.archive_interval_s
        if not state.deferred.is_open:
            continue
        try:
            done = await asyncio.to_thread(run_pass, store, state.settings)
            log.info("archive_pass", **done)
        except Exception as exc:  # logged, retried next pass: nothing uncommitted counts
            log.error("archive_pass_failed", error=f"{type(exc).__name__}: {exc}")

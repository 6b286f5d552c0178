"""The transparency log in the service: its settings, and where the routes find it.

The log belongs to the hot store (storage.log.store_log.StoreLog, opened with it): the store's
single writer assigns the leaves. The app reaches that store through its wrappers (deferred
opening, tracing, the archive tier), which `store_log` walks. A ClickHouse server shared by
several writers keeps no log: `store_log` then raises LogDisabledError and the routes answer 501.
"""

from __future__ import annotations

from api.settings import Settings
from storage.errors import TransientStoreError
from storage.layers import layers
from storage.log.store_log import LogOptions, StoreLog

__all__ = ["LogDisabledError", "log_options", "store_log"]


class LogDisabledError(LookupError):
    """The store keeps no transparency log (several writers share a ClickHouse server)."""


def log_options(settings: Settings) -> LogOptions:
    """GOVTRACK_LOG_DIR / _LOG_KEY_FILE / _LOG_ORIGIN as the store's log options.

    A missing key file gets a fresh key (the local-mode behaviour; logged with its verifier key):
    only an embedded store, the one writer of its data, keeps a log at all.
    """
    return LogOptions(
        directory=settings.log_dir,
        key_file=settings.log_key_file,
        origin=settings.log_origin,
        create_key=True,
    )


def store_log(store: object) -> StoreLog:
    """The open log of the store under the app's wrappers.

    Raises:
        TransientStoreError: the store is not open yet (503, as every read then).
        LogDisabledError: the store keeps no log.
    """
    for current in layers(store):
        if hasattr(current, "transparency_log"):
            found = current.transparency_log
            if isinstance(found, StoreLog):
                return found
            if getattr(current, "single_writer", True) is False:
                raise LogDisabledError(
                    "this deployment has several writers sharing a ClickHouse server: without one "
                    "sequencer there is no global commit order, so no transparency log is kept"
                )
            if not getattr(current, "keeps_log", True):
                break
            raise TransientStoreError("the event store (and its transparency log) is not open yet")
    raise LogDisabledError("this store keeps no transparency log")

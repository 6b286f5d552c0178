"""An EventStore whose `open` may fail for a while: the service starts and serves before its store.

Why: a database restarted after the API (or still starting) must not turn add-ins away. The app
wraps its store in `DeferredOpenStore` and keeps calling `try_open()` in the background until it
succeeds (the DDL is applied then, by the store's own `open`). Until then every store call raises
`TransientStoreError`, which the write path answers by spooling (202 queued) and the read routes by
503 `store_unavailable`; `health()` reports why the store is not open yet.

Thread-safe: `try_open` runs in a worker thread while requests read `is_open`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from storage.base import EventStore, HealthCheck
from storage.errors import StoreError, TransientStoreError
from storage.forwarding import ForwardingStore

__all__ = ["DeferredOpenStore"]

T = TypeVar("T")


class DeferredOpenStore(ForwardingStore):
    """Delegates to `inner` once it opened; until then every call fails transiently."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self._opened = threading.Event()
        self._open_lock = threading.Lock()
        self._last_error: str | None = None
        self.open_attempts = 0

    @property
    def is_open(self) -> bool:
        """True once `inner.open()` succeeded (and until `close`)."""
        return self._opened.is_set()

    @property
    def last_error(self) -> str | None:
        """Why the last open attempt failed (None once open)."""
        return self._last_error

    def try_open(self) -> bool:
        """One attempt to open the inner store; True when it is open. Never raises a StoreError."""
        with self._open_lock:
            if self._opened.is_set():
                return True
            self.open_attempts += 1
            try:
                self.inner.open()
            except StoreError as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                return False
            self._last_error = None
            self._opened.set()
            return True

    # -- the Protocol -------------------------------------------------------------------------

    def open(self) -> None:
        """Open now or raise (the Protocol's contract); the app uses `try_open` instead."""
        if not self.try_open():
            raise TransientStoreError(f"event store could not be opened: {self._last_error}")

    def close(self) -> None:
        """Close the inner store if it was opened.

        Never waits for an open attempt still running (a connect can hang for the driver's
        timeout): a store that was not open is left alone, the process is stopping anyway.
        """
        if not self._opened.is_set():
            return
        with self._open_lock:
            if self._opened.is_set():
                self._opened.clear()
                self.inner.close()

    def health(self) -> HealthCheck:
        """The inner store's probe once open; before that, why it is not open yet."""
        if not self._opened.is_set():
            return HealthCheck(ok=False, detail=f"not open yet: {self._last_error or 'opening'}")
        return self.inner.health()

    def _forward(self, call: Callable[[], T]) -> T:
        if not self._opened.is_set():
            raise TransientStoreError(f"event store is not open yet: {self._last_error or 'opening'}")
        return call()

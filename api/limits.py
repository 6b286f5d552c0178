"""Bounds on what one client can make the server hold: concurrent large reads and exports.

A streamed read costs about `read_batch_bytes` of memory whatever its limit, but each one keeps a
worker thread and the engine busy for as long as the client reads. `LargeReadGate` counts the
large ones (streamed reads above the JSON page maximum, and exports) and refuses one more with
429 `too_many_large_reads` and Retry-After, instead of queueing it: a queue would hold the
request's socket and memory anyway. The permit is held until the response has been sent, or the
client went away (`GuardedStreamingResponse`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.errors import ApiError
from api.state import app_state

__all__ = ["GuardedStreamingResponse", "LargeReadGate", "Permit", "SlotGate", "large_read_gate"]

_STATE_ATTR: Final = "govtrack_large_reads"


class Permit:
    """One admitted slot of a `SlotGate`; `release()` is idempotent and thread-safe."""

    def __init__(self, gate: SlotGate) -> None:
        self._gate = gate
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the slot back (once, whoever calls first)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate._release()


class SlotGate:
    """At most `limit` holders at once; one more is refused with 429 and Retry-After, never queued.

    Subclasses name what they count: the error `code` and the `refusal()` message.
    """

    code: str = "too_many_requests"

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        """Slots held now."""
        return self._active

    def refusal(self) -> str:
        """The 429's message."""
        return f"{self.limit} slots are taken: retry later"

    def acquire(self) -> Permit:
        """A permit, or 429 `code` with Retry-After when all slots are taken."""
        with self._lock:
            if self._active >= self.limit:
                raise ApiError(
                    429, self.code, self.refusal(), headers={"Retry-After": str(self.retry_after_s)}
                )
            self._active += 1
        return Permit(self)

    def _release(self) -> None:
        with self._lock:
            self._active -= 1


class LargeReadGate(SlotGate):
    """At most `limit` large reads and exports at once."""

    code = "too_many_large_reads"

    def refusal(self) -> str:
        """The 429's message."""
        return f"{self.limit} large reads or exports are running: retry later, or read fewer rows per request"


def large_read_gate(request: Request) -> LargeReadGate:
    """The app's gate, made on first use from its settings (the event loop is single-threaded)."""
    gate: LargeReadGate | None = getattr(request.app.state, _STATE_ATTR, None)
    if gate is None:
        settings = app_state(request).settings
        gate = LargeReadGate(settings.max_concurrent_large_reads, settings.overload_retry_after_s)
        setattr(request.app.state, _STATE_ATTR, gate)
    return gate


class GuardedStreamingResponse(StreamingResponse):
    """A streamed body whose source is closed, and `on_close` run, however the response ends.

    Completed, failed, or cut short by a disconnect: the body generator is closed (its `finally`
    blocks run) and the permit released. Starlette runs a sync body in worker threads and waits
    for the running step before a cancellation goes on, so closing here never races it.
    """

    def __init__(self, content: Iterator[bytes], on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._source = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response, then release what it held."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                close = getattr(self._source, "close", None)
                if close is not None:
                    close()
            finally:
                self._on_close()

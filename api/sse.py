"""Server-sent events for one client: the wire format, a bounded buffer, the response, a cap on streams.

One stream is two coroutines: a feed that reads the store and puts SSE messages into the
client's `ClientBuffer`, and the response body that takes them out and writes them to the socket.
The buffer is what keeps a client from costing unbounded memory: it holds at most `max_bytes`,
and a feed whose client took nothing for `stall_s` while the buffer was full stops, discards what
waits and leaves one final message (`event: dropped`). A client that reads, however slowly, is
never dropped: it falls behind, and the store, not this process, holds what it has not read yet.

Per stream the server holds at most the buffer, one page the feed has read (sized to about a
buffer's worth by the events seen so far), and the chunk being written; `EventStreamResponse`
bounds the write of what follows a drop by `stall_s` too, and `StreamGate` bounds the number of
streams (429 beyond it). Measured on a real server: a client that stopped reading while 20 MB of
events were stored received the ~3 MB the kernel's socket buffers held, then `event: dropped`.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Final

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.limits import SlotGate
from api.state import app_state

__all__ = [
    "MEDIA_TYPE",
    "ClientBuffer",
    "EventStreamResponse",
    "StreamGate",
    "comment",
    "message",
    "stream_gate",
]

MEDIA_TYPE: Final = "text/event-stream"
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_STATE_ATTR: Final = "govtrack_event_streams"


def message(
    data: str | None = None,
    *,
    event: str | None = None,
    id: int | None = None,
    retry_ms: int | None = None,
    note: str | None = None,
) -> bytes:
    """One SSE message; `data` spread over `data:` lines if it holds line breaks (the client rejoins them).

    A message with an `id` and no data moves the client's Last-Event-ID without firing an event;
    `retry_ms` tells an EventSource how long to wait before it reconnects; `note` is a comment line.
    """
    lines: list[str] = [] if note is None else [f": {_LINE_BREAK.sub(' ', note)}"]
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str) -> bytes:
    """A comment line alone (ignored by clients; keeps proxies from closing an idle stream)."""
    return message(note=text)


class ClientBuffer:
    """What waits for one client: at most `max_bytes` (a single larger message is let in alone).

    One producer (`put`) and one consumer (`take`) on the event loop. `close(final)` ends it:
    waiting messages are dropped at once and `final` is the last thing `take` returns.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        #: The most bytes ever waiting at once (what the bound is about).
        self.peak_bytes = 0

    @property
    def size(self) -> int:
        """Bytes waiting now."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether `close` was called (nothing more is put)."""
        return self._closed

    def _fits(self, size: int) -> bool:
        return not self._items or self._size + size <= self.max_bytes

    async def put(self, item: bytes, wait_s: float) -> bool:
        """Queue `item`, waiting up to `wait_s` for room; False when none came (or it is closed)."""
        try:
            async with asyncio.timeout(wait_s):
                while not self._closed and not self._fits(len(item)):
                    self._writable.clear()
                    await self._writable.wait()
        except TimeoutError:
            return False
        if self._closed:
            return False
        self._items.append(item)
        self._size += len(item)
        self.peak_bytes = max(self.peak_bytes, self._size)
        self._readable.set()
        return True

    async def take(self, wait_s: float) -> bytes | None:
        """Everything waiting as one chunk; None when nothing came within `wait_s`; b"" once closed and empty."""
        if not self._items and not self._closed:
            self._readable.clear()
            try:
                async with asyncio.timeout(wait_s):
                    await self._readable.wait()
            except TimeoutError:
                return None
        if not self._items:
            return b""
        chunk = b"".join(self._items)
        self._items.clear()
        self._size = 0
        self._writable.set()
        return chunk

    def close(self, final: bytes | None = None) -> None:
        """No more puts; what waits is discarded and `final` (if any) becomes the last message.

        Only the first call counts: a later one must not discard the first one's final message.
        """
        if self._closed:
            return
        self._items.clear()
        self._size = 0
        if final is not None:
            self._items.append(final)
            self._size = len(final)
        self._closed = True
        self._readable.set()
        self._writable.set()


class EventStreamResponse(StreamingResponse):
    """A text/event-stream body taken from a `ClientBuffer`, with its feed running beside it.

    The feed runs in the response's own task group, so it stops whenever the response does
    (finished, failed, or the client went away), and `on_close` runs after both. While nothing
    arrives, `heartbeat()` is written every `heartbeat_s`. Once the buffer is closed (the client
    was dropped, or the server stops), each remaining write may take at most `stall_s`: a client
    that does not read even its final message is disconnected.
    """

    media_type = MEDIA_TYPE

    def __init__(
        self,
        buffer: ClientBuffer,
        feed: Callable[[], Coroutine[Any, Any, None]],
        *,
        prelude: bytes,
        heartbeat: Callable[[], bytes],
        heartbeat_s: float,
        stall_s: float,
        on_close: Callable[[], None],
    ) -> None:
        self._buffer = buffer
        self._feed = feed
        self._heartbeat = heartbeat
        self._heartbeat_s = heartbeat_s
        self._stall_s = stall_s
        self._on_close = on_close
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: do not buffer
        super().__init__(self._chunks(prelude), media_type=MEDIA_TYPE, headers=headers)

    async def _chunks(self, prelude: bytes) -> AsyncIterator[bytes]:
        yield prelude
        while True:
            chunk = await self._buffer.take(self._heartbeat_s)
            if chunk is None:
                yield self._heartbeat()
            elif chunk:
                yield chunk
            else:
                return

    async def stream_response(self, send: Send) -> None:
        """Starlette's, with the writes after the buffer closed bounded by `stall_s`."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            body = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            with anyio.move_on_after(self._stall_s if self._buffer.closed else math.inf) as bounded:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if bounded.cancelled_caught:
                return  # the server closes the connection: the client read nothing for stall_s
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the feed beside the response; stop it and run `on_close` however the response ends."""
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._feed)
                try:
                    await super().__call__(scope, receive, send)
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._on_close()


class StreamGate(SlotGate):
    """At most `limit` open event streams; it also counts the streams the server ended, by reason."""

    code = "too_many_streams"

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(limit, retry_after_s)
        #: Streams the server ended, by reason (`slow_reader`, `shutting_down`, ...).
        self.ended: dict[str, int] = {}

    def refusal(self) -> str:
        """The 429's message."""
        return f"{self.limit} event streams are open (GOVTRACK_MAX_EVENT_STREAMS): retry later"

    def count_end(self, reason: str) -> None:
        """The server ended a stream for `reason`."""
        with self._lock:
            self.ended[reason] = self.ended.get(reason, 0) + 1


def stream_gate(request: Request) -> StreamGate:
    """The app's gate, made on first use from its settings (as api.limits does for large reads)."""
    found: Any = getattr(request.app.state, _STATE_ATTR, None)
    if isinstance(found, StreamGate):
        return found
    settings = app_state(request).settings
    gate = StreamGate(settings.max_event_streams, settings.overload_retry_after_s)
    setattr(request.app.state, _STATE_ATTR, gate)
    return gate

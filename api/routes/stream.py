"""`GET /api/events/stream`: each stored event as a server-sent event, in commit order, resumable.

Each committed event matching the filters (those of GET /api/events, parsed by api.filters) is one
SSE message: `id:` its leaf_index, `event: event`, `data:` the same JSON object as an item of
GET /api/events' "events" (api.formats renders both).

Order and resumption come from the transparency log (storage.log): leaf_index is the single
writer's commit order, so the leaves after the last id a client saw are exactly what it missed.
A reconnecting client sends that id as `Last-Event-ID` (or `?last_event_id=` when it cannot set
headers; the header wins, since a browser resends the URL it started with) and gets every later
matching event once and none twice, whichever tier (hot or archive) holds it by then.

Where a stream starts (decided here, documented in the route's description):
- without Last-Event-ID, at the log's current end: only events committed after the request.
  `from`/`to` stay filters on the event's own timestamp, as everywhere else: they do not rewind.
- after leaf N with `Last-Event-ID: N` (-1 to the log's size - 1). -1 replays the whole log, so
  `last_event_id=-1&from=T` means "every stored event from T on, then the new ones".

Finding new events: a feed per stream reads the log's committed size (in memory) every
GOVTRACK_STREAM_POLL_S and asks the store (`after_leaf`) only when it grew, bounded by that size
so a commit still becoming visible is never read in part. The group-commit writer has no commit
notification to wait on, and spool replays commit outside it; the log's size covers both.

What a store read costs, measured at 500,000 events (compacted Parquet and chdb, on a loaded
2-core machine): at the log's head 30 ms (Parquet) and 70 ms (chdb); a page of 1,000 from the
middle of the log 0.8 s and 0.2 s, since compaction clusters Parquet rows by cell, not by leaf.
So a live stream costs little, and a resume point far behind catches up in pages of up to
MAX_PAGE_ROWS, each a scan (a per-file leaf range in the manifest would let it skip files).

The stream opens with `retry:` and the starting `id:`, so a client that saw no event yet still
resumes where it started. An idle stream sends a heartbeat comment every
GOVTRACK_STREAM_HEARTBEAT_S, with an `id:` when filtered-out commits moved its position. The server
ends a stream with `event: dropped` (JSON data: `reason` slow_reader, shutting_down,
store_unavailable or server_error, and `message`); the client reconnects with its last id. What a
stream may cost is bounded in api.sse.

Without a transparency log (several writers share a ClickHouse server) there is no commit order to
resume from: 501 `log_disabled`, as the /api/log routes answer.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep, StoreDep
from api.errors import ApiError
from api.filters import RawParams, int_param, parse_filter, raw_from_query, single
from api.formats import canonical, event_json_rows
from api.logging import get_logger
from api.openapi import FILTERS, json_errors, query_parameters
from api.settings import Settings
from api.sse import ClientBuffer, EventStreamResponse, comment, message, stream_gate
from api.transparency import LogDisabledError, store_log
from storage.base import EventFilter, EventStore
from storage.errors import TransientStoreError
from storage.log.store_log import StoreLog

__all__ = ["FeedLimits", "LeafFeed", "router"]

router = APIRouter(tags=["events"])
log = get_logger("govtrack.stream")

#: How long an EventSource waits before reconnecting (the `retry:` field).
RETRY_MS: Final = 2000
_MAX_ID: Final = 10**18 - 1  # what api.filters.int_param reads
#: Rows per store read: about as many as fit the client's buffer at the sizes seen so far. The first
#: read is the smallest: events may be up to 128 KiB each, so a page sized on a guess could hold
#: far more than a buffer's worth.
MIN_PAGE_ROWS: Final = 16
MAX_PAGE_ROWS: Final = 5000


@dataclass(frozen=True, slots=True)
class FeedLimits:
    """A stream's settings (GOVTRACK_STREAM_*)."""

    poll_s: float
    heartbeat_s: float
    stall_s: float
    buffer_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> FeedLimits:
        """The limits the settings give."""
        return cls(
            settings.stream_poll_s,
            settings.stream_heartbeat_s,
            settings.stream_stall_s,
            settings.stream_buffer_bytes,
        )


def rendered(table: pa.Table) -> list[tuple[int, bytes]]:
    """(leaf_index, SSE message) per event, the data rendered as GET /api/events renders it."""
    rows = event_json_rows(canonical(table)).to_pylist()
    leaves = table.column("leaf_index").to_pylist()
    return [
        (int(leaf), message(text, event="event", id=leaf)) for leaf, text in zip(leaves, rows, strict=True)
    ]


def dropped(reason: str, text: str) -> bytes:
    """The final message of a stream the server ends."""
    return message(json.dumps({"reason": reason, "message": text}), event="dropped")


class LeafFeed:
    """Puts the store's matching leaves after `after` into one client's buffer as they are committed.

    `position`: every matching leaf up to it has been put in the buffer (the resume point a
    heartbeat announces).
    """

    def __init__(
        self,
        store: EventStore,
        store_log: StoreLog,
        flt: EventFilter,
        after: int,
        buffer: ClientBuffer,
        limits: FeedLimits,
        stopping: Callable[[], bool],
        on_end: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._store = store
        self._on_end = on_end
        self._log = store_log
        self._flt = flt
        self._buffer = buffer
        self._limits = limits
        self._stopping = stopping
        self.position = after
        self._announced = after
        self._sent_bytes = 0
        self._sent = 0

    def prelude(self) -> bytes:
        """The first message: a comment naming the start, the reconnect delay and the starting id."""
        return message(
            note=f"govtrack events after leaf {self.position}", id=self.position, retry_ms=RETRY_MS
        )

    def heartbeat(self) -> bytes:
        """A comment; with the position when filtered-out leaves moved it (the buffer is empty then)."""
        if self.position == self._announced:
            return comment("keep-alive")
        self._announced = self.position
        return message(note="keep-alive", id=self.position)

    async def run(self) -> None:
        """Follow the log until the server stops, the client is dropped or the store fails."""
        try:
            await self._follow()
        except TransientStoreError as exc:
            self._end("store_unavailable", f"the event store is unavailable ({exc}): reconnect later")
        except Exception as exc:  # a stream must end with a reason, never hang or vanish
            log.error("event_stream_failed", error=f"{type(exc).__name__}: {exc}")
            self._end("server_error", "the stream failed on the server (logged): reconnect later")

    async def _follow(self) -> None:
        while not self._stopping():
            end = self._log.next_index
            if end - 1 <= self.position:
                await anyio.sleep(self._limits.poll_s)
            elif not await self._send_page(end):
                return
        self._end("shutting_down", "the server is shutting down: reconnect later")

    async def _send_page(self, end: int) -> bool:
        """One store read of leaves (position, end) into the buffer; False when the client was dropped."""
        limit = self._page_rows()
        flt = dataclasses.replace(self._flt, leaves_before=end)
        messages = await run_in_threadpool(self._read, flt, self.position, limit)
        for leaf, item in messages:
            if not await self._buffer.put(item, self._limits.stall_s):
                self._end(
                    "slow_reader",
                    f"the client took nothing for {self._limits.stall_s:g} s while "
                    f"{self._buffer.size} bytes waited for it: reconnect with the last id received",
                )
                return False
            self.position = self._announced = leaf
            self._sent += 1
            self._sent_bytes += len(item)
        if len(messages) < limit:  # every matching leaf below `end` is in the buffer
            self.position = end - 1
        return True

    def _read(self, flt: EventFilter, after: int, limit: int) -> list[tuple[int, bytes]]:
        """A worker thread's part: the store read and the rendering."""
        return rendered(self._store.after_leaf(flt, after, limit))

    def _page_rows(self) -> int:
        if not self._sent:
            return MIN_PAGE_ROWS
        fitting = self._limits.buffer_bytes * self._sent // max(1, self._sent_bytes)
        return min(MAX_PAGE_ROWS, max(MIN_PAGE_ROWS, fitting))

    def _end(self, reason: str, text: str) -> None:
        self._buffer.close(dropped(reason, text))
        self._on_end(reason)


def _log_of(store: EventStore) -> StoreLog:
    try:
        return store_log(store)
    except LogDisabledError as exc:
        raise ApiError(501, "log_disabled", f"{exc}; a stream has no commit order to resume from") from None


def _invalid(name: str, text: str) -> ApiError:
    return ApiError(400, "invalid_query", text, details=[{"field": name, "message": text}])


def resume_point(header: str | None, raw: RawParams, end: int) -> int:
    """The leaf a stream starts after: the client's last id (the header first), else the log's end."""
    if header is not None and header.strip():
        name, value = "Last-Event-ID", header.strip()
    else:
        name, value = "last_event_id", single(raw, "last_event_id")
    if value is None:
        return end - 1
    try:
        after = int_param(value, name, -1, _MAX_ID)
    except ValueError as exc:
        raise _invalid(name, str(exc)) from None
    if after >= end:
        raise _invalid(name, f"{name} {after} is past the log's end ({end} leaves): not an id of this stream")
    return after


_EXAMPLE: Final = (
    ": govtrack events after leaf 41\nretry: 2000\nid: 41\n\n"
    'id: 42\nevent: event\ndata: {"event_id":"…","timestamp":"…",…,"leaf_index":42,…}\n\n'
    ": keep-alive\n\n"
)
#: One message (OpenAPI 3.1 has an event stream's `schema` describe each event, as a parsed object).
_MESSAGE: Final = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["event", "dropped"]},
        "data": {
            "type": "string",
            "description": "`event`: one event as JSON, as an item of GET /api/events; "
            '`dropped`: {"reason": "slow_reader|shutting_down|store_unavailable|server_error", "message"}',
        },
        "id": {"type": "string", "pattern": "^-?[0-9]+$", "description": "the event's leaf_index"},
        "retry": {"type": "integer", "minimum": 0},
    },
    "required": ["event", "data"],
}
_OK: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "an endless text/event-stream: `id:` leaf_index, `event: event`, `data:` one event "
        "as in GET /api/events; heartbeat comments; a final `event: dropped` when the server ends it",
        "content": {"text/event-stream": {"schema": _MESSAGE, "example": _EXAMPLE}},
    }
}


def _parameters() -> dict[str, Any]:
    declared = query_parameters(*FILTERS)
    resume = {"type": "integer", "minimum": -1, "maximum": _MAX_ID}
    why = "start after this leaf_index (the last `id:` received; -1: the whole log); default: the log's end"
    declared["parameters"] += [
        {"name": "last_event_id", "in": "query", "required": False, "schema": resume, "description": why},
        {"name": "Last-Event-ID", "in": "header", "required": False, "schema": resume, "description": why},
    ]
    return declared


@router.get(
    "/api/events/stream",
    summary="Events as they are stored, as server-sent events (resumable with Last-Event-ID)",
    response_class=EventStreamResponse,
    status_code=200,  # documented here: the response class takes no status_code for FastAPI to read
    responses=_OK
    | json_errors(
        400,
        429,
        501,
        s429="GOVTRACK_MAX_EVENT_STREAMS streams are open (`too_many_streams`); retry after `Retry-After`",
    ),
    openapi_extra=_parameters(),
)
async def stream_events(request: Request, store: StoreDep, state: StateDep) -> Response:
    """Every event committed from now on (or after `Last-Event-ID`) that matches the filters, in commit order.

    Filters as GET /api/events (`from`/`to` filter the event's timestamp; they do not rewind the
    stream). Without `Last-Event-ID` (or `last_event_id`) the stream starts at the log's current
    end: only events committed after the request. With it, after that leaf: every later matching
    event once, none twice, also across an archive move; -1 replays the whole log first. Each
    message: `id:` the event's leaf_index, `event: event`, `data:` the event as in
    GET /api/events. Heartbeat comments keep idle streams open. A client that takes nothing for
    GOVTRACK_STREAM_STALL_S while GOVTRACK_STREAM_BUFFER_BYTES wait for it is dropped with a final
    `event: dropped` ({"reason", "message"}); reconnect with the last id. 501 `log_disabled` when
    the store keeps no transparency log (several writers): there is no commit order to resume from.
    """
    raw = raw_from_query(request.query_params.multi_items())
    flt = parse_filter(raw)
    the_log = _log_of(store)
    after = resume_point(request.headers.get("last-event-id"), raw, the_log.next_index)
    gate = stream_gate(request)
    permit = gate.acquire()
    try:
        limits = FeedLimits.of(state.settings)
        buffer = ClientBuffer(limits.buffer_bytes)
        feed = LeafFeed(store, the_log, flt, after, buffer, limits, lambda: state.draining, gate.count_end)
        return EventStreamResponse(
            buffer,
            feed.run,
            prelude=feed.prelude(),
            heartbeat=feed.heartbeat,
            heartbeat_s=limits.heartbeat_s,
            stall_s=limits.stall_s,
            on_close=permit.release,
        )
    except BaseException:
        permit.release()
        raise

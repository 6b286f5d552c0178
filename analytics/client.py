r"""The analysts' client: govtrack's HTTP API in, polars DataFrames out.

One typed method per read endpoint. Events travel as Arrow IPC streams (no JSON round trip) and
paging is hidden: `iter_events` yields one DataFrame per page, following the keyset cursor, and
`events` collects them; `scan_events` defers the whole read to `collect()` of a LazyFrame;
`stream` yields the events as they are stored, resuming by itself when the connection drops.
Answers 429 and 503 are retried after the server's Retry-After, a bounded number of times
(`analytics.http.RetryPolicy`); any other error answer raises `GovtrackError` carrying the
contract's code, message, details and request id.

The client is synchronous and holds one `httpx.Client`; pass `http=` to reuse your own (a
FastAPI TestClient in tests).

    with GovtrackClient("http://127.0.0.1:8000", api_key="...") as gt:
        edits = gt.events(user_name="CORP\\alice", event_type=["cell_change", "formula_change"])
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict, Unpack

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from analytics.http import RETRYABLE, GovtrackError, RetryPolicy, error_from
from analytics.sse import SSEParser, events_frame

__all__ = ["EventFilters", "ExportManifest", "GovtrackClient", "GovtrackError", "RetryPolicy", "Stats"]

ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
EVENT_STREAM: Final = "text/event-stream"
#: Rows per Arrow page: the API streams up to 1,000,000; pages above 10,000 count as large reads.
DEFAULT_PAGE_ROWS: Final = 250_000
SESSION_PAGE_ROWS: Final = 10_000
Bucket = Literal["minute", "hour", "day", "week"]
GroupBy = Literal["event_type", "user_name", "workbook_name"]
Order = Literal["asc", "desc"]
_UTC_US: Final = pl.Datetime("us", "UTC")


class EventFilters(TypedDict, total=False):
    """The contract's read filters; `from_` is inclusive, `to` exclusive; list fields take lists."""

    from_: dt.datetime | str
    to: dt.datetime | str
    event_type: str | Sequence[str]
    user_name: str | Sequence[str]
    workbook_name: str | Sequence[str]
    sheet_name: str | Sequence[str]
    machine_name: str
    session_id: str
    correlation_id: str
    cell_address: str
    text: str


@dataclass(frozen=True)
class Stats:
    """`GET /api/stats`: exact totals, and the three count tables sorted by count, then key."""

    total_events: int
    unique_users: int
    unique_workbooks: int
    unique_sessions: int
    first_event_at: dt.datetime | None
    last_event_at: dt.datetime | None
    by_event_type: pl.DataFrame
    top_users: pl.DataFrame
    top_workbooks: pl.DataFrame


@dataclass(frozen=True)
class ExportManifest:
    """`POST /api/exports`: where the Parquet files went, how many rows, and each file's sha256."""

    destination: str
    rows: int
    files: pl.DataFrame
    raw: dict[str, Any]


def _param(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    """Python names (`from_`) to the API's (`from`), datetimes to ISO-8601 (naive = UTC), None dropped."""
    return {("from" if k == "from_" else k): _param(v) for k, v in filters.items() if v is not None}


def _utc(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _ByteStream:
    """A read-only file over an iterator of byte chunks, so pyarrow reads batches as they arrive."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self.closed = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer.extend(chunk)
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        return data

    def close(self) -> None:
        self.closed = True


class GovtrackClient:
    """Read events, statistics, sessions, cell histories and exports as polars DataFrames.

    Args:
        base_url: the server, e.g. `http://127.0.0.1:8000`.
        api_key: a key with the `read` scope (`admin` for exports), sent as `X-API-Key`.
        timeout: seconds per HTTP operation.
        retry: how 429/503 answers are retried (default: 5 times, Retry-After capped at 30 s).
        http: an httpx.Client to use instead of a new one (not closed by `close()`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._base = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key} if api_key else {}
        self.retry = retry or RetryPolicy()

    def close(self) -> None:
        """Close the HTTP connection pool (only when this client created it)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> GovtrackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _send(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        url = f"{self._base}{path}"
        headers = self._headers | kwargs.pop("headers", {})
        return self.retry.call(
            lambda: self._http.request(method, url, params=params, headers=headers, **kwargs)
        )

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params).json()

    # -- events --------------------------------------------------------------------------------

    def iter_events(
        self,
        *,
        order: Order = "desc",
        page_rows: int = DEFAULT_PAGE_ROWS,
        max_rows: int | None = None,
        **filters: Unpack[EventFilters],
    ) -> Iterator[pl.DataFrame]:
        """The matching events one page at a time (each a DataFrame), newest first by default.

        Pages follow the server's keyset cursor, so every match is visited exactly once even while
        events arrive. Stops after `max_rows` rows when given.
        """
        params = _params(dict(filters)) | {"order": order}
        rows = 0
        cursor: str | None = None
        while max_rows is None or rows < max_rows:
            limit = page_rows if max_rows is None else min(page_rows, max_rows - rows)
            page, cursor = self._arrow_page(
                params | {"limit": limit} | ({"cursor": cursor} if cursor else {})
            )
            rows += page.height
            if page.height or rows == 0:
                yield page
            if cursor is None:
                return

    def events(
        self,
        *,
        order: Order = "desc",
        page_rows: int = DEFAULT_PAGE_ROWS,
        max_rows: int | None = None,
        **filters: Unpack[EventFilters],
    ) -> pl.DataFrame:
        """Every matching event (or the first `max_rows`) as one DataFrame; see `iter_events`."""
        pages = list(self.iter_events(order=order, page_rows=page_rows, max_rows=max_rows, **filters))
        return pl.concat(pages, how="vertical") if pages else pl.DataFrame()

    def scan_events(self, *, order: Order = "desc", **filters: Unpack[EventFilters]) -> pl.LazyFrame:
        """The matching events as a LazyFrame: nothing is fetched until it is collected.

        The schema is read from one zero-row page, so a query can be planned (and checked) first.
        """
        schema = self._arrow_page(_params(dict(filters)) | {"limit": 1, "order": order})[0].clear().schema
        return pl.defer(lambda: self.events(order=order, **filters), schema=schema)

    def _arrow_page(self, params: dict[str, Any]) -> tuple[pl.DataFrame, str | None]:
        """One Arrow page and the cursor after it; 429/503 before the body are retried."""
        url = f"{self._base}/api/events"
        headers = self._headers | {"Accept": ARROW_STREAM}
        attempt = 0
        while True:
            with self._http.stream("GET", url, params=params, headers=headers) as response:
                if response.status_code < 400:
                    reader = ipc.open_stream(pa.PythonFile(_ByteStream(response.iter_bytes()), mode="r"))
                    frame = pl.DataFrame(pl.from_arrow(reader.read_all()))
                    return frame, response.headers.get("x-next-cursor")
                response.read()
                error = error_from(response)
            if response.status_code not in RETRYABLE or attempt >= self.retry.max_retries:
                raise error
            self.retry.pause(error, attempt)
            attempt += 1

    def stream(
        self, *, last_event_id: int | None = None, **filters: Unpack[EventFilters]
    ) -> Generator[pl.DataFrame]:
        """Events as they are stored (`GET /api/events/stream`), one DataFrame per batch that arrived together.

        Endless: leave the loop (or `close()` it) to stop. Frames have the columns of `events` and
        come in commit order (`leaf_index`); without `last_event_id` they start with the events
        stored from now on, with it after that leaf (-1: every stored event first). When the
        connection drops or the server ends the stream (`event: dropped`), it reconnects with
        Last-Event-ID: nothing is missed, nothing repeated. 429/503 answers and failed connects are retried as `retry` says,
        counting consecutive failures; 501 `log_disabled` (several writers keep no commit order)
        and other error answers raise `GovtrackError`.
        """
        params = _params(dict(filters))
        parser = SSEParser(None if last_event_id is None else str(last_event_id))
        failures = 0
        while True:
            try:
                yield from self._stream_once(params, parser)
                failures = 0  # it was open: reconnect at once
                continue
            except GovtrackError as error:
                if error.status not in RETRYABLE or failures >= self.retry.max_retries:
                    raise
                self.retry.pause(error, failures)
            except httpx.TransportError as exc:
                if failures >= self.retry.max_retries:
                    raise
                self.retry.pause(GovtrackError(0, "unreachable", str(exc)), failures)
            failures += 1

    def _stream_once(self, params: dict[str, Any], parser: SSEParser) -> Generator[pl.DataFrame]:
        """One connection, until the server ends it or it drops.

        Raises:
            GovtrackError: an error answer instead of the stream.
            httpx.TransportError: no connection.
        """
        url = f"{self._base}/api/events/stream"
        resume = {} if parser.last_id is None else {"Last-Event-ID": parser.last_id}
        headers = self._headers | {"Accept": EVENT_STREAM} | resume
        with self._http.stream("GET", url, params=params, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise error_from(response)
            parser.reset()
            try:
                for chunk in response.iter_bytes():
                    messages = parser.feed(chunk)
                    events = [json.loads(m.data) for m in messages if m.event == "event"]
                    if events:
                        yield events_frame(events)
                    if any(m.event == "dropped" for m in messages):
                        return
            except httpx.TransportError:
                return  # dropped: the caller resumes from parser.last_id

    def event(self, event_id: str) -> pl.DataFrame:
        """The event with that id as a one-row DataFrame; `GovtrackError` 404 when there is none."""
        row = self._get_json(f"/api/events/{event_id}")
        return _with_times(pl.DataFrame([row]), ("timestamp", "received_at"))

    def cell_history(
        self, workbook_name: str, sheet_name: str, cell_address: str, limit: int = 1000
    ) -> pl.DataFrame:
        """Every change of one cell, newest first: who, when, old -> new value, formula."""
        params = {
            "workbook_name": workbook_name,
            "sheet_name": sheet_name,
            "cell_address": cell_address,
            "limit": limit,
        }
        return _with_times(_frame(self._get_json("/api/cells/history", params)["changes"]), ("timestamp",))

    # -- figures -------------------------------------------------------------------------------

    def stats(self, *, top: int | None = None, **filters: Unpack[EventFilters]) -> Stats:
        """Exact totals and the top users, workbooks and event types over the matching events."""
        body = self._get_json("/api/stats", _params(dict(filters) | {"top": top}))
        return Stats(
            total_events=int(body["total_events"]),
            unique_users=int(body["unique_users"]),
            unique_workbooks=int(body["unique_workbooks"]),
            unique_sessions=int(body["unique_sessions"]),
            first_event_at=_utc(body["first_event_at"]),
            last_event_at=_utc(body["last_event_at"]),
            by_event_type=_counts(body["by_event_type"], "event_type"),
            top_users=_counts(body["top_users"], "user_name"),
            top_workbooks=_counts(body["top_workbooks"], "workbook_name"),
        )

    def timeseries(
        self, bucket: Bucket = "hour", group_by: GroupBy | None = None, **filters: Unpack[EventFilters]
    ) -> pl.DataFrame:
        """Columns ts (UTC datetime), group, count; empty buckets are zero (filled by the server)."""
        params = _params(dict(filters) | {"bucket": bucket, "group_by": group_by})
        series = self._get_json("/api/stats/timeseries", params)["series"]
        schema = {"ts": pl.String, "group": pl.String, "count": pl.Int64}
        frame = pl.DataFrame(series, schema=schema, orient="row") if series else pl.DataFrame(schema=schema)
        return frame.with_columns(pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC"))

    # -- sessions ------------------------------------------------------------------------------

    def iter_sessions(
        self,
        *,
        user_name: str | None = None,
        from_: dt.datetime | str | None = None,
        to: dt.datetime | str | None = None,
        page_rows: int = SESSION_PAGE_ROWS,
    ) -> Iterator[pl.DataFrame]:
        """Sessions newest first, one DataFrame per page (the next page travels in X-Next-Cursor)."""
        params = _params({"user_name": user_name, "from_": from_, "to": to}) | {"limit": page_rows}
        while True:
            response = self._send("GET", "/api/sessions", params=params)
            yield _sessions_frame(response.json())
            cursor = response.headers.get("x-next-cursor")
            if cursor is None:
                return
            params = params | {"cursor": cursor}

    def sessions(
        self,
        *,
        user_name: str | None = None,
        from_: dt.datetime | str | None = None,
        to: dt.datetime | str | None = None,
        max_rows: int | None = None,
    ) -> pl.DataFrame:
        """Every session (or the first `max_rows`) newest first, as one DataFrame."""
        pages: list[pl.DataFrame] = []
        rows = 0
        for page in self.iter_sessions(user_name=user_name, from_=from_, to=to):
            pages.append(page)
            rows += page.height
            if max_rows is not None and rows >= max_rows:
                break
        frame = pl.concat(pages, how="vertical_relaxed") if pages else _sessions_frame([])
        return frame if max_rows is None else frame.head(max_rows)

    def session(self, session_id: str) -> pl.DataFrame:
        """One session's figures as a one-row DataFrame; `GovtrackError` 404 when unknown."""
        return _sessions_frame([self._get_json(f"/api/sessions/{session_id}")])

    # -- exports and ingest --------------------------------------------------------------------

    def export(
        self, *, destination: str | None = None, timeout: float | None = None, **filters: Unpack[EventFilters]
    ) -> ExportManifest:
        """Export matching events as Parquet on the server's side (admin scope); its manifest.

        `destination` is relative to the server's exports folder (default: a fresh directory);
        `timeout` overrides the client's for this long-running call.
        """
        body = _params(dict(filters) | {"destination": destination})
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        raw = self._send("POST", "/api/exports", json=body, **extra).json()
        files = pl.DataFrame(raw["files"], schema={"path": pl.String, "rows": pl.Int64, "sha256": pl.String})
        return ExportManifest(
            destination=str(raw["destination"]), rows=int(raw["rows"]), files=files, raw=raw
        )

    def ingest(self, events: pa.Table | pl.DataFrame) -> dict[str, Any]:
        """Post events as one Arrow IPC batch (ingest scope); the server's answer (stored / queued)."""
        table = events.to_arrow() if isinstance(events, pl.DataFrame) else events
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        response = self._send(
            "POST",
            "/api/events",
            content=sink.getvalue().to_pybytes(),
            headers={"Content-Type": ARROW_STREAM},
        )
        answer: dict[str, Any] = response.json()
        return answer


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def _counts(pairs: list[dict[str, Any]], key: str) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema={key: pl.String, "count": pl.Int64})


_SESSION_SCHEMA: Final[dict[str, pl.DataType]] = {
    "session_id": pl.String(),
    "user_name": pl.String(),
    "machine_name": pl.String(),
    "start_time": pl.String(),
    "end_time": pl.String(),
    "duration_s": pl.Float64(),
    "event_count": pl.Int64(),
    "workbooks": pl.List(pl.String),
}


def _sessions_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=_SESSION_SCHEMA)
    return _with_times(frame, ("start_time", "end_time"))


def _with_times(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    present = [c for c in columns if c in frame.columns and frame.schema[c] == pl.String]
    return frame.with_columns(pl.col(c).str.to_datetime(time_unit="us", time_zone="UTC") for c in present)

"""The analysts' client: govtrack's HTTP API in, polars DataFrames out.

Events travel as Arrow IPC streams (no JSON round trip) and the client follows cursors until the
result is complete. The client is synchronous and holds one `httpx.Client`; pass `http=` to reuse
your own (for example a FastAPI TestClient in tests).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

__all__ = ["GovtrackClient", "GovtrackError"]

ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
DEFAULT_PAGE_ROWS: Final = 250_000


class GovtrackError(RuntimeError):
    """An error answer of the API, with its HTTP status and the contract's error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


def _param(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    """Python-friendly names (`from_`, `start`, `end`) to the API's, datetimes to ISO-8601, None dropped."""
    renamed = {"from_": "from", "start": "from", "end": "to", "to_": "to"}
    return {renamed.get(k, k): _param(v) for k, v in filters.items() if v is not None}


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
    """Read events, statistics, sessions and cell histories as polars DataFrames."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._owned = http is None
        self._http = http if http is not None else httpx.Client(base_url=base_url, timeout=timeout)
        self._base = base_url.rstrip("/")
        self._headers = headers

    def close(self) -> None:
        """Close the HTTP connection pool (only when this client created it)."""
        if self._owned:
            self._http.close()

    def __enter__(self) -> GovtrackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, path: str) -> str:
        return f"{self._base}{path}"

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        response = self._http.get(self._url(path), params=params, headers=self._headers)
        _raise_for_error(response)
        return response

    def events(
        self, *, max_rows: int | None = None, page_rows: int = DEFAULT_PAGE_ROWS, **filters: Any
    ) -> pl.DataFrame:
        """Every matching event (or the first `max_rows`), following cursors, as one DataFrame.

        Filters are the API's (`from_`/`start`, `to`/`end`, `event_type`, `user_name`, ... lists
        allowed); `order` is `desc` by default like the API.
        """
        params = _params(filters)
        tables: list[pa.Table] = []
        rows = 0
        cursor: str | None = None
        while max_rows is None or rows < max_rows:
            limit = page_rows if max_rows is None else min(page_rows, max_rows - rows)
            page, cursor = self._arrow_page(
                params | {"limit": limit} | ({"cursor": cursor} if cursor else {})
            )
            tables.append(page)
            rows += page.num_rows
            if cursor is None:
                break
        table = pa.concat_tables(tables) if tables else None
        return pl.DataFrame(pl.from_arrow(table)) if table is not None else pl.DataFrame()

    def _arrow_page(self, params: dict[str, Any]) -> tuple[pa.Table, str | None]:
        headers = self._headers | {"Accept": ARROW_STREAM}
        with self._http.stream("GET", self._url("/api/events"), params=params, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_error(response)
            reader = ipc.open_stream(pa.PythonFile(_ByteStream(response.iter_bytes()), mode="r"))
            table = reader.read_all()
            return table, response.headers.get("x-next-cursor")

    def stats(self, *, top: int | None = None, **filters: Any) -> dict[str, Any]:
        """The dashboard summary as the API returns it."""
        result: dict[str, Any] = self._get("/api/stats", _params(filters | {"top": top})).json()
        return result

    def timeseries(self, bucket: str = "hour", group_by: str | None = None, **filters: Any) -> pl.DataFrame:
        """Columns ts (UTC datetime), group, count; zero-filled by the server."""
        params = _params(filters | {"bucket": bucket, "group_by": group_by})
        series = self._get("/api/stats/timeseries", params).json()["series"]
        schema = {"ts": pl.String, "group": pl.String, "count": pl.Int64}
        frame = pl.DataFrame(series, schema=schema, orient="row") if series else pl.DataFrame(schema=schema)
        return frame.with_columns(pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC"))

    def sessions(self, *, max_rows: int | None = None, **filters: Any) -> pl.DataFrame:
        """Sessions newest first (filters `user_name`, `from_`, `to`), following the next-page header."""
        params = _params(filters) | {"limit": 10_000}
        rows: list[dict[str, Any]] = []
        while max_rows is None or len(rows) < max_rows:
            response = self._get("/api/sessions", params)
            rows.extend(response.json())
            cursor = response.headers.get("x-next-cursor")
            if cursor is None:
                break
            params = params | {"cursor": cursor}
        return _with_times(_frame(rows[:max_rows] if max_rows else rows), ("start_time", "end_time"))

    def cell_history(
        self, workbook_name: str, sheet_name: str, cell_address: str, limit: int = 1000
    ) -> pl.DataFrame:
        """Every change of one cell, newest first."""
        params = {"workbook_name": workbook_name, "sheet_name": sheet_name, "cell_address": cell_address}
        changes = self._get("/api/cells/history", params | {"limit": limit}).json()["changes"]
        return _with_times(_frame(changes), ("timestamp",))


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def _with_times(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    present = [c for c in columns if c in frame.columns]
    return frame.with_columns(pl.col(c).str.to_datetime(time_unit="us", time_zone="UTC") for c in present)


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:200]
    raise GovtrackError(response.status_code, code, message)

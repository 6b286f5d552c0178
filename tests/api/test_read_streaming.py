"""Large reads are streamed in bounded pages and limited in number (every store).

A CSV/NDJSON/Arrow/Parquet read of up to 1,000,000 rows used to be one store call returning every
row before the first byte; nothing limited how many ran at once. The proof of streaming counts
what the real store (wrapped, never mocked) has handed out when the first bytes arrive; nothing
is timed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from analytics.demo import generate_events
from storage.base import EventFilter, EventStore, Page
from storage.forwarding import ForwardingStore
from storage.keyset import MAX_PAGE_ROWS
from storage.schema import EVENT_SCHEMA
from tests.api.readkit import START, assert_error, client_with

T = TypeVar("T")
CSV = "text/csv"
NDJSON = "application/x-ndjson"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


class CountingReads(ForwardingStore):
    """The real store; counts the rows each `query` call hands out."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.asked: list[int] = []
        self.rows = 0

    def _forward(self, call: Callable[[], T]) -> T:
        return call()

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        table = self.inner.query(flt, page)
        self.asked.append(page.limit)
        self.rows += table.num_rows
        return table


def _ids(table: pa.Table, order: str = "desc") -> list[str]:
    df = pl.DataFrame(pl.from_arrow(table.select(["timestamp", "event_id"])))
    desc = order == "desc"
    return df.sort(["timestamp", "event_id"], descending=[desc, desc])["event_id"].to_list()


def _csv_ids(content: bytes) -> list[str]:
    options = pcsv.ConvertOptions(column_types={f.name: pa.string() for f in EVENT_SCHEMA})
    ids: list[str] = (
        pcsv.read_csv(io.BytesIO(content), convert_options=options).column("event_id").to_pylist()
    )
    return ids


def _body_ids(accept: str, content: bytes) -> list[str]:
    if accept == CSV:
        return _csv_ids(content)
    if accept == NDJSON:
        return [json.loads(line)["event_id"] for line in content.decode().splitlines()]
    if accept == ARROW:
        ids: list[str] = ipc.open_stream(content).read_all().column("event_id").to_pylist()
        return ids
    parquet: list[str] = pq.read_table(io.BytesIO(content)).column("event_id").to_pylist()
    return parquet


def test_a_200k_row_csv_starts_before_the_store_produced_it(store: EventStore, tmp_path: Path) -> None:
    seeded = generate_events(200_000, seed=5, start=START, days=20)
    store.append(seeded)
    want = _ids(seeded)
    del seeded
    counting = CountingReads(store)
    with client_with(counting, tmp_path, read_batch_bytes=1024 * 1024) as client:
        params = {"limit": 200_000}
        with client.stream("GET", "/api/events", params=params, headers={"Accept": CSV}) as r:
            assert r.status_code == 200
            chunks = r.iter_raw()
            first = next(chunks)
            rows_when_first_bytes_came = counting.rows
            calls_when_first_bytes_came = len(counting.asked)
            content = first + b"".join(chunks)
    assert first.startswith(b'"event_id",')
    assert rows_when_first_bytes_came <= 5_000, rows_when_first_bytes_came  # of 200,000
    assert calls_when_first_bytes_came <= 3
    assert max(counting.asked) <= MAX_PAGE_ROWS
    assert len(counting.asked) > 10
    assert "x-next-cursor" not in r.headers
    assert _csv_ids(content) == want


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("accept", [CSV, NDJSON, ARROW, PARQUET])
def test_streamed_pages_are_exact_and_their_cursor_continues(
    store: EventStore, tmp_path: Path, order: str, accept: str
) -> None:
    seeded = generate_events(3_000, seed=9, start=START, days=2, users=3)
    store.append(seeded)
    want = _ids(seeded, order)
    bob = seeded.filter(pc.equal(seeded.column("user_name"), seeded.column("user_name")[0]))
    with client_with(store, tmp_path, read_batch_bytes=64 * 1024) as client:
        r = client.get("/api/events", params={"limit": 2_500, "order": order}, headers={"Accept": accept})
        assert r.status_code == 200, r.text
        assert _body_ids(accept, r.content) == want[:2_500]
        rest = client.get(
            "/api/events", params={"limit": 2_500, "order": order, "cursor": r.headers["x-next-cursor"]}
        )
        assert [e["event_id"] for e in rest.json()["events"]] == want[2_500:]
        everything = client.get(
            "/api/events", params={"limit": 5_000, "order": order}, headers={"Accept": accept}
        )
        assert "x-next-cursor" not in everything.headers
        assert _body_ids(accept, everything.content) == want
        user = bob.column("user_name")[0].as_py()
        one = client.get(
            "/api/events",
            params={"limit": 1_000, "order": order, "user_name": user},
            headers={"Accept": accept},
        )
        assert _body_ids(accept, one.content) == _ids(bob, order)[:1_000]


def test_large_reads_beyond_the_setting_are_429_until_one_ends(store: EventStore, tmp_path: Path) -> None:
    store.append(generate_events(3_000, seed=3, start=START, days=2))
    settings = {"max_concurrent_large_reads": 1, "read_batch_bytes": 64 * 1024, "overload_retry_after_s": 7}
    with client_with(store, tmp_path, **settings) as client:
        large = {"limit": 20_000}
        with client.stream("GET", "/api/events", params=large, headers={"Accept": CSV}) as held:
            assert held.status_code == 200
            next(held.iter_raw())  # the read is under way and holds the one permit
            refused = client.get("/api/events", params=large, headers={"Accept": NDJSON})
            assert_error(refused, 429, "too_many_large_reads")
            assert refused.headers["retry-after"] == "7"
            posted = client.post("/api/events/query", json=large, headers={"Accept": ARROW})
            assert_error(posted, 429, "too_many_large_reads")
            export = client.post("/api/exports", json={})
            assert_error(export, 429, "too_many_large_reads")
            small = client.get("/api/events", params={"limit": 5_000}, headers={"Accept": CSV})
            assert small.status_code == 200  # not a large read
            assert client.get("/api/events", params={"limit": 100}).status_code == 200
        # the held response was closed unread: its permit is back
        again = client.get("/api/events", params=large, headers={"Accept": CSV})
        assert again.status_code == 200
        assert len(_csv_ids(again.content)) == 3_000
        assert client.post("/api/exports", json={}).status_code == 200

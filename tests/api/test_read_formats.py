"""Every Accept format returns the seeded rows; the vectorised JSON writer equals json.dumps.

Expected rows come from the seeded input in plain Python (sorted, timestamps as ISO text,
attributes parsed), never from the writers under test.
"""

from __future__ import annotations

import io
import json
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.formats import attributes_json, json_strings, negotiate
from storage.base import EventStore
from storage.schema import EVENT_SCHEMA
from tests.api.readkit import iso, seed

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def _json_page(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get("/api/events", params=params).json()["events"]
    return events


def _ordered(table: pa.Table, order: str, limit: int) -> list[dict[str, Any]]:
    """The seeded rows as Python values, in the API's (timestamp, event_id) order, first `limit`."""
    rows = sorted(table.to_pylist(), key=lambda r: (r["timestamp"], r["event_id"]), reverse=order == "desc")
    return rows[:limit]


def _as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One seeded row as the contract's JSON event: ISO-8601 `Z` timestamps, attributes parsed."""
    out = dict(row)
    out["timestamp"], out["received_at"] = iso(row["timestamp"]), iso(row["received_at"])
    out["attributes"] = {k: json.loads(v) for k, v in row["attributes"]}
    return out


def _as_csv(event: dict[str, Any], neutralize: bool) -> dict[str, Any]:
    """A JSON event as CSV carries it (read back with every column as text).

    With the CSV-injection defence on (setting `csv_neutralize`), text a spreadsheet would run as a
    formula (leading = + - @ tab CR) gets a leading `'`.
    """
    event = {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in event.items()}
    if not neutralize:
        return event
    return {
        k: "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
        for k, v in event.items()
    }


#: The store's own columns (the transparency log): what the seeded rows cannot know in advance.
LOG = ("leaf_index", "leaf_hash")


def _without_log(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in LOG}


def test_arrow_and_parquet_return_the_canonical_schema_and_same_rows(
    client: TestClient, store: EventStore
) -> None:
    seeded = seed(store, 120)
    params = {"limit": 50, "order": "asc"}
    want_rows = [_without_log(r) for r in _ordered(seeded, "asc", 50)]
    page = _json_page(client, params)
    assert [_without_log(e) for e in page] == [_as_json(r) for r in want_rows]
    assert len({e["leaf_index"] for e in page}) == 50
    arrow = client.get("/api/events", params=params, headers={"Accept": ARROW})
    assert arrow.headers["content-type"] == ARROW
    table = ipc.open_stream(arrow.content).read_all()
    parquet = client.get("/api/events", params=params, headers={"Accept": PARQUET})
    assert parquet.headers["content-type"] == PARQUET
    ptable = pq.read_table(io.BytesIO(parquet.content))
    for binary in (table, ptable):
        assert binary.schema.equals(EVENT_SCHEMA)
        assert binary.drop_columns(list(LOG)).to_pylist() == want_rows
        assert binary.column("leaf_index").to_pylist() == [e["leaf_index"] for e in page]
        assert [h.hex() for h in binary.column("leaf_hash").to_pylist()] == [e["leaf_hash"] for e in page]
    assert arrow.headers["x-next-cursor"] == parquet.headers["x-next-cursor"]
    follow = client.get("/api/events", params=params | {"cursor": arrow.headers["x-next-cursor"]})
    assert [e["event_id"] for e in follow.json()["events"]] == [
        r["event_id"] for r in _ordered(seeded, "asc", 100)[50:]
    ]


def test_csv_and_ndjson_return_the_same_rows(client: TestClient, store: EventStore) -> None:
    seeded = seed(store, 80)
    params = {"limit": 80}
    page = _json_page(client, params)
    assert [_without_log(e) for e in page] == [
        _as_json(_without_log(r)) for r in _ordered(seeded, "desc", 80)
    ]
    want = page  # with the log's columns as the store assigned them: the other formats must agree
    r = client.get("/api/events", params=params, headers={"Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert "x-next-cursor" not in r.headers  # all 80 fit
    options = pcsv.ConvertOptions(
        column_types={f.name: pa.string() for f in EVENT_SCHEMA},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    csv_rows = pcsv.read_csv(io.BytesIO(r.content), convert_options=options).to_pylist()
    for row in csv_rows:
        row["attributes"] = json.loads(row["attributes"])
    neutralize = bool(getattr(client.app.state.govtrack.settings, "csv_neutralize", False))  # type: ignore[attr-defined]
    assert csv_rows == [_as_csv(e, neutralize) for e in want]
    nd = client.get("/api/events", params=params, headers={"Accept": "application/x-ndjson"})
    assert nd.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in nd.text.splitlines()] == want


def test_csv_timestamps_parse_back_as_utc_timestamps(client: TestClient, store: EventStore) -> None:
    table = seed(store, 30)
    r = client.get("/api/events", params={"order": "asc"}, headers={"Accept": "text/csv"})
    parsed = pcsv.read_csv(io.BytesIO(r.content))
    assert parsed.column("timestamp").type == pa.timestamp("ns", tz="UTC")  # pyarrow infers ns
    want = pl.DataFrame(pl.from_arrow(table.select(["timestamp", "event_id"]))).sort(
        ["timestamp", "event_id"]
    )
    got = parsed.column("timestamp").cast(pa.timestamp("us", tz="UTC")).to_pylist()
    assert got == want["timestamp"].to_list()


def test_streamed_formats_allow_large_limits_and_empty_results(client: TestClient, store: EventStore) -> None:
    seed(store, 20)
    for accept in (ARROW, PARQUET, "text/csv", "application/x-ndjson"):
        r = client.get(
            "/api/events", params={"limit": 1_000_000, "user_name": "nobody"}, headers={"Accept": accept}
        )
        assert r.status_code == 200, accept
    empty = client.get("/api/events", params={"user_name": "nobody"}, headers={"Accept": ARROW})
    assert ipc.open_stream(empty.content).read_all().num_rows == 0
    assert client.get("/api/events", params={"format": "parquet"}).headers["content-type"] == PARQUET


def test_negotiation() -> None:
    assert negotiate(None) == "json"
    assert negotiate("text/html") == "json"
    assert negotiate("*/*") == "json"
    assert negotiate("text/csv;q=0.5, application/vnd.apache.parquet") == "parquet"
    assert negotiate("text/csv;q=0.9, application/json;q=0.1") == "csv"
    assert negotiate("application/x-ndjson;q=0, text/csv") == "csv"
    assert negotiate("text/csv", "arrow") == "arrow"


def test_json_strings_escape_like_json_dumps() -> None:
    values = ["plain", 'q"uote', "back\\slash", "new\nline\ttab\r", "\x00\x01\x1f\x7f", "ümlaut €", "", None]
    got = json_strings(pa.array(values, type=pa.string())).to_pylist()
    assert [json.loads(v) for v in got] == values


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_json_strings_round_trip_any_text(values: list[str | None]) -> None:
    got = json_strings(pa.array(values, type=pa.string())).to_pylist()
    assert [json.loads(v) for v in got] == values


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(), st.booleans(), st.none())),
        max_size=8,
    ),
    st.integers(0, 3),
)
def test_attributes_become_objects_of_parsed_values(maps: list[dict[str, Any]], offset: int) -> None:
    stored = [[(k, json.dumps(v)) for k, v in m.items()] for m in maps]
    array = pa.array(stored, type=pa.map_(pa.string(), pa.string())).slice(min(offset, len(maps)))
    got = [json.loads(text) for text in attributes_json(array).to_pylist()]
    assert got == maps[min(offset, len(maps)) :]

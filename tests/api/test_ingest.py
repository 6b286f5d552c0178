"""POST /api/events through the real app over every store: fixtures, idempotency, error shapes."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from storage.base import AppendResult, EventFilter, EventStore, Page
from storage.errors import TransientStoreError
from tests.api.faultkit import faulty_client, state_of, wait_until
from tests.conftest import FIXTURES

PASCAL = FIXTURES / "addin_batch_pascal.json"
CAMEL = FIXTURES / "addin_batch_camel.ndjson"
INVALID = FIXTURES / "addin_batch_invalid.json"
JSON_HEADERS = {"Content-Type": "application/json"}
NDJSON_HEADERS = {"Content-Type": "application/x-ndjson"}


class CountingStore:
    """Forwards everything to the real store and counts appends (a delegate, not a mock)."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.name = inner.name
        self.appends = 0

    def append(self, batch: pa.Table, /) -> AppendResult:
        self.appends += 1
        return self.inner.append(batch)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


class UnavailableStore(CountingStore):
    """The real store, except that every append fails as an unreachable server would."""

    def append(self, batch: pa.Table, /) -> AppendResult:
        raise TransientStoreError("store unreachable (test)")


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        store_url=f"parquet://{tmp_path / 'unused-store'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        **overrides,
    )


@pytest.fixture
def app_over(store: EventStore, tmp_path: Path) -> Iterator[Any]:
    """Build a client over `store` wrapped as given, with settings overrides."""
    clients: list[TestClient] = []

    def build(wrapper: type[CountingStore] | None = None, **overrides: Any) -> tuple[TestClient, Any]:
        wrapped = wrapper(store) if wrapper else store
        app = create_app(settings_for(tmp_path, **overrides), store=cast(EventStore, wrapped))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client, wrapped

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def stored_ids(store: EventStore) -> list[str]:
    table = store.query(EventFilter(), Page(limit=10_000))
    ids: list[str] = table.column("event_id").to_pylist()
    return ids


def fixture_ids(path: Path, skip: frozenset[int] = frozenset()) -> set[str]:
    events = json.loads(path.read_text())["events"]
    return {e["EventId"].lower() for i, e in enumerate(events) if i not in skip and "EventId" in e}


def assert_ingest_body(body: dict[str, Any], status: str, accepted: int, rejected: int) -> None:
    assert set(body) == {"status", "accepted", "rejected", "errors", "batch_id", "processing_time_ms"}
    assert (body["status"], body["accepted"], body["rejected"]) == (status, accepted, rejected)
    assert len(body["errors"]) == rejected
    assert isinstance(body["batch_id"], str)
    assert body["batch_id"]
    assert body["processing_time_ms"] >= 0


def assert_error_shape(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["request_id"] == resp.headers["X-Request-ID"]
    if code is not None:
        assert body["error"]["code"] == code
    return body


def test_pascal_json_is_stored(client: TestClient, store: EventStore) -> None:
    resp = client.post("/api/events", content=PASCAL.read_bytes(), headers=JSON_HEADERS)
    assert resp.status_code == 200, resp.text
    assert_ingest_body(resp.json(), "stored", 25, 0)
    assert resp.json()["batch_id"] == json.loads(PASCAL.read_text())["batch_id"]
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 25
    assert fixture_ids(PASCAL) <= set(ids)


def test_camel_ndjson_is_stored(client: TestClient, store: EventStore) -> None:
    resp = client.post("/api/events", content=CAMEL.read_bytes(), headers=NDJSON_HEADERS)
    assert resp.status_code == 200, resp.text
    assert_ingest_body(resp.json(), "stored", 25, 0)
    lines = [json.loads(line) for line in CAMEL.read_text().splitlines() if line.strip()]
    assert set(stored_ids(store)) == {e["eventId"].lower() for e in lines}


def test_gzip_body_is_accepted(client: TestClient, store: EventStore) -> None:
    headers = {**JSON_HEADERS, "Content-Encoding": "gzip"}
    resp = client.post("/api/events", content=gzip.compress(PASCAL.read_bytes()), headers=headers)
    assert resp.status_code == 200, resp.text
    assert len(stored_ids(store)) == 25


def test_partly_invalid_batch_is_207_with_exact_errors(client: TestClient, store: EventStore) -> None:
    resp = client.post("/api/events", content=INVALID.read_bytes(), headers=JSON_HEADERS)
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert_ingest_body(body, "stored", 7, 3)
    events = json.loads(INVALID.read_text())["events"]
    got = [(e["index"], e["event_id"], e["field"]) for e in body["errors"]]
    assert got == [
        (2, events[2]["EventId"], "timestamp"),
        (5, events[5]["EventId"], "timestamp"),
        (8, events[8]["EventId"], "user_name"),
    ]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    ids = stored_ids(store)
    assert sorted(ids) == sorted(fixture_ids(INVALID, skip=frozenset({2, 5, 8})))


def test_resent_batch_never_duplicates(client: TestClient, store: EventStore) -> None:
    raw = PASCAL.read_bytes()
    answers = [client.post("/api/events", content=raw, headers=JSON_HEADERS) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["accepted"] for a in answers] == [25, 25]  # a resend is acknowledged, not stored again
    doc = json.loads(raw)
    part = {"events": doc["events"][3:12]}  # a part, including the event without EventId (index 6)
    resp = client.post("/api/events", json=part, headers={"Idempotency-Key": "retry-1"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 9
    assert resp.json()["batch_id"] == "retry-1"
    assert store.stats(EventFilter(), 10).total_events == 25
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 25


def test_resent_invalid_batch_stores_valid_events_once(client: TestClient, store: EventStore) -> None:
    raw = INVALID.read_bytes()
    for _ in range(2):
        assert client.post("/api/events", content=raw, headers=JSON_HEADERS).status_code == 207
    assert len(stored_ids(store)) == 7


def test_invalid_json_is_400(client: TestClient) -> None:
    resp = client.post("/api/events", content=b'{"events": [', headers=JSON_HEADERS)
    assert_error_shape(resp, 400)


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    resp = client.post("/api/events", content=PASCAL.read_bytes(), headers={"Content-Type": "text/plain"})
    assert_error_shape(resp, 415)


def test_unsupported_content_encoding_is_415(client: TestClient) -> None:
    headers = {**JSON_HEADERS, "Content-Encoding": "br"}
    resp = client.post("/api/events", content=PASCAL.read_bytes(), headers=headers)
    assert_error_shape(resp, 415)


def test_no_valid_event_is_422_with_details(client: TestClient, store: EventStore) -> None:
    events = json.loads(INVALID.read_text())["events"]
    resp = client.post("/api/events", json={"events": [events[2], events[5], events[8]]})
    body = assert_error_shape(resp, 422, "invalid_events")
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [
        (0, "timestamp"),
        (1, "timestamp"),
        (2, "user_name"),
    ]
    assert stored_ids(store) == []


def test_too_many_events_is_413(app_over: Any) -> None:
    client, _ = app_over(max_batch_events=5)
    resp = client.post("/api/events", content=PASCAL.read_bytes(), headers=JSON_HEADERS)
    assert_error_shape(resp, 413)


def test_too_many_bytes_is_413_also_after_decompression(app_over: Any) -> None:
    client, _ = app_over(max_body_bytes=4096)
    raw = PASCAL.read_bytes()
    assert len(raw) > 4096
    assert_error_shape(client.post("/api/events", content=raw, headers=JSON_HEADERS), 413)
    headers = {**JSON_HEADERS, "Content-Encoding": "gzip"}
    packed = gzip.compress(raw)
    assert len(packed) < 4096
    assert_error_shape(client.post("/api/events", content=packed, headers=headers), 413)


def test_store_unavailable_is_202_queued_in_the_spool(
    app_over: Any, store: EventStore, tmp_path: Path
) -> None:
    client, _ = app_over(UnavailableStore)
    resp = client.post("/api/events", content=PASCAL.read_bytes(), headers=JSON_HEADERS)
    assert resp.status_code == 202, resp.text
    assert_ingest_body(resp.json(), "queued", 25, 0)
    assert stored_ids(store) == []
    assert len(list((tmp_path / "spool").glob("*.arrow"))) == 1


def test_concurrent_posts_are_group_committed(store: EventStore, tmp_path: Path) -> None:
    """Requests that arrive while an append runs queue behind it and share the next one.

    Deterministic: the first append is held at the store (FaultyStore.pause) until the other 23
    requests are known to be queued in the writer; released, they must go as ONE append.
    """
    events = json.loads(PASCAL.read_text())["events"]
    requests = 24

    def post(client: TestClient, i: int) -> int:
        # Each request carries 5 of the 25 events, so requests overlap and re-send events.
        part = [events[(i * 5 + k) % 25] for k in range(5)]
        status: int = client.post("/api/events", json={"events": part}).status_code
        return status

    with faulty_client(store, tmp_path) as (client, faulty), ThreadPoolExecutor(max_workers=requests) as pool:
        writer = state_of(client).writer
        faulty.pause()
        try:
            first = pool.submit(post, client, 0)
            assert faulty.entered.wait(30), "the first append never reached the store"
            rest = [pool.submit(post, client, i) for i in range(1, requests)]
            wait_until(lambda: writer.queued_rows == 5 * (requests - 1))
        finally:
            faulty.resume()
        statuses = [first.result(30)] + [f.result(30) for f in rest]
    assert statuses == [200] * requests
    assert faulty.append_calls == 2
    assert (writer.stats.appends, writer.stats.requests) == (2, requests)
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 25


def test_arrow_stream_resend_of_stored_events_never_duplicates(client: TestClient, store: EventStore) -> None:
    assert client.post("/api/events", content=PASCAL.read_bytes(), headers=JSON_HEADERS).status_code == 200
    table = store.query(EventFilter(), Page(limit=100)).drop_columns(["received_at", "batch_id"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    resp = client.post(
        "/api/events",
        content=sink.getvalue().to_pybytes(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert resp.status_code == 200, resp.text
    assert_ingest_body(resp.json(), "stored", 25, 0)
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 25

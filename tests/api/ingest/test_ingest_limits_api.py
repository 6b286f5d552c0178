"""The ingest route applies the decoder's caps from the settings, and keeps big bodies off the event loop.

Through the real app on both stores: an over-cap batch is a clear 413 and stores nothing; which
bodies are decoded on the loop is observed by a pass-through wrapper around the decoder (it records
whether an asyncio loop runs in the thread that decodes), not by timing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.ingest.decoding import decode_batch
from api.settings import Settings
from storage.base import EventFilter, EventStore, Page

ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}
JSON = {"Content-Type": "application/json"}


def events(count: int, **extra: Any) -> list[dict[str, Any]]:
    moment = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    return [
        {"timestamp": moment, "event_type": "cell_change", "user_name": f"u{i}"} | extra for i in range(count)
    ]


def stored(store: EventStore) -> int:
    rows: int = store.query(EventFilter(), Page(limit=100_000)).num_rows
    return rows


@pytest.fixture
def app_with(store: EventStore, tmp_path: Path) -> Iterator[Any]:
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        settings = Settings(
            store_url=f"parquet://{tmp_path / 'unused-store'}",
            spool_dir=tmp_path / "spool",
            archive_url=str(tmp_path / "archive"),
            **overrides,
        )
        client = TestClient(create_app(settings, store=store))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def decoded_on_loop(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each decoded body: True when it was decoded in the event loop's thread."""
    seen: list[bool] = []
    real = decode_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr("api.routes.ingest.decode_batch", spy)
    return seen


def arrow_body(count: int) -> bytes:
    table = pa.table(
        {k: pa.array([e[k] for e in events(count)]) for k in ("timestamp", "event_type", "user_name")}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_large_and_arrow_bodies_are_decoded_off_the_loop(
    app_with: Any, store: EventStore, decoded_on_loop: list[bool]
) -> None:
    client = app_with(inline_decode_max_bytes=4096)
    small = json.dumps(events(3)).encode()
    large = json.dumps(events(200)).encode()
    assert len(small) <= 4096 < len(large)
    for content, headers in ((small, JSON), (large, JSON), (arrow_body(3), ARROW)):
        assert client.post("/api/events", content=content, headers=headers).status_code == 200
    assert decoded_on_loop == [True, False, False]
    assert stored(store) == 206


def test_extra_key_cap_from_settings(app_with: Any, store: EventStore) -> None:
    client = app_with(max_batch_extra_keys=10)
    wide = [e | {f"k{i}": i} for i, e in enumerate(events(11))]
    resp = client.post("/api/events", content=json.dumps(wide).encode(), headers=JSON)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_many_attribute_keys"
    assert stored(store) == 0
    assert client.post("/api/events", content=json.dumps(wide[:10]).encode(), headers=JSON).status_code == 200
    assert stored(store) == 10


def test_arrow_decoded_cap_from_settings(app_with: Any, store: EventStore) -> None:
    client = app_with(max_arrow_decoded_bytes=4096)
    resp = client.post("/api/events", content=arrow_body(500), headers=ARROW)
    assert (resp.status_code, resp.json()["error"]["code"]) == (413, "payload_too_large")
    assert client.post("/api/events", content=arrow_body(5), headers=ARROW).status_code == 200
    assert stored(store) == 5

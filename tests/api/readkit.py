"""Helpers shared by the read-API tests: seeding a store with demo events and a polars oracle."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from fastapi.testclient import TestClient

from analytics.demo import generate_events
from storage.base import EventStore

START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


@contextmanager
def client_with(store: EventStore, tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    """The app over `store` (lifespan running), its spool and archive in tmp_path unless overridden."""
    from api.app import create_app
    from api.settings import Settings

    defaults: dict[str, Any] = {
        "store_url": f"parquet://{tmp_path / 'unused-store'}",
        "spool_dir": tmp_path / "spool",
        "archive_url": str(tmp_path / "archive"),
    }
    with TestClient(create_app(Settings(**(defaults | overrides)), store=store)) as client:
        yield client


def seed(store: EventStore, n: int = 300, seed: int = 11, **kwargs: Any) -> pa.Table:
    """Append `n` demo events (a few days, few users so filters hit) and return them."""
    options: dict[str, Any] = {"days": 4, "users": 6, "workbooks": 8, "events_per_session": 20} | kwargs
    table = generate_events(n, seed=seed, start=START, **options)
    store.append(table)
    return table


def frame(table: pa.Table) -> pl.DataFrame:
    """The seeded table as polars, for computing expected answers independently of the engine."""
    return pl.from_arrow(table.drop_columns(["attributes"]))  # type: ignore[return-value]


def iso(value: dt.datetime) -> str:
    """The API's timestamp text."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expected_ids(df: pl.DataFrame, order: str = "desc") -> list[str]:
    """Event ids of `df` in the API's order: (timestamp, event_id), desc by default."""
    desc = order == "desc"
    ordered = df.sort(["timestamp", "event_id"], descending=[desc, desc])
    return ordered["event_id"].to_list()


def ids(response_json: dict[str, Any]) -> list[str]:
    """Event ids of a JSON page."""
    return [e["event_id"] for e in response_json["events"]]


def page_through(client: TestClient, params: dict[str, Any], *, post: bool = False) -> list[str]:
    """Follow next_cursor until it is null; every page must be a 200."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = params | ({"cursor": cursor} if cursor else {})
        r = client.post("/api/events/query", json=query) if post else client.get("/api/events", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(ids(body))
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    """The contract's error shape with this status (and code)."""
    assert response.status_code == status, response.text
    body = json.loads(response.content)
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["details"], list)
    if code is not None:
        assert body["error"]["code"] == code, body

"""Helpers for app-level fault tests: the real app over `FaultyStore(real store)`, and its state."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.settings import Settings
from api.state import AppState
from storage.base import EventFilter, EventStore, Page
from tests.conftest import FIXTURES
from tests.faults import FaultyStore

PASCAL = FIXTURES / "addin_batch_pascal.json"
JSON_HEADERS = {"Content-Type": "application/json"}


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    """Test settings: everything under tmp_path, fast replay/open backoff, overrides on top."""
    values: dict[str, Any] = {
        "store_url": f"parquet://{tmp_path / 'unused-store'}",
        "spool_dir": tmp_path / "spool",
        "archive_url": str(tmp_path / "archive"),
        "store_retry_max_wait_ms": 1,
        "store_open_retry_max_s": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def faulty_client(
    store: EventStore, tmp_path: Path, **overrides: Any
) -> Iterator[tuple[TestClient, FaultyStore]]:
    """The real app over FaultyStore(store), lifespan running."""
    faulty = FaultyStore(store)
    app = create_app(settings_for(tmp_path, **overrides), store=cast(EventStore, faulty))
    with TestClient(app) as client:
        yield client, faulty


def state_of(client: TestClient) -> AppState:
    """The running app's state (writer, appender, spool, breaker, deferred store)."""
    state: AppState = client.app.state.govtrack  # type: ignore[attr-defined]
    return state


def post_pascal(client: TestClient, **headers: str) -> Any:
    """POST the 25-event add-in fixture."""
    return client.post("/api/events", content=PASCAL.read_bytes(), headers={**JSON_HEADERS, **headers})


def stored_ids(store: EventStore) -> list[str]:
    """Every stored event_id, as the store's reads return them (duplicates would show)."""
    ids: list[str] = store.query(EventFilter(), Page(limit=10_000)).column("event_id").to_pylist()
    return ids


def metric(
    client: TestClient,
    name: str,
    headers: dict[str, str] | None = None,
    *,
    absent_ok: bool = False,
    **labels: str,
) -> float:
    """One sample of /metrics; a missing sample fails the test unless `absent_ok` (then 0.0).

    Why strict: a test asserting `metric(...) == 0` must not pass because the metric was renamed or
    never registered. Only a caller that means "nothing recorded yet" passes `absent_ok=True`.
    """
    resp = client.get("/metrics", headers=headers or {})
    assert resp.status_code == 200, resp.text
    label_sets: list[dict[str, str]] = []
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
            label_sets.append(dict(sample.labels))
    if absent_ok:
        return 0.0
    if not label_sets:
        raise AssertionError(f"/metrics has no sample named {name!r}")
    raise AssertionError(f"/metrics has {name!r} but none labelled {labels}; it has {label_sets}")


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `condition` (background tasks run on their own schedule); fail after a generous bound."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)

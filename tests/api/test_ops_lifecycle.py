"""Start before the store answers, and shut down cleanly.

The service never turns an add-in away because its database restarted first, and while stopping
it refuses (503) rather than half-takes work.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import cast

from fastapi.testclient import TestClient

from api.app import begin_shutdown, create_app
from storage.base import EventStore
from storage.errors import TransientStoreError
from storage.spool import Spool
from tests.api.faultkit import (
    faulty_client,
    metric,
    post_pascal,
    settings_for,
    state_of,
    stored_ids,
    wait_until,
)
from tests.faults import FaultyStore


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_starts_and_takes_events_while_clickhouse_is_unreachable(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, store_url=f"http://127.0.0.1:{closed_port()}/govtrack")
    with TestClient(create_app(settings)) as client:
        assert client.get("/live").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["writes_to"] == "spool"
        resp = post_pascal(client)
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "queued"
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["checks"]["store"]["open"] is False
        assert health["checks"]["store"]["ok"] is False
        assert health["checks"]["spool"]["depth"] == 1
        read = client.get("/api/events")
        assert read.status_code == 503
        assert read.json()["error"]["code"] == "store_unavailable"
        assert int(read.headers["Retry-After"]) > 0
        assert metric(client, "govtrack_store_up") == 0
    with Spool(tmp_path / "spool", max_bytes=1 << 30) as spool:  # the lock was released at shutdown
        assert spool.depth == 1  # kept for the next start


class LateStore(FaultyStore):
    """The real store, whose `open` fails (as an unreachable server's would) until `allow_open`."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.may_open = threading.Event()

    def open(self) -> None:
        if not self.may_open.is_set():
            raise TransientStoreError("injected: connection refused")
        super().open()


def test_store_that_opens_late_gets_the_spooled_events_once(store: EventStore, tmp_path: Path) -> None:
    late = LateStore(store)
    settings = settings_for(tmp_path, replay_interval_s=0.05, breaker_reset_timeout_s=0)
    with TestClient(create_app(settings, store=cast(EventStore, late))) as client:
        state = state_of(client)
        assert not state.deferred.is_open
        assert post_pascal(client).status_code == 202
        assert client.get("/api/stats").status_code == 503
        late.may_open.set()
        wait_until(lambda: state.deferred.is_open and state.appender.spool.depth == 0)
        assert client.get("/api/stats").json()["total_events"] == 25
        assert post_pascal(client).status_code == 200  # a re-send after recovery: stored, no duplicate
        assert client.get("/health").json()["status"] == "healthy"
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 25


def test_requests_during_shutdown_get_503_shutting_down(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, _):
        begin_shutdown(client.app)
        resp = post_pascal(client)
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "shutting_down"
        assert int(resp.headers["Retry-After"]) > 0
        assert resp.json()["request_id"] == resp.headers["X-Request-ID"]
        assert client.get("/ready").status_code == 503
        assert client.get("/api/events").status_code == 503
        assert client.get("/live").status_code == 200
    assert stored_ids(store) == []


def test_shutdown_drains_the_writer_and_releases_the_spool(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, writer_max_wait_ms=0) as (client, _):
        assert post_pascal(client).status_code == 200
        writer = state_of(client).writer
    assert writer.pending_rows == 0
    assert writer.stats.rows == 25
    with Spool(tmp_path / "spool", max_bytes=1 << 30) as spool:
        assert spool.depth == 0
    assert len(stored_ids(store)) == 25

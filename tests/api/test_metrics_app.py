"""/metrics of the real app on every store: ingest, query and HTTP figures move with the traffic."""

from __future__ import annotations

from pathlib import Path

from storage.base import EventStore
from tests.api.faultkit import faulty_client, metric, post_pascal


def test_ingest_and_query_figures(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, _):
        assert post_pascal(client).status_code == 200
        assert client.post("/api/events", json={"events": [{"event_type": "x"}]}).status_code == 422
        assert client.get("/api/stats").status_code == 200
        assert client.get("/api/events", params={"limit": 5}).status_code == 200
        assert metric(client, "govtrack_events_accepted_total") == 25
        assert metric(client, "govtrack_events_rejected_total") == 1
        assert metric(client, "govtrack_batches_total", status="stored") == 1
        assert metric(client, "govtrack_batches_total", status="rejected") == 1
        assert metric(client, "govtrack_ingest_latency_seconds_count") == 2
        assert metric(client, "govtrack_store_append_seconds_count") == 1
        assert metric(client, "govtrack_query_latency_seconds_count", endpoint="stats") == 1
        assert metric(client, "govtrack_query_latency_seconds_count", endpoint="list_events") == 1
        assert (
            metric(client, "govtrack_http_requests_total", method="POST", route="/api/events", status="200")
            == 1
        )
        assert metric(client, "govtrack_spool_depth_files") == 0
        assert metric(client, "govtrack_breaker_state") == 0
        assert metric(client, "govtrack_writer_pending_rows") == 0


def test_read_store_errors_are_counted(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, faulty):
        faulty.go_down()
        assert client.get("/api/stats").status_code == 503
        assert metric(client, "govtrack_store_errors_total", kind="transient") == 1
        assert metric(client, "govtrack_query_latency_seconds_count", endpoint="stats") == 1

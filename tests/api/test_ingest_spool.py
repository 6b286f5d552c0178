"""Ingest while the store fails, on every store behind FaultyStore.

202 queued, replay exactly once, spool cap 503, backpressure 429, breaker in /health and /metrics.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from storage.base import EventStore
from tests.api.faultkit import PASCAL, faulty_client, metric, post_pascal, state_of, stored_ids, wait_until

FIXTURE_IDS = {e["EventId"].lower() for e in json.loads(PASCAL.read_text())["events"] if "EventId" in e}


def test_store_down_answers_202_and_replay_stores_each_event_once(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, replay_interval_s=3600) as (client, faulty):
        faulty.go_down()
        first = post_pascal(client)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "queued"
        assert first.json()["accepted"] == 25
        again = post_pascal(client)  # the add-in retries the same batch: queued behind the first
        assert again.status_code == 202
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["checks"]["spool"]["depth"] == 2
        assert health["checks"]["spool"]["bytes"] > 0
        assert client.get("/ready").json()["writes_to"] == "spool"
        assert stored_ids(faulty.inner) == []

        faulty.come_up()
        state = state_of(client)
        state.appender.breaker.record_success()  # skip the breaker's reset wait; replay is what's tested
        assert state.appender.replay_once() == 2
        ids = stored_ids(store)
        assert len(ids) == len(set(ids)) == 25
        assert set(ids) >= FIXTURE_IDS
        assert list((tmp_path / "spool").glob("*.arrow")) == []
        assert client.get("/health").json()["status"] == "healthy"
        after = post_pascal(client)  # the spool is empty again: straight to the store
        assert after.status_code == 200
        assert after.json()["status"] == "stored"
    assert len(stored_ids(store)) == 25


def test_background_replay_drains_the_spool(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, replay_interval_s=0.05, breaker_reset_timeout_s=0) as (
        client,
        faulty,
    ):
        faulty.go_down()
        assert post_pascal(client).status_code == 202
        faulty.come_up()
        spool = state_of(client).appender.spool
        wait_until(lambda: spool.depth == 0)
        assert sorted(stored_ids(store)) == sorted(set(stored_ids(store)))
        assert len(stored_ids(store)) == 25


def test_spool_left_at_shutdown_is_replayed_by_the_final_flush(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, replay_interval_s=3600, breaker_reset_timeout_s=0) as (
        client,
        faulty,
    ):
        faulty.go_down()
        assert post_pascal(client).status_code == 202
        faulty.come_up()
    assert len(stored_ids(store)) == 25
    assert list((tmp_path / "spool").glob("*.arrow")) == []


def test_spool_cap_answers_503_with_retry_after(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, spool_max_bytes=20_000, replay_interval_s=3600) as (client, faulty):
        faulty.go_down()
        assert post_pascal(client).status_code == 202  # ~12 KB: fits
        resp = post_pascal(client)
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "spool_full"
        assert int(resp.headers["Retry-After"]) > 0
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert client.get("/health").json()["status"] == "unhealthy"
        assert client.get("/live").status_code == 200
        assert metric(client, "govtrack_batches_total", status="refused") == 1


def test_full_writer_queue_answers_429_with_retry_after(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, max_pending_rows=30) as (client, faulty):
        faulty.pause()
        answers: list[Any] = []
        first = threading.Thread(target=lambda: answers.append(post_pascal(client)))
        first.start()
        try:
            assert faulty.entered.wait(30)  # 25 rows are in an append that cannot finish yet
            resp = post_pascal(client, **{"Idempotency-Key": "second"})
            assert resp.status_code == 429, resp.text
            assert resp.json()["error"]["code"] == "overloaded"
            assert int(resp.headers["Retry-After"]) > 0
        finally:
            faulty.resume()
            first.join(30)
        assert answers[0].status_code == 200
        assert len(stored_ids(store)) == 25


def test_too_many_ingest_requests_in_flight_answer_429(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path, max_inflight_requests=1) as (client, faulty):
        faulty.pause()
        answers: list[Any] = []
        first = threading.Thread(target=lambda: answers.append(post_pascal(client)))
        first.start()
        try:
            assert faulty.entered.wait(30)
            resp = client.post("/api/events", json={"events": []})
            assert resp.status_code == 429
            assert resp.json()["error"]["code"] == "overloaded"
        finally:
            faulty.resume()
            first.join(30)
        assert answers[0].status_code == 200
        assert post_pascal(client).status_code == 200  # the slot is free again


def test_breaker_opens_and_shows_in_health_and_metrics(store: EventStore, tmp_path: Path) -> None:
    overrides: dict[str, Any] = {"breaker_failure_threshold": 1, "replay_interval_s": 3600}
    with faulty_client(store, tmp_path, **overrides) as (client, faulty):
        assert metric(client, "govtrack_breaker_state") == 0
        assert metric(client, "govtrack_store_up") == 1
        faulty.go_down()
        assert post_pascal(client).status_code == 202
        store_check = client.get("/health").json()["checks"]["store"]
        assert store_check["breaker"]["state"] == "open"
        assert store_check["ok"] is False
        assert "injected" in store_check["last_error"]
        assert metric(client, "govtrack_breaker_state") == 2
        assert metric(client, "govtrack_store_up") == 0
        assert metric(client, "govtrack_spool_depth_files") == 1
        assert metric(client, "govtrack_spool_bytes") > 0
        assert metric(client, "govtrack_events_queued_total") == 25
        assert metric(client, "govtrack_events_accepted_total") == 25
        assert metric(client, "govtrack_batches_total", status="queued") == 1
        assert metric(client, "govtrack_store_errors_total", kind="transient") >= 1


def test_terminal_store_error_is_500_and_not_spooled(store: EventStore, tmp_path: Path) -> None:
    with faulty_client(store, tmp_path) as (client, faulty):
        faulty.fail_terminally(1)
        resp = post_pascal(client)
        assert resp.status_code == 500
        assert resp.json()["error"]["code"] == "store_error"
        assert list((tmp_path / "spool").glob("*.arrow")) == []
        assert post_pascal(client).status_code == 200
        assert metric(client, "govtrack_store_errors_total", kind="terminal") == 1

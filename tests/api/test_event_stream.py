"""GET /api/events/stream on both stores: live events in commit order, filters, resumption, limits.

Events are appended to the real store (directly, or through POST /api/events) while a stream is
read through Starlette's TestClient, which passes each chunk on only when the test reads it: a
test that stops reading is a client that stopped reading.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import assert_error
from tests.api.ssekit import SSEReader, streaming_app
from tests.contract.events import BASE, event, table


def rows(first: int, n: int, **fields: Any) -> list[dict[str, Any]]:
    return [event(i, **fields) for i in range(first, first + n)]


def leaves(messages: list[Any]) -> list[int]:
    return [int(m.last_id) for m in messages]


def test_events_committed_after_connect_arrive_in_leaf_order(store: EventStore, tmp_path: Path) -> None:
    store.append(table(rows(1, 5)))  # before the stream: not sent (it starts at the log's end)
    with streaming_app(store, tmp_path) as client, client.stream("GET", "/api/events/stream") as response:
        reader = SSEReader(response)
        assert reader.next().last_id == "4"  # the starting id, before any event
        posted = [{**e, "timestamp": e["timestamp"].isoformat()} for e in rows(100, 3)]
        for e in posted:
            e.pop("received_at"), e.pop("batch_id"), e.pop("attributes")
        assert client.post("/api/events", json={"events": posted}).status_code == 200
        store.append(table(rows(200, 4, timestamp=BASE - dt.timedelta(days=40))))  # older, later
        got = reader.events(7)
        assert leaves(got) == list(range(5, 12))
        assert [m.json()["leaf_index"] for m in got] == leaves(got)
        assert {m.json()["event_id"] for m in got[:3]} == {e["event_id"] for e in posted}
        for m in (got[0], got[-1]):  # the same object as GET /api/events/{id} (and its pages)
            assert m.json() == client.get(f"/api/events/{m.json()['event_id']}").json()


def test_filters_apply_and_heartbeats_carry_the_position(store: EventStore, tmp_path: Path) -> None:
    params = {"user_name": ["CORP\\bob", "CORP\\chen"], "event_type": "cell_change", "text": "x"}
    with streaming_app(store, tmp_path) as client:
        with client.stream("GET", "/api/events/stream", params=params) as response:
            reader = SSEReader(response)
            store.append(table(rows(1, 6, user_name="CORP\\alice", new_value="x")))  # leaves 0-5
            store.append(table(rows(10, 3, user_name="CORP\\bob", new_value="x1")))  # 6-8
            store.append(table(rows(20, 2, user_name="CORP\\chen", event_type="sheet_add", new_value="x")))
            store.append(table(rows(30, 2, user_name="CORP\\chen", new_value="y")))  # 11-12
            got = reader.events(3)
            assert leaves(got) == [6, 7, 8]
            while reader.next().last_id != "12":  # a heartbeat moves the id past filtered-out leaves
                pass
        store.append(table(rows(40, 1, user_name="CORP\\chen", new_value="x")))  # 13
        with client.stream("GET", "/api/events/stream", params=params, headers={"Last-Event-ID": "12"}) as r:
            assert leaves(SSEReader(r).events(1)) == [13]


def test_reconnecting_with_the_last_id_misses_nothing_and_repeats_nothing(
    store: EventStore, tmp_path: Path
) -> None:
    batches, size = 30, 7
    done = threading.Event()

    def append() -> None:
        try:
            for k in range(batches):
                store.append(table(rows(1000 + k * size, size)))
                time.sleep(0.01)
        finally:
            done.set()

    received: list[int] = []
    ids: list[str] = []
    with streaming_app(store, tmp_path) as client:
        writer = threading.Thread(target=append)
        how: list[dict[str, Any]] = [{}, {"headers": {}}, {"params": {}}, {"headers": {}}]
        for turn, kwargs in enumerate(how):
            last = str(received[-1]) if received else None
            if last is not None and "headers" in kwargs:
                kwargs = {"headers": {"Last-Event-ID": last}, "params": {"last_event_id": "0"}}  # header wins
            elif last is not None:
                kwargs = {"params": {"last_event_id": last}}
            with client.stream("GET", "/api/events/stream", **kwargs) as response:
                reader = SSEReader(response)
                if turn == 0:
                    writer.start()
                want = 50 if turn < len(how) - 1 else batches * size - len(received)
                got = reader.events(want)
                received += leaves(got)
                ids += [m.json()["event_id"] for m in got]
        writer.join()
    assert received == list(range(batches * size))
    assert len(set(ids)) == len(ids) == batches * size


def test_last_event_id_minus_one_replays_the_log_and_from_still_filters(
    store: EventStore, tmp_path: Path
) -> None:
    store.append(table(rows(1, 10)))  # timestamps BASE + 1..10 minutes
    cut = (BASE + dt.timedelta(minutes=6)).isoformat()
    with streaming_app(store, tmp_path) as client:
        params = {"last_event_id": "-1", "from": cut}
        with client.stream("GET", "/api/events/stream", params=params) as response:
            reader = SSEReader(response)
            assert [m.json()["event_id"] for m in reader.events(5)] == [
                event(i)["event_id"] for i in range(6, 11)
            ]
            store.append(table(rows(50, 2) + rows(60, 1, timestamp=BASE)))  # the last one is before `from`
            assert leaves(reader.events(2)) == [10, 11]


def ended(client: TestClient, reason: str, timeout_s: float = 20.0) -> None:
    """Wait until the server has ended a stream for `reason` (the test reads nothing meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while stream_gate_of(client).ended.get(reason, 0) == 0:
        assert time.monotonic() < deadline, f"no stream ended for {reason}"
        time.sleep(0.05)


def stream_gate_of(client: TestClient) -> Any:
    return client.app.state.govtrack_event_streams  # type: ignore[attr-defined]


def test_a_reader_that_stops_reading_is_dropped_with_a_final_event(store: EventStore, tmp_path: Path) -> None:
    buffer_bytes, n = 4096, 300
    with streaming_app(store, tmp_path, stream_buffer_bytes=buffer_bytes) as client:
        with client.stream("GET", "/api/events/stream") as response:
            reader = SSEReader(response)
            reader.next()  # the prelude
            store.append(table(rows(1, n)))
            ended(client, "slow_reader")  # reading nothing meanwhile
            before, final = reader.until("dropped")
            assert final.json()["reason"] == "slow_reader"
            assert "took nothing" in final.json()["message"]
            assert reader.next().event == "end"  # then the server ends the stream
        # Only what the response had taken before the drop arrives: at most one buffer's worth,
        # a prefix of the leaves; the rest was let go, the store still has it.
        assert leaves(before) == list(range(len(before)))
        assert sum(len(m.data) for m in before) <= buffer_bytes
        with client.stream("GET", "/api/events/stream", headers={"Last-Event-ID": str(reader.last_id)}) as r:
            rest = SSEReader(r).events(n - len(before))
        assert leaves(before) + leaves(rest) == list(range(n))
        assert stream_gate_of(client).active == 0


def test_shutdown_ends_a_stream_with_a_reason(store: EventStore, tmp_path: Path) -> None:
    with streaming_app(store, tmp_path) as client, client.stream("GET", "/api/events/stream") as response:
        reader = SSEReader(response)
        store.append(table(rows(1, 2)))
        assert leaves(reader.events(2)) == [0, 1]
        client.app.state.govtrack.draining = True  # type: ignore[attr-defined]
        _, final = reader.until("dropped")
        assert final.json()["reason"] == "shutting_down"
        assert reader.next().event == "end"


def test_the_stream_needs_the_read_scope(store: EventStore, tmp_path: Path) -> None:
    with streaming_app(store, tmp_path, api_keys="ingest-key:ingest,read-key:read") as client:
        assert_error(client.get("/api/events/stream"), 401)
        assert_error(client.get("/api/events/stream", headers={"X-API-Key": "ingest-key"}), 403)
        with client.stream("GET", "/api/events/stream", headers={"X-API-Key": "read-key"}) as response:
            assert SSEReader(response).next().last_id == "-1"


BAD: list[tuple[dict[str, Any], dict[str, str], str]] = [
    ({"from": "yesterday"}, {}, "from"),
    ({"event_type": "x" * 65}, {}, "event_type"),
    ({"last_event_id": "one"}, {}, "last_event_id"),
    ({}, {"Last-Event-ID": "-2"}, "Last-Event-ID"),
    ({}, {"Last-Event-ID": "3"}, "Last-Event-ID"),  # past the log's end (3 leaves: 0-2)
    ({"last_event_id": ["1", "2"]}, {}, "last_event_id"),
]


def test_bad_filters_and_resume_points_are_400(store: EventStore, tmp_path: Path) -> None:
    store.append(table(rows(1, 3)))
    with streaming_app(store, tmp_path) as client:
        for params, headers, field in BAD:
            response = client.get("/api/events/stream", params=params, headers=headers)
            assert_error(response, 400, "invalid_query")
            assert field in {d["field"] for d in response.json()["error"]["details"]}, response.json()


def test_streams_beyond_the_cap_are_429(store: EventStore, tmp_path: Path) -> None:
    with streaming_app(store, tmp_path, max_event_streams=2) as client:
        with (
            client.stream("GET", "/api/events/stream") as one,
            client.stream("GET", "/api/events/stream") as two,
        ):
            SSEReader(one).next(), SSEReader(two).next()
            with client.stream("GET", "/api/events/stream") as third:
                assert_error(third.read() and third, 429, "too_many_streams")
                assert third.headers["retry-after"] == "1"
        with client.stream("GET", "/api/events/stream") as again:  # the slots are free again
            assert SSEReader(again).next().last_id == "-1"


def test_a_store_without_a_log_answers_501(shared_chdb: EventStore, tmp_path: Path) -> None:
    with streaming_app(shared_chdb, tmp_path) as client:
        assert_error(client.get("/api/events/stream"), 501, "log_disabled")


def test_the_route_is_published_with_its_resume_parameters(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/events/stream"]["get"]
    declared = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert {("query", "user_name"), ("query", "last_event_id"), ("header", "Last-Event-ID")} <= declared
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"400", "401", "429", "501"} <= set(operation["responses"])
    assert "log's current" in operation["description"]

"""GovtrackClient.stream against the real app on every store, and against a server killed mid-stream.

In process, the TestClient is the client's transport (nothing mocked): the server ends the stream
(shutdown) and refuses the reconnect (503) until the retry hook lets it start again. The slow test
kills a real `govtrack serve` with SIGKILL while the client reads and starts it again on the same
port and data: the client resumes with Last-Event-ID.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from analytics.client import GovtrackClient, GovtrackError, RetryPolicy
from analytics.http import GovtrackError as HttpError
from storage.base import EventStore
from tests.api.ssekit import streaming_app
from tests.contract.events import event, table
from tests.e2e import server as e2e_server
from tests.e2e.server import Server, ServerDirs, make_batch


def rows(first: int, n: int, **fields: Any) -> list[dict[str, Any]]:
    return [event(i, attributes=[("k", '"v"'), ("n", "1")], **fields) for i in range(first, first + n)]


def take(frames: Iterator[pl.DataFrame], n: int) -> pl.DataFrame:
    """The first `n` events of the stream (frames are whole batches: never cut here)."""
    got: list[pl.DataFrame] = []
    while sum(f.height for f in got) < n:
        got.append(next(frames))
    return pl.concat(got)


def test_stream_frames_are_events_frames_and_resume_after_the_server_ends_it(
    store: EventStore, tmp_path: Path
) -> None:
    waits: list[float] = []
    with streaming_app(store, tmp_path, retry_after_s=3) as http:

        def back_up(error: HttpError, wait: float) -> None:
            assert (error.status, error.code) == (503, "shutting_down")
            http.app.state.govtrack.draining = False  # type: ignore[attr-defined]

        gt = GovtrackClient(
            "http://testserver", http=http, retry=RetryPolicy(on_retry=back_up, sleep=waits.append)
        )
        store.append(table(rows(1, 3)))  # leaves 0-2: before the resume point
        frames = gt.stream(user_name="CORP\\alice", last_event_id=2)  # opens at the first next()
        store.append(table(rows(10, 4) + rows(20, 2, user_name="CORP\\bob")))
        a = take(frames, 4)
        http.app.state.govtrack.draining = True  # type: ignore[attr-defined]  # the server ends the stream
        store.append(table(rows(30, 5)))
        b = take(frames, 5)
        frames.close()
        events = gt.events(order="asc", user_name="CORP\\alice")
    assert waits == [3.0]  # one refused reconnect, after the server's Retry-After
    got = pl.concat([a, b])
    assert got["leaf_index"].to_list() == list(range(3, 7)) + list(range(9, 14))
    assert got.schema == events.schema  # the same columns and types as `events`
    assert got.sort("leaf_index").equals(events.filter(pl.col("leaf_index") >= 3).sort("leaf_index"))


def test_stream_errors_that_cannot_succeed_later_raise(shared_chdb: EventStore, tmp_path: Path) -> None:
    with streaming_app(shared_chdb, tmp_path) as http:
        gt = GovtrackClient("http://testserver", http=http)
        with pytest.raises(GovtrackError) as caught:
            next(gt.stream())
        assert (caught.value.status, caught.value.code) == (501, "log_disabled")
        with pytest.raises(GovtrackError) as bad:
            next(gt.stream(from_="yesterday"))
        assert (bad.value.status, bad.value.code) == (400, "invalid_query")


@pytest.mark.slow
def test_stream_resumes_after_the_server_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.parquet_url)
    received: list[pl.DataFrame] = []
    done = threading.Event()
    policy = RetryPolicy(max_retries=200, max_wait_s=0.2, backoff_s=0.05)
    try:
        server.wait_ready()
        gt = GovtrackClient(server.base, retry=policy, timeout=30)

        def read() -> None:
            for frame in gt.stream(last_event_id=-1):
                received.append(frame)
                if sum(f.height for f in received) >= 300:
                    break
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        first, body = make_batch(150, "before")
        assert httpx.post(f"{server.base}/api/events", json=body, timeout=60).status_code == 200
        while sum(f.height for f in received) < 150:
            assert reader.is_alive()
            done.wait(0.05)
        server.kill9()
        monkeypatch.setattr(e2e_server, "free_port", lambda: server.port)  # the same address again
        server = Server(dirs, dirs.parquet_url)
        server.wait_ready()
        second, body = make_batch(150, "after")
        assert httpx.post(f"{server.base}/api/events", json=body, timeout=60).status_code in (200, 202)
        assert done.wait(60), server.log_tail()
    finally:
        server.stop()
    got = pl.concat(received)
    assert got["leaf_index"].to_list() == list(range(300))
    assert sorted(got["event_id"].to_list()[:150]) == sorted(first.ids)
    assert sorted(got["event_id"].to_list()[150:]) == sorted(second.ids)

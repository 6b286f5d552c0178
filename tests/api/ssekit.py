r"""Reading GET /api/events/stream in tests: an SSE parser (the spec's rules) and a fast-ticking app.

The parser is written from the HTML standard's "interpreting an event stream", not from the
server's code: fields after the first colon, one leading space dropped, `data` lines joined with
"\n", the last event id kept across messages, comments kept here so heartbeats can be seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import client_with

__all__ = ["Message", "SSEReader", "streaming_app"]

#: Settings that make a stream tick fast enough for tests (no wait over a second).
FAST: dict[str, Any] = {"stream_poll_s": 0.02, "stream_heartbeat_s": 0.2, "stream_stall_s": 0.3}


@dataclass
class Message:
    """One dispatched block: its event type, joined data, the last event id then, its comments."""

    event: str
    data: str
    last_id: str | None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class SSEReader:
    """Messages of a streamed response, in order; `next` gives up after `timeout_s`."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.iter_lines()
        self.last_id: str | None = None
        self.ended = False

    def next(self, timeout_s: float = 10.0) -> Message:
        """The next block (an event, an id-only move, a comment, or `ended`); heartbeats bound the wait."""
        deadline = time.monotonic() + timeout_s
        event, seen = "", False
        data: list[str] = []
        comments: list[str] = []
        for line in self._lines:
            assert time.monotonic() < deadline, "no complete message in time"
            if line == "":
                if seen:
                    return Message(event or "message", "\n".join(data), self.last_id, comments)
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                comments.append(value)
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id" and "\0" not in value:
                self.last_id = value
        self.ended = True
        return Message("end", "", self.last_id)

    def events(self, n: int, timeout_s: float = 20.0) -> list[Message]:
        """The next `n` `event` messages (skipping heartbeats and id moves); fails on anything else."""
        deadline = time.monotonic() + timeout_s
        found: list[Message] = []
        while len(found) < n:
            assert time.monotonic() < deadline, f"{len(found)} of {n} events arrived"
            msg = self.next(max(0.1, deadline - time.monotonic()))
            assert msg.event in ("event", "message"), msg
            if msg.event == "event":
                found.append(msg)
        return found

    def until(self, event: str, timeout_s: float = 10.0) -> tuple[list[Message], Message]:
        """Every `event` message up to the first one of type `event` (returned apart)."""
        deadline = time.monotonic() + timeout_s
        before: list[Message] = []
        while True:
            assert time.monotonic() < deadline, f"no {event!r} message in time"
            msg = self.next(max(0.1, deadline - time.monotonic()))
            if msg.event == event:
                return before, msg
            if msg.event == "event":
                before.append(msg)


@contextmanager
def streaming_app(store: EventStore, tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    """The app over `store` with fast stream settings (`settings` override them), lifespan running."""
    with client_with(store, tmp_path, **(FAST | settings)) as client:
        yield client

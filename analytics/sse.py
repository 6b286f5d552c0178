"""Server-sent events for the analysts' client: a parser, and events as the client's DataFrames.

`GET /api/events/stream` sends each stored event as one SSE message whose data is the same JSON
object as an item of `GET /api/events`; `events_frame` turns a batch of them into a DataFrame with
exactly the columns and types of `GovtrackClient.events` (the canonical Arrow schema), so frames
from both can be concatenated.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import polars as pl
import pyarrow as pa

from storage.schema import EVENT_SCHEMA

__all__ = ["Message", "SSEParser", "events_frame"]

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_TIMES: Final = ("timestamp", "received_at")


@dataclass(frozen=True)
class Message:
    """One dispatched SSE message."""

    event: str
    data: str


class SSEParser:
    """Bytes in, messages out, by the HTML standard's rules; `last_id` is the id to resume from."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""
        self._data: list[str] = []
        self._event = ""

    def reset(self) -> None:
        """Forget a message cut short by a closed connection (`last_id` is kept)."""
        self._decoder.reset()
        self._pending, self._data, self._event = "", [], ""

    def feed(self, chunk: bytes) -> list[Message]:
        """The messages completed by `chunk`."""
        lines = _LINE_BREAK.split(self._pending + self._decoder.decode(chunk))
        self._pending = lines.pop()
        out: list[Message] = []
        for line in lines:
            found = self._line(line)
            if found is not None:
                out.append(found)
        return out

    def _line(self, line: str) -> Message | None:
        if line == "":
            data, event = self._data, self._event or "message"
            self._data, self._event = [], ""
            return Message(event, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


def _row(event: dict[str, Any]) -> dict[str, Any]:
    """An API event object as a row of the canonical schema (attributes back to JSON texts)."""
    row = dict(event)
    for name in _TIMES:
        if isinstance(row.get(name), str):
            row[name] = dt.datetime.fromisoformat(row[name])
    attributes = row.get("attributes") or {}
    row["attributes"] = [
        (k, json.dumps(v, separators=(",", ":"), ensure_ascii=False)) for k, v in attributes.items()
    ]
    if isinstance(row.get("leaf_hash"), str):
        row["leaf_hash"] = bytes.fromhex(row["leaf_hash"])
    return row


def events_frame(events: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """API event objects as one DataFrame with the columns and types of `GovtrackClient.events`."""
    table = pa.Table.from_pylist([_row(e) for e in events], schema=EVENT_SCHEMA)
    return pl.DataFrame(pl.from_arrow(table))

"""Checks shared by the hostile-input tests: the error shape, liveness, and the store's exact content.

Each hostile request is judged the same way: no 5xx; every 4xx in the contract's error shape with
the request id; the process still answers /live; and the store holds exactly the events the
acknowledged answers said were accepted (nothing from a refused body, nothing from a rejected
event). Problems are collected per case and reported together, so one run shows every failure.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.testclient import TestClient

from storage.base import EventFilter, EventStore, Page

__all__ = ["Judge", "event", "stored_ids"]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def event(**fields: Any) -> dict[str, Any]:
    """One valid event with a fresh explicit id (overridden by `fields`)."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": (NOW - dt.timedelta(hours=1)).isoformat(),
        "event_type": "cell_change",
        "user_name": "hostile",
        "workbook_name": "h.xlsx",
        "sheet_name": "S",
        "cell_address": "A1",
        "new_value": "v",
    }
    return base | fields


def stored_ids(store: EventStore) -> list[str]:
    """Every stored id (duplicates kept), straight from the store."""
    ids: list[str] = store.query(EventFilter(), Page(limit=1_000_000)).column("event_id").to_pylist()
    return ids


def error_shape_problem(resp: httpx.Response) -> str | None:
    """Why a 4xx/5xx body is not the contract's error shape (None when it is)."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return f"error body is not JSON: {resp.content[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error", "request_id"}:
        return f"error body keys: {body if not isinstance(body, dict) else sorted(body)}"
    err = body["error"]
    if not isinstance(err, dict) or set(err) != {"code", "message", "details"}:
        return f"error object: {err}"
    if not isinstance(err["details"], list) or not isinstance(err["code"], str):
        return f"error fields: {err}"
    if body["request_id"] != resp.headers.get("x-request-id"):
        return "request_id differs from X-Request-ID"
    return None


@dataclass
class Judge:
    """Sends hostile requests through `client`, tracking what the store must hold afterwards."""

    client: TestClient
    store: EventStore
    expected: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def check(self, name: str, resp: httpx.Response, allowed: tuple[int, ...] = ()) -> httpx.Response:
        """The generic verdict on one answer; `allowed` (when given) are the acceptable statuses."""
        status = resp.status_code
        if status >= 500:
            self.problems.append(f"{name}: {status} {resp.text[:300]}")
        elif allowed and status not in allowed:
            self.problems.append(f"{name}: status {status} not in {allowed}: {resp.text[:300]}")
        if status >= 400:
            problem = error_shape_problem(resp)
            if problem:
                self.problems.append(f"{name}: {problem}")
        live = self.client.get("/live")
        if live.status_code != 200:
            self.problems.append(f"{name}: /live answered {live.status_code} afterwards")
        return resp

    def ingest(
        self,
        name: str,
        events: list[dict[str, Any]] | None,
        allowed: tuple[int, ...],
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST one body; `events` are the candidate events (their ids), `content` the raw bytes if any."""
        before = set(stored_ids(self.store))
        if content is None:
            content = json.dumps({"events": events}).encode()
        hdrs = {"Content-Type": "application/json"} | (headers or {})
        resp = self.check(name, self.client.post("/api/events", content=content, headers=hdrs), allowed)
        self._expect(name, resp, events or [], before)
        return resp

    def _expect(
        self, name: str, resp: httpx.Response, events: list[dict[str, Any]], before: set[str]
    ) -> None:
        """The store gained exactly the accepted events of an acknowledged answer, else nothing."""
        after = stored_ids(self.store)
        gained = set(after) - before
        if len(after) != len(set(after)):
            self.problems.append(f"{name}: duplicate ids stored")
        if resp.status_code not in (200, 207, 202):
            if gained:
                self.problems.append(f"{name}: refused ({resp.status_code}) but stored {len(gained)} events")
            return
        body = resp.json()
        rejected = {e["index"] for e in body["errors"]}
        candidates = {str(e.get("event_id")).lower() for i, e in enumerate(events) if i not in rejected}
        refused = {str(e.get("event_id")).lower() for i, e in enumerate(events) if i in rejected}
        if len(gained) != body["accepted"] - len(self.expected & set(candidates)):
            self.problems.append(f"{name}: accepted {body['accepted']} but the store gained {len(gained)}")
        if events and not gained <= candidates:
            self.problems.append(
                f"{name}: stored ids that were not accepted: {sorted(gained - candidates)[:3]}"
            )
        if gained & refused:
            self.problems.append(f"{name}: a rejected event was stored")
        self.expected |= gained

    def verdict(self) -> None:
        """Fail with every problem at once; the final store content is exactly the accepted events."""
        final = stored_ids(self.store)
        if set(final) != self.expected or len(final) != len(self.expected):
            self.problems.append(f"store holds {len(final)} events, expected {len(self.expected)}")
        total = self.client.get("/api/stats").json()["total_events"]
        if total != len(self.expected):
            self.problems.append(f"stats total {total}, expected {len(self.expected)}")
        assert not self.problems, "\n".join(self.problems)

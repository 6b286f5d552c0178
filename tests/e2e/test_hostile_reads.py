"""Hostile reads on both stores: every read endpoint x every filter x injection strings, forged cursors.

The store holds one event per injection string carrying that string in every text column, so a
filter bound as data finds exactly that event while a filter spliced into SQL finds the wrong
rows, none, or breaks. The per-endpoint answers are checked against counts computed here, every
4xx must be in the contract's error shape, nothing may be a 5xx, and afterwards the store still
holds exactly what was seeded (no statement slipped through). Cursors are forged with the app's own
MAC key (as a leaked or shared secret would allow) and with the old public default key: the server
must treat a well-signed but absurd token as bad input (400), never as a 500.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.testclient import TestClient

from api.cursor import cursor_key, fingerprint
from storage.base import EventFilter, EventStore, SessionFilter
from tests.e2e.hostile import Judge, event

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE events; --",
    '" OR ""="',
    "\\'; SELECT 1; --",
    "1) OR (1=1",
    "%' OR 1=1 --",
    "{x:String}",
    "$1",
    "?",
    "\x00",
    "*/ SELECT * FROM system.tables /*",
    'events"; DELETE FROM events WHERE "1"="1',
    "é'\"`\\\\",
]
EXACT = (
    "user_name",
    "workbook_name",
    "sheet_name",
    "machine_name",
    "session_id",
    "correlation_id",
    "cell_address",
)
NOT_A_FILTER_VALUE = ("from", "to", "order", "limit", "cursor")


def _seed(judge: Judge) -> list[dict[str, Any]]:
    events = [event(**dict.fromkeys(EXACT, s), new_value=s, formula=f"={s}") for s in INJECTIONS]
    events += [event(user_name="plain", session_id="plain-session") for _ in range(5)]
    resp = judge.ingest("seed", events, (200,))
    assert resp.status_code == 200, resp.text
    return events


def _text_matches(events: list[dict[str, Any]], needle: str) -> int:
    fields = ("old_value", "new_value", "formula")
    return sum(any(needle in str(e.get(f) or "") for f in fields) for e in events)


def _counts(client: TestClient, name: str, value: str) -> dict[str, tuple[httpx.Response, int | None]]:
    """Each read endpoint filtered on `name` = `value`: its answer and the number of matches it reports."""
    params = {name: value}
    out: dict[str, tuple[httpx.Response, int | None]] = {}

    def record(label: str, resp: httpx.Response, count: Callable[[Any], int]) -> None:
        out[label] = (resp, count(resp.json()) if resp.status_code == 200 else None)

    record("GET events", client.get("/api/events", params=params), lambda b: len(b["events"]))
    record("POST query", client.post("/api/events/query", json=params), lambda b: len(b["events"]))
    record("stats", client.get("/api/stats", params=params), lambda b: b["total_events"])
    ts_params = params | {"bucket": "week"}
    record(
        "timeseries",
        client.get("/api/stats/timeseries", params=ts_params),
        lambda b: sum(s["count"] for s in b["series"]),
    )
    if value in INJECTIONS[:3]:  # each export writes files: a few values are enough to prove binding
        record("export", client.post("/api/exports", json=params), lambda b: b["rows"])
    return out


def test_every_read_endpoint_binds_every_filter_as_data(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    events = _seed(judge)
    for name in (*EXACT, "text", "event_type"):
        for value in INJECTIONS:
            if name == "text":
                want = _text_matches(events, value)
            elif name == "event_type":
                want = 0  # stored types are normalised snake_case: no injection string is one
            else:
                want = sum(e.get(name) == value for e in events)
            for label, (resp, got) in _counts(client, name, value).items():
                judge.check(f"{label} {name}={value!r}", resp, (200,))
                if got is not None and got != want:
                    judge.problems.append(f"{label} {name}={value!r}: {got} matches, expected {want}")
    for value in INJECTIONS:
        sessions = judge.check(
            f"sessions user_name={value!r}", client.get("/api/sessions", params={"user_name": value}), (200,)
        )
        if sessions.status_code == 200 and [s["session_id"] for s in sessions.json()] != [value]:
            judge.problems.append(f"sessions user_name={value!r}: {sessions.json()}")
        # a "/" (even as %2F) splits the path before routing: such an id is not addressable by path
        by_path = (404,) if "/" in value else (200,)
        one = judge.check(f"session {value!r}", client.get(f"/api/sessions/{quote(value, safe='')}"), by_path)
        if one.status_code == 200 and one.json()["session_id"] != value:
            judge.problems.append(f"session {value!r}: {one.json()}")
        cell = dict.fromkeys(("workbook_name", "sheet_name", "cell_address"), value)
        history = judge.check(
            f"cell history {value!r}", client.get("/api/cells/history", params=cell), (200,)
        )
        if history.status_code == 200 and len(history.json()["changes"]) != 1:
            judge.problems.append(f"cell history {value!r}: {len(history.json()['changes'])} changes")
        judge.check(f"event id {value!r}", client.get(f"/api/events/{quote(value, safe='')}"), (404,))
    judge.verdict()


ENDPOINTS = ("/api/events", "/api/stats", "/api/stats/timeseries", "/api/sessions", "/api/cells/history")


def test_injection_in_non_text_parameters_is_400(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    _seed(judge)
    cell = {"workbook_name": "w", "sheet_name": "s", "cell_address": "A1"}
    takes = {
        "/api/events": ("from", "to", "order", "limit", "cursor"),
        "/api/stats": ("from", "to", "top"),
        "/api/stats/timeseries": ("from", "to", "bucket", "group_by"),
        "/api/sessions": ("from", "to", "limit", "cursor"),
        "/api/cells/history": ("limit",),
    }
    for path, names in takes.items():
        base = cell if path == "/api/cells/history" else {}
        for name in names:
            for value in INJECTIONS:
                resp = judge.check(
                    f"{path} {name}={value!r}", client.get(path, params=base | {name: value}), (400,)
                )
                if resp.status_code == 400 and resp.json()["error"]["code"] not in (
                    "invalid_query",
                    "invalid_cursor",
                ):
                    judge.problems.append(f"{path} {name}={value!r}: code {resp.json()['error']['code']}")
        judge.check(
            f"{path} injected parameter name",
            client.get(path, params=base | {"'; DROP TABLE events; --": "1"}),
            (200,),
        )
    for value in INJECTIONS[:4]:
        judge.check(
            f"export destination {value!r}",
            client.post("/api/exports", json={"destination": value}),
            (200, 400, 409),
        )
        judge.check(f"export from {value!r}", client.post("/api/exports", json={"from": value}), (400,))
    judge.verdict()


ABSURD: list[tuple[str, dict[str, Any], tuple[int, ...]]] = (
    [
        ("/api/stats", {"top": v}, (400,))
        for v in ("0", "-1", "1001", "1" + "0" * 30, "1e3", "0x10", "NaN", "Infinity")
    ]
    + [("/api/sessions", {"limit": v}, (400,)) for v in ("0", "-1", "10001", "9" * 40, "NaN", "1.0")]
    + [
        (
            "/api/cells/history",
            {"workbook_name": "w", "sheet_name": "s", "cell_address": "A1", "limit": v},
            (400,),
        )
        for v in ("0", "10001", "9" * 40, "-0x1")
    ]
    + [
        ("/api/stats/timeseries", {"bucket": v}, (400,))
        for v in ("year", "second", "MINUTE", "hour ", "Infinity")
    ]
    + [
        ("/api/stats/timeseries", {"bucket": "minute", "from": "1970-01-01", "to": "2200-01-01"}, (400,)),
        ("/api/stats/timeseries", {"bucket": "minute", "from": "0001-01-01", "to": "9999-12-31"}, (400,)),
        ("/api/stats/timeseries", {"bucket": "hour", "from": "2000-01-01", "to": "2200-01-01"}, (400,)),
        ("/api/stats/timeseries", {"bucket": "week", "from": "2000-01-01", "to": "2200-01-01"}, (200,)),
        ("/api/stats/timeseries", {"bucket": "day", "from": "2030-01-01", "to": "2020-01-01"}, (200, 400)),
        ("/api/stats/timeseries", {"bucket": "minute"}, (200,)),
        ("/api/stats", {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59.9999999Z"}, (200,)),
        ("/api/stats", {"from": "2025-02-30"}, (400,)),
        ("/api/stats", {"from": "2025-01-01T00:00:00+24:00"}, (400,)),
        ("/api/events", {"from": "+275760-09-13T00:00:00Z"}, (400,)),
        ("/api/sessions", {"from": "9999-12-31T23:59:59.999999-23:59"}, (200, 400)),
    ]
)


def test_absurd_limits_buckets_and_bounds(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    _seed(judge)
    for path, params, allowed in ABSURD:
        judge.check(f"{path} {params}", client.get(path, params=params), allowed)
    judge.verdict()


OLD_PUBLIC_KEY = b"govtrack-cursor-v1"  # the fixed default key of earlier versions


def _forge(key: bytes, body: Any, raw: bytes | None = None) -> str:
    """A token signed with `key`: what anyone holding the deployment's key could mint."""
    payload = raw if raw is not None else json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def _event_cursor(key: bytes, position: Any) -> str:
    body = {"v": 1, "k": "events", "o": "desc", "f": fingerprint(EventFilter()), "p": position}
    return _forge(key, body)


def _session_cursor(key: bytes, position: Any) -> str:
    body = {"v": 1, "k": "sessions", "o": "desc", "f": fingerprint(SessionFilter()), "p": position}
    return _forge(key, body)


def test_forged_and_tampered_cursors_are_400(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    _seed(judge)
    key = cursor_key(client.app.state.govtrack.settings)  # type: ignore[attr-defined]
    now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
    malformed = [
        _forge(key, None, raw=b"not json at all"),
        _forge(key, None, raw=b"\xff\xfe"),
        _forge(key, None, raw=b"[" * 1_400),
        _forge(key, [1, 2]),
        _forge(key, "x"),
    ]
    malformed += [_forge(key, {"v": 1, "k": "events"}), _forge(key, {"v": 1, "k": "sessions"})]
    shapes: list[Any] = [[], [1], [1, 2, 3], "p", None, ["abc", "x"], [{"a": 1}, ["b"]], [None, None]]
    # well-formed positions out of range or of the wrong type: 400 as well
    shapes += [[ts, "x"] for ts in (2**62, 10**30, -(10**30), 1.5e300, -1, True, 1.0, "1")]
    shapes += [[now_us, ""], [now_us, "x" * 129], [now_us, 1]]
    for token in [*malformed, *(_event_cursor(key, p) for p in shapes)]:
        judge.check(
            f"events cursor {token[:40]}", client.get("/api/events", params={"cursor": token}), (400,)
        )
        judge.check(
            f"query cursor {token[:40]}", client.post("/api/events/query", json={"cursor": token}), (400,)
        )
    for token in [*malformed, *(_session_cursor(key, p) for p in shapes)]:
        judge.check(
            f"sessions cursor {token[:40]}", client.get("/api/sessions", params={"cursor": token}), (400,)
        )
    # the old public default key signs nothing any more
    for path, token in (
        ("/api/events", _event_cursor(OLD_PUBLIC_KEY, [now_us, "x"])),
        ("/api/sessions", _session_cursor(OLD_PUBLIC_KEY, [now_us, "x"])),
    ):
        judge.check(f"{path} old default key", client.get(path, params={"cursor": token}), (400,))
    last_us = (
        dt.datetime(2200, 1, 1, tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    ) // dt.timedelta(microseconds=1) - 1
    for value in INJECTIONS:  # positions carrying injection text, at both ends of the range: bound as data
        for ts in (now_us, 0, last_us):
            judge.check(
                f"events position {value!r}",
                client.get("/api/events", params={"cursor": _event_cursor(key, [ts, value])}),
                (200,),
            )
            judge.check(
                f"sessions position {value!r}",
                client.get("/api/sessions", params={"cursor": _session_cursor(key, [ts, value])}),
                (200,),
            )
    judge.verdict()

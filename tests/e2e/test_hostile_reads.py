"""Hostile reads on both stores: read endpoints x filters x injection strings (pairwise), forged cursors.

The store holds one event per injection string carrying that string in every text column, so a
filter bound as data finds exactly that event while a filter spliced into SQL finds the wrong
rows, none, or breaks. Every endpoint meets every filter and every injection string, and every
filter every injection string (`_plan`). The per-endpoint answers are checked against counts computed here, every
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


def _events(b: Any) -> int:
    return len(b["events"])


def _series_total(b: Any) -> int:
    return sum(s["count"] for s in b["series"])


#: label -> (method, path, extra parameters, matches reported by a 200 body)
READS: dict[str, tuple[str, str, dict[str, str], Callable[[Any], int]]] = {
    "GET events": ("GET", "/api/events", {}, _events),
    "POST query": ("POST", "/api/events/query", {}, _events),
    "stats": ("GET", "/api/stats", {}, lambda b: b["total_events"]),
    "timeseries": ("GET", "/api/stats/timeseries", {"bucket": "week"}, _series_total),
    "export": ("POST", "/api/exports", {}, lambda b: b["rows"]),
}
FILTERS = (*EXACT, "text", "event_type")


def _plan() -> list[tuple[str, str, str]]:
    """(endpoint, filter, injection) cases covering every pair of the three, not every triple.

    The full product (9 filters x 13 injections x 5 endpoints) was ~500 requests per store; the
    code paths differ per filter and per endpoint (rollups, scans, exports), and each injection
    string is its own class, so what must be covered is each filter with each injection, each
    endpoint with each injection, and each endpoint with each filter: the read endpoints rotate
    over the (filter, injection) pairs, and one export per injection rotates over the filters
    (each export writes files). `test_the_plan_covers_every_pair` checks the coverage.
    """
    reads = [label for label in READS if label != "export"]
    plan = [
        (reads[(f + v) % len(reads)], name, value)
        for f, name in enumerate(FILTERS)
        for v, value in enumerate(INJECTIONS)
    ]
    plan += [("export", FILTERS[v % len(FILTERS)], value) for v, value in enumerate(INJECTIONS)]
    return plan


def test_the_plan_covers_every_pair() -> None:
    plan = _plan()
    pairs = [{(e, f) for e, f, _ in plan}, {(e, v) for e, _, v in plan}, {(f, v) for _, f, v in plan}]
    assert pairs[0] == {(e, f) for e in READS for f in FILTERS}
    assert pairs[1] == {(e, v) for e in READS for v in INJECTIONS}
    assert pairs[2] == {(f, v) for f in FILTERS for v in INJECTIONS}


def _wanted(events: list[dict[str, Any]], name: str, value: str) -> int:
    if name == "text":
        return _text_matches(events, value)
    if name == "event_type":
        return 0  # stored types are normalised snake_case: no injection string is one
    return sum(e.get(name) == value for e in events)


def test_every_read_endpoint_binds_every_filter_as_data(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    events = _seed(judge)
    for label, name, value in _plan():
        method, path, extra, count = READS[label]
        params = {name: value} | extra
        resp = client.get(path, params=params) if method == "GET" else client.post(path, json=params)
        judge.check(f"{label} {name}={value!r}", resp, (200,))
        got, want = (count(resp.json()) if resp.status_code == 200 else None), _wanted(events, name, value)
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
    # positions carrying injection text are bound as data; the times rotate over the range's ends
    for index, value in enumerate(INJECTIONS):
        ts = (now_us, 0, last_us)[index % 3]
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

"""Hostile ingest bodies through the real app on both stores: refused cleanly, or stored exactly.

The decoder's own units (tests/api/test_decoding*.py) check the decoding rules; these tests check
the whole path, HTTP to engine and back: for every hostile body no 5xx, the contract's error shape
on every 4xx, the process still alive, and the store holding exactly the accepted events, which
then read back unchanged as strict JSON (no NaN, no lone surrogate can leak into a response).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
from typing import Any

import pyarrow as pa
import zstandard
from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.schema import MAX_EVENT_BYTES, STRING_LIMITS
from tests.e2e.hostile import NOW, Judge, event

BAD = (400, 422)
NDJSON = {"Content-Type": "application/x-ndjson"}


def _strict_json(text: bytes) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    def integer(token: str) -> int | str:  # past Python's 4300-digit int limit: compared as text
        return int(token) if len(token) <= 4300 else token

    return json.loads(text, parse_constant=refuse, parse_int=integer)


def readback(judge: Judge, name: str, event_id: str, **want: Any) -> None:
    """GET the event: 200, strict JSON, and each `want` field equal to what was sent."""
    resp = judge.check(f"{name} readback", judge.client.get(f"/api/events/{event_id}"), (200,))
    if resp.status_code != 200:
        return
    try:
        got = _strict_json(resp.content)
    except ValueError as exc:
        judge.problems.append(f"{name} readback: {exc}")
        return
    for key, value in want.items():
        actual = got["attributes"].get(key[5:]) if key.startswith("attr_") else got.get(key)
        if actual != value:
            judge.problems.append(f"{name} readback: {key} = {str(actual)[:80]!r}, sent {str(value)[:80]!r}")


def test_malformed_and_truncated_bodies(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    good = json.dumps({"events": [event(), event()]}).encode()
    nd = b"\n".join(json.dumps(event()).encode() for _ in range(3))
    raw_cases: list[tuple[str, bytes, tuple[int, ...], dict[str, str]]] = [
        ("empty", b"", BAD, {}),
        ("open brace", b"{", (400,), {}),
        ("open list", b'{"events": [', (400,), {}),
        ("binary garbage", bytes(range(256)), (400,), {}),
        ("null", b"null", BAD, {}),
        ("number", b"123", BAD, {}),
        ("string", b'"events"', BAD, {}),
        ("events not a list", b'{"events": 5}', BAD, {}),
        ("events of scalars", b'{"events": [1, "x", null, true]}', (422,), {}),
        ("empty objects", b'{"events": [{}, {}]}', (422,), {}),
        ("trailing garbage", good + b" xyz", (400,), {}),
        ("two documents", good + good, (400,), {}),
        ("ndjson bad last line", nd + b"\n{", (400,), NDJSON),
        ("ndjson array line", b"[1,2]\n", (422,), NDJSON),
    ]
    raw_cases += [(f"json cut at {n}", good[:n], (400,), {}) for n in (1, len(good) // 2, len(good) - 1)]
    raw_cases += [(f"ndjson cut at {n}", nd[:n], (*BAD, 207), NDJSON) for n in (len(nd) // 2, len(nd) - 1)]
    for name, content, allowed, headers in raw_cases:
        judge.ingest(name, None, allowed, content=content, headers=headers)
    judge.ingest("utf-8 BOM", None, (200, 400), content=b"\xef\xbb\xbf" + good)
    judge.verdict()


def test_nan_infinity_and_huge_numbers(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    for token in ("NaN", "Infinity", "-Infinity", "nan", "inf"):
        ev = event()
        content = json.dumps({"events": [ev]}).replace('"new_value": "v"', f'"new_value": {token}').encode()
        judge.ingest(f"new_value {token}", [ev], (400,), content=content)
        attr = json.dumps({"events": [ev | {"Extra": 1}]}).replace('"Extra": 1', f'"Extra": {token}')
        judge.ingest(f"attribute {token}", [ev], (400,), content=attr.encode())
    for literal in NUMBER_LITERALS:
        ev = event(new_value=0, old_value=1, Extra=2)
        text = (
            json.dumps({"events": [ev]})
            .replace('"new_value": 0', f'"new_value": {literal}')
            .replace('"old_value": 1', f'"old_value": {literal}')
            .replace('"Extra": 2', f'"Extra": {{"n": [{literal}]}}')
        )
        name = f"number {literal[:40]} ({len(literal)} characters)"
        judge.ingest(name, [ev], (200,), content=text.encode())
        readback(judge, name, ev["event_id"], new_value=literal, old_value=literal)
        readback_text(judge, name, ev["event_id"], f'"Extra":{{"n":[{literal}]}}')
    judge.verdict()


#: Literals that must read back as sent: most differ from any float or int round trip of their value.
NUMBER_LITERALS = (
    "1e400",
    "-1e400",
    "1e-400",
    "1E+2",
    "-0",
    "-0.0",
    "0.1e1",
    "2.50",
    str(2**70),
    "123456789012345678901234567890",
    "3.14159265358979323846264338327950288",
    "9" * 5000,
    "true",
)


def readback_text(judge: Judge, name: str, event_id: str, fragment: str) -> None:
    """GET the event: its raw JSON text holds `fragment` (attribute texts are embedded verbatim)."""
    resp = judge.check(f"{name} readback", judge.client.get(f"/api/events/{event_id}"), (200,))
    if resp.status_code == 200 and fragment not in resp.text:
        judge.problems.append(f"{name} readback: {fragment[:60]!r} not in {resp.text[:300]!r}")


def test_non_object_events_are_per_index_errors(client: TestClient, store: EventStore) -> None:
    """Elements that are not objects are per-index errors of a 207; the objects around them are stored."""
    judge = Judge(client, store)
    not_object = {"event_id": None, "field": None, "message": "event must be a JSON object"}
    for form in ("array", "object", "ndjson"):
        first, last = event(), event()
        elements: list[Any] = [first, "x", 5, None, [event()], True, 1e-3, last]
        if form == "ndjson":
            content, headers = b"\n".join(json.dumps(e).encode() for e in elements), NDJSON
        else:
            content, headers = json.dumps(elements if form == "array" else {"events": elements}).encode(), {}
        sent = [first, *[{}] * 6, last]
        resp = judge.ingest(f"non-objects in {form}", sent, (207,), content=content, headers=headers)
        if resp.status_code == 207 and resp.json()["errors"] != [
            {"index": i} | not_object for i in range(1, 7)
        ]:
            judge.problems.append(f"non-objects in {form}: errors {resp.json()['errors']}")
        for ev in (first, last):
            readback(judge, f"non-objects in {form}", ev["event_id"], user_name="hostile")
    judge.verdict()


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + "1" + closer * depth


def test_deep_nesting(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    deep_list = _nested(10_000)
    deep_obj = '{"a":' * 10_000 + "1" + "}" * 10_000
    judge.ingest("body list depth 10000", None, BAD, content=deep_list.encode())
    judge.ingest("body object depth 10000", None, BAD, content=deep_obj.encode())
    for label, deep in (("list", deep_list), ("object", deep_obj)):
        ev, other = event(), event()
        text = json.dumps({"events": [other, ev | {"Extra": 0}]}).replace('"Extra": 0', f'"Extra": {deep}')
        judge.ingest(
            f"attribute {label} depth 10000", [other, ev], (200, 207, 400, 413, 422), content=text.encode()
        )
        line = json.dumps(ev | {"Extra": 0}).replace('"Extra": 0', f'"Extra": {deep}')
        judge.ingest(
            f"ndjson {label} depth 10000",
            [ev],
            (200, 207, 400, 413, 422),
            content=line.encode(),
            headers=NDJSON,
        )
    ev = event()
    text = json.dumps({"events": [ev | {"Extra": 0}]}).replace('"Extra": 0', f'"Extra": {_nested(100)}')
    judge.ingest("attribute depth 100", [ev], (200,), content=text.encode())
    readback(judge, "attribute depth 100", ev["event_id"], attr_Extra=json.loads(_nested(100)))
    judge.verdict()


def test_duplicate_keys(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    ev = event()
    text = json.dumps({"events": [ev]})[:-3] + ', "user_name": "second"}]}'
    judge.ingest("duplicate user_name", [ev], (200,), content=text.encode())
    readback(judge, "duplicate user_name", ev["event_id"], user_name="second")
    first, second = event(), event()
    text = '{"events": [' + json.dumps(first) + '], "events": [' + json.dumps(second) + "]}"
    resp = judge.ingest("duplicate events key", [first, second], (200, 400), content=text.encode())
    if resp.status_code == 200 and resp.json()["accepted"] != 1:
        judge.problems.append(f"duplicate events key: accepted {resp.json()['accepted']}, one list wins")
    spelled = event()
    text = json.dumps(
        {"events": [spelled | {"EventId": spelled["event_id"], "eventId": spelled["event_id"]}]}
    )
    judge.ingest("one field in three spellings", [spelled], (200,), content=text.encode())
    judge.verdict()


def test_nul_characters_and_lone_surrogates(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    nul = event(user_name="a\x00b", new_value="\x00", session_id="s\x00", Extra="x\x00y", **{"K\x00ey": 1})
    judge.ingest("escaped NUL everywhere", [nul], (200,))
    readback(judge, "escaped NUL", nul["event_id"], user_name="a\x00b", new_value="\x00", session_id="s\x00")
    readback(judge, "escaped NUL", nul["event_id"], attr_Extra="x\x00y", **{"attr_K\x00ey": 1})
    found = client.get("/api/events", params={"user_name": "a\x00b"}).json()["events"]
    if [e["event_id"] for e in found] != [nul["event_id"]]:
        judge.problems.append(f"filter on a NUL user_name found {len(found)} events")
    raw = event(user_name="RAWNUL")
    content = json.dumps({"events": [raw]}).replace("RAWNUL", "a\x00b").encode()
    resp = judge.ingest("raw NUL byte in a string", [raw], (200, 400), content=content)
    if resp.status_code == 200:
        readback(judge, "raw NUL", raw["event_id"], user_name="a\x00b")
    for field in ("user_name", "new_value", "Extra", "event_type"):
        ev = event(**{field: "LONE"})
        for label, replacement in (
            ("escaped", b"\\ud800"),
            ("cesu bytes", b"\xed\xa0\x80"),
            ("bad utf8", b"\xff"),
        ):
            content = json.dumps({"events": [ev]}).encode().replace(b"LONE", b"x" + replacement)
            judge.ingest(f"{label} surrogate in {field}", [ev], (400, 422), content=content)
            line = json.dumps(ev).encode().replace(b"LONE", b"x" + replacement)
            judge.ingest(f"ndjson {label} in {field}", [ev], (400, 422), content=line, headers=NDJSON)
    pair = event(user_name="\U0001f600 \ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16"))
    judge.ingest("escaped surrogate pair", [pair], (200,))
    readback(judge, "surrogate pair", pair["event_id"], user_name="\U0001f600 \U0001f600")
    judge.verdict()


def _limit_events() -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Every limited field at its limit (accepted) and one past it (rejected: index -> field)."""
    events: list[dict[str, Any]] = []
    past: dict[int, str] = {}
    for field, (_low, high) in STRING_LIMITS.items():
        if field == "event_id":
            continue
        fill = "cell_change"[:1] if field == "event_type" else "é"  # two UTF-8 bytes: limits are characters
        events.append(event(**{field: fill * high}))
        past[len(events)] = field
        events.append(event(**{field: fill * (high + 1)}))
    past[len(events)] = "user_name"
    events.append(event(user_name=""))
    events.append(event(timestamp="2000-01-01T00:00:00Z"))
    past[len(events)] = "timestamp"
    events.append(event(timestamp="1999-12-31T23:59:59.9999999Z"))
    events.append(event(timestamp=(NOW + (math.floor(23.5 * 60)) * _minute()).isoformat()))
    past[len(events)] = "timestamp"
    events.append(event(timestamp=(NOW + 25 * 60 * _minute()).isoformat()))
    overhead = len(json.dumps(event(Big="")).encode())
    events.append(event(Big="x" * (MAX_EVENT_BYTES - overhead - 64)))
    past[len(events)] = ""
    events.append(event(Big="x" * MAX_EVENT_BYTES))
    return events, past


def _minute() -> Any:
    import datetime as dt

    return dt.timedelta(minutes=1)


def test_every_field_at_and_past_its_limit(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    events, past = _limit_events()
    resp = judge.ingest("limits", events, (207,))
    if resp.status_code == 207:
        errors = {e["index"]: e["field"] for e in resp.json()["errors"]}
        if set(errors) != set(past):
            judge.problems.append(f"limits: rejected {sorted(errors)}, expected {sorted(past)}")
        wrong = {i: (errors[i], f) for i, f in past.items() if f and errors.get(i) not in (f, None)}
        if wrong:
            judge.problems.append(f"limits: wrong field named {wrong}")
    for index, ev in enumerate(events):
        if index in past:
            continue
        want = {k: v for k, v in ev.items() if k in STRING_LIMITS and k not in ("event_id", "event_type")}
        readback(judge, f"limit #{index}", ev["event_id"], **want)
    judge.verdict()


def _bomb(size: int, encoding: str, prefix: bytes = b"") -> bytes:
    if encoding == "zstd":
        cctx = zstandard.ZstdCompressor(level=3)
        return cctx.compress(prefix + b" " * size)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        gz.write(prefix)
        chunk = b" " * (1 << 20)
        for _ in range(size >> 20):
            gz.write(chunk)
    return out.getvalue()


def test_compression_bombs_and_bad_encodings(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    ev = event()
    doc = json.dumps({"events": [ev]}).encode()[:-1] + b', "pad": "'
    for encoding in ("gzip", "zstd"):
        bomb = _bomb(80 << 20, encoding, doc)  # valid JSON start, 80 MiB of padding: past 64 MiB
        judge.ingest(f"{encoding} bomb", [ev], (413,), content=bomb, headers={"Content-Encoding": encoding})
    small = json.dumps({"events": [event()]}).encode()
    gz = gzip.compress(small)
    judge.ingest(
        "gzip truncated", None, (400,), content=gz[: len(gz) // 2], headers={"Content-Encoding": "gzip"}
    )
    judge.ingest("gzip header, plain body", None, (400,), content=small, headers={"Content-Encoding": "gzip"})
    judge.ingest("zstd header, gzip body", None, (400,), content=gz, headers={"Content-Encoding": "zstd"})
    for encoding in ("br", "deflate, br", "compress", "gzip;q=1"):
        judge.ingest(
            f"encoding {encoding}", None, (400, 415), content=gz, headers={"Content-Encoding": encoding}
        )
    double = gzip.compress(gz)
    judge.ingest("gzip of gzip as gzip", None, BAD, content=double, headers={"Content-Encoding": "gzip"})
    judge.verdict()


def _arrow_bytes() -> bytes:
    sink = io.BytesIO()
    table = pa.table({"x": [1, 2]})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}


def _ipc(columns: dict[str, pa.Array], compression: str | None = "zstd") -> bytes:
    table = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as w:
        w.write_table(table)
    return sink.getvalue()


def _required(rows: int, name: str = "arrow") -> dict[str, pa.Array]:
    ts = NOW - dt.timedelta(hours=1)
    return {
        "timestamp": pa.array([ts] * rows, pa.timestamp("us", tz="UTC")),
        "event_type": pa.array(["cell_change"] * rows),
        "user_name": pa.array([f"{name}{i}" for i in range(rows)]),
    }


def _blobs(values: list[str]) -> pa.Array:
    offsets = pa.array(range(len(values) + 1), pa.int32())
    return pa.MapArray.from_arrays(offsets, pa.array(["blob"] * len(values)), pa.array(values))


def test_arrow_bombs_are_refused_and_store_nothing(client: TestClient, store: EventStore) -> None:
    """Bodies of a few KB that expand to hundreds of MB (issue 8): a 4xx before expanding, nothing stored."""
    judge = Judge(client, store)
    bombs = {
        "zstd: 200 events x 1 MiB attribute": (
            _ipc(_required(200) | {"attributes": _blobs(["a" * 2**20] * 200)}),
            413,
        ),
        "list<null> of 20M": (
            _ipc(
                _required(1)
                | {
                    "padding": pa.ListArray.from_arrays(
                        pa.array([0, 20_000_000], pa.int32()), pa.nulls(20_000_000)
                    )
                }
            ),
            400,
        ),
        "dictionary formula of 64 KiB x 10k": (
            _ipc(
                _required(10_000)
                | {
                    "formula": pa.DictionaryArray.from_arrays(
                        pa.array([0] * 10_000, pa.int8()), pa.array(["=" + "A" * 65_535])
                    )
                }
            ),
            400,
        ),
    }
    for name, (body, status) in bombs.items():
        assert len(body) < 64 * 1024, name
        judge.ingest(f"arrow bomb {name}", None, (status,), content=body, headers=ARROW)
    judge.verdict()


def test_every_event_is_size_checked_whatever_the_body_size(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    body = _ipc(_required(2, "sized") | {"attributes": _blobs(['"' + "a" * (200 * 1024) + '"', '"b"'])})
    assert len(body) < MAX_EVENT_BYTES
    resp = judge.ingest("small zstd body, one 200 KiB event", None, (207,), content=body, headers=ARROW)
    if resp.status_code == 207 and [(e["index"], e["field"]) for e in resp.json()["errors"]] != [
        (0, "event")
    ]:
        judge.problems.append(f"size check: errors {resp.json()['errors']}")
    found = client.get("/api/events", params={"user_name": ["sized0", "sized1"]}).json()["events"]
    if [e["user_name"] for e in found] != ["sized1"]:
        judge.problems.append(f"size check: stored {[e['user_name'] for e in found]}")
    judge.expected |= {e["event_id"] for e in found}
    judge.verdict()


def test_arrow_attribute_values_must_be_json_texts(client: TestClient, store: EventStore) -> None:
    """Attribute texts are embedded verbatim in read answers: one that is not JSON would break them."""
    judge = Judge(client, store)
    texts = ["not json", '"ok"', '1,"injected":2', "[1, 2]", '"\\ud800"', "NaN", "1e-400"]
    body = _ipc(_required(len(texts), "attr") | {"attributes": _blobs(texts)})
    resp = judge.ingest("attribute texts", None, (207,), content=body, headers=ARROW)
    if resp.status_code == 207:
        errors = [(e["index"], e["field"]) for e in resp.json()["errors"]]
        if errors != [(0, "attributes"), (2, "attributes"), (4, "attributes"), (5, "attributes")]:
            judge.problems.append(f"attribute texts: errors {errors}")
    found = client.get("/api/events", params={"user_name": [f"attr{i}" for i in range(len(texts))]})
    try:
        stored = {e["user_name"]: e for e in _strict_json(found.content)["events"]}
    except ValueError as exc:
        judge.problems.append(f"attribute texts: the read answer is not JSON: {exc}")
        stored = {}
    judge.expected |= {e["event_id"] for e in stored.values()}
    if sorted(stored) != ["attr1", "attr3", "attr6"]:
        judge.problems.append(f"attribute texts: stored {sorted(stored)}")
    if '"blob":1e-400' not in found.text:
        judge.problems.append("attribute texts: 1e-400 not read back as sent")
    judge.verdict()


def test_costly_shapes_are_refused_by_their_size(client: TestClient, store: EventStore) -> None:
    """A 30 KB upper-case event_type (once 34 s of regex) and 5,000 distinct keys in 1 MiB (once 6 GB)."""
    judge = Judge(client, store)
    ev = event(event_type="ABCD" * 7_500)
    resp = judge.ingest("event_type 30 KB", [ev], (422,))
    if resp.status_code == 422 and resp.json()["error"]["details"][0]["field"] != "event_type":
        judge.problems.append(f"event_type 30 KB: {resp.json()['error']['details']}")
    wide = [event(user_name="wide") | {f"k{i:04d}_{j}": "x" * 150 for j in range(5)} for i in range(1_000)]
    body = json.dumps({"events": wide}).encode()
    assert len(body) > 2**20
    resp = judge.ingest("5,000 distinct keys", wide, (413,), content=body)
    if resp.status_code == 413 and resp.json()["error"]["code"] != "too_many_attribute_keys":
        judge.problems.append(f"5,000 distinct keys: {resp.json()['error']}")
    judge.verdict()


def test_wrong_content_types(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    ev = event()
    body = json.dumps({"events": [ev]}).encode()
    for media in (
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "*/*",
        "json",
    ):
        judge.ingest(f"content-type {media}", [ev], (415,), content=body, headers={"Content-Type": media})
    judge.ingest(
        "arrow type, JSON body",
        [ev],
        (400,),
        content=body,
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    judge.ingest(
        "arrow type, foreign schema",
        None,
        BAD,
        content=_arrow_bytes(),
        headers={"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    judge.ingest("json type, arrow body", None, (400,), content=_arrow_bytes())
    judge.ingest("ndjson type, one JSON document", [ev], (422,), content=body, headers=NDJSON)
    utf16 = json.dumps({"events": [ev]}).encode("utf-16")
    judge.ingest(
        "utf-16 body",
        [ev],
        (400,),
        content=utf16,
        headers={"Content-Type": "application/json; charset=utf-16"},
    )
    for method in ("PUT", "DELETE", "PATCH"):
        judge.check(f"{method} /api/events", client.request(method, "/api/events", content=body), (405,))
    judge.ingest(
        "charset parameter",
        [ev],
        (200,),
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    judge.verdict()


def test_batch_of_10000_accepted_10001_refused(client: TestClient, store: EventStore) -> None:
    judge = Judge(client, store)
    full = [event(user_name=f"u{i % 7}") for i in range(10_000)]
    judge.ingest("10,000 events", full, (200,))
    over = [event() for _ in range(10_001)]
    judge.ingest("10,001 events", over, (413,))
    nd = b"\n".join(json.dumps(e).encode() for e in over)
    judge.ingest("10,001 ndjson lines", over, (413,), content=nd, headers=NDJSON)
    judge.verdict()

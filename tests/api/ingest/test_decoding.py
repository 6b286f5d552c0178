"""Decoder unit tests: fixtures, naming styles, timestamps, limits, ids, attributes, NDJSON, errors."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pytest

from api.errors import ApiError
from api.ingest.decoding import DecodedBatch, decode_batch
from api.ingest.normalize import derive_event_id, normalize_event_type
from storage.schema import EVENT_SCHEMA, STRING_LIMITS

FIXTURES = Path(__file__).parents[2] / "fixtures"
NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
ID = "876ea0a8-aa8d-4189-8500-fdeaaa1fd96a"


def decode(body: bytes | Any, kind: Literal["json", "ndjson", "arrow"] = "json", **kw: Any) -> DecodedBatch:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    options: dict[str, Any] = {"max_events": 10_000, "header_batch_id": None, "received_at": NOW, "now": NOW}
    options.update(kw)
    return decode_batch(data, kind, **options)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": ID,
        "timestamp": "2025-06-03T10:06:01.0975551+02:00",
        "event_type": "CellChange",
        "user_name": "CORP\\alice",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _ABSENT}


_ABSENT: Any = object()


def one(**fields: Any) -> DecodedBatch:
    return decode([event(**fields)])


def only_row(batch: DecodedBatch) -> dict[str, Any]:
    assert batch.errors == ()
    rows = batch.table.to_pylist()
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


def only_error(batch: DecodedBatch) -> tuple[str | None, str]:
    assert batch.table.num_rows == 0
    assert len(batch.errors) == 1
    return batch.errors[0].field, batch.errors[0].message


# --- fixtures -------------------------------------------------------------------------------------


def test_pascal_fixture_all_accepted() -> None:
    batch = decode((FIXTURES / "addin_batch_pascal.json").read_bytes())
    assert (batch.table.num_rows, batch.total, batch.errors) == (25, 25, ())
    assert batch.table.schema == EVENT_SCHEMA
    assert batch.batch_id == "38c874d2-e97a-4842-95a9-a023793d07a5"
    rows = batch.table.to_pylist()
    assert rows[0]["timestamp"] == dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=dt.UTC)
    assert rows[0]["event_type"] == "session_start"
    assert dict(rows[3]["attributes"])["IsReadOnly"] == "false"
    assert dict(rows[4]["attributes"])["Tags"] == '["q3","draft"]'
    assert rows[4]["new_value"] == "false"
    assert rows[2]["new_value"] == "0.25"
    derived = rows[6]["event_id"]
    assert len(derived) == 36
    assert derived[14] == "5"
    assert (
        decode((FIXTURES / "addin_batch_pascal.json").read_bytes()).table.column("event_id")[6].as_py()
        == derived
    )


def test_camel_ndjson_fixture_all_accepted() -> None:
    batch = decode((FIXTURES / "addin_batch_camel.ndjson").read_bytes(), "ndjson")
    assert (batch.table.num_rows, batch.total, batch.errors) == (25, 25, ())
    row = batch.table.to_pylist()[1]
    assert row["timestamp"] == dt.datetime(2025, 6, 12, 19, 13, 38, 604438, tzinfo=dt.UTC)
    assert row["event_type"] == "workbook_open"
    assert dict(row["attributes"]) == {"addinVersion": '"3.4.1.0"', "excelBuild": '"16.0.18025.20104"'}


def test_invalid_fixture_three_errors() -> None:
    batch = decode((FIXTURES / "addin_batch_invalid.json").read_bytes())
    assert (batch.table.num_rows, batch.total) == (7, 10)
    assert [(e.index, e.field) for e in batch.errors] == [
        (2, "timestamp"),
        (5, "timestamp"),
        (8, "user_name"),
    ]
    sent = json.loads((FIXTURES / "addin_batch_invalid.json").read_text())["events"]
    assert [e.event_id for e in batch.errors] == [sent[i]["EventId"] for i in (2, 5, 8)]
    assert all(e.message for e in batch.errors)
    stored = set(batch.table.column("event_id").to_pylist())
    assert stored == {sent[i]["EventId"] for i in range(10) if i not in (2, 5, 8)}


def test_escaped_and_unescaped_bodies_decode_identically() -> None:
    events = json.loads((FIXTURES / "addin_batch_pascal.json").read_text())["events"]
    plain = json.dumps(events, ensure_ascii=False).encode()
    escaped = json.dumps(events, ensure_ascii=True).replace("+", "\\u002B").replace("'", "\\u0027").encode()
    assert b"\\u002B02:00" in escaped
    assert decode(plain, header_batch_id="b").table.equals(decode(escaped, header_batch_id="b").table)


# --- field names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["snake", "camel", "pascal"])
def test_every_naming_style(style: str) -> None:
    def name(field: str) -> str:
        parts = field.split("_")
        if style == "snake":
            return field
        if style == "camel":
            return parts[0] + "".join(p.capitalize() for p in parts[1:])
        return "".join(p.capitalize() for p in parts)

    values = {
        "event_id": ID,
        "timestamp": "2025-06-03T08:06:01Z",
        "event_type": "cell_change",
        "user_name": "u",
        "machine_name": "m",
        "session_id": "s",
        "workbook_name": "w",
        "sheet_name": "sh",
        "cell_address": "A1",
        "old_value": "o",
        "new_value": "n",
        "formula": "=1",
        "correlation_id": "c",
    }
    row = only_row(decode([{name(k): v for k, v in values.items()} | {name("extra_key"): 1}]))
    for field, value in values.items():
        got = row[field]
        assert (got.isoformat() if field == "timestamp" else got) == (
            "2025-06-03T08:06:01+00:00" if field == "timestamp" else value
        )
    assert dict(row["attributes"]) == {name("extra_key"): "1"}


def test_mixed_spellings_in_one_event_last_wins() -> None:
    row = only_row(decode([event(user_name="first") | {"UserName": "second"}]))
    assert row["user_name"] == "second"


def test_duplicate_json_keys_last_wins() -> None:
    body = (
        b'[{"event_id":"' + ID.encode() + b'","timestamp":"2025-06-03T08:06:01Z",'
        b'"event_type":"x","user_name":"a","user_name":"b"}]'
    )
    assert only_row(decode(body))["user_name"] == "b"


# --- timestamps -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-03T10:06:01.0975551+02:00", dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=dt.UTC)),
        ("2025-06-03T08:06:01.0975559Z", dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=dt.UTC)),
        ("2025-06-03T08:06:01.0975551", dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=dt.UTC)),
        ("2025-06-03T08:06:01", dt.datetime(2025, 6, 3, 8, 6, 1, tzinfo=dt.UTC)),
        ("2025-06-03 08:06:01.5Z", dt.datetime(2025, 6, 3, 8, 6, 1, 500000, tzinfo=dt.UTC)),
        ("2025-06-03T03:06:01.123-05:00", dt.datetime(2025, 6, 3, 8, 6, 1, 123000, tzinfo=dt.UTC)),
        ("2025-06-03T13:36:01.000001+05:30", dt.datetime(2025, 6, 3, 8, 6, 1, 1, tzinfo=dt.UTC)),
        ("2000-01-01T00:00:00Z", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
        ("2000-01-01T01:00:00+01:00", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
        ("2025-07-02T12:00:00Z", NOW + dt.timedelta(hours=24)),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=dt.UTC)),
    ],
)
def test_timestamp_forms(text: str, expected: dt.datetime) -> None:
    assert only_row(one(timestamp=text))["timestamp"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31T23:59:59.9999999Z",
        "2000-01-01T00:59:59+01:00",
        "2025-07-02T12:00:00.000001Z",
        "2025-06-03",
        "2025-06-03T10:06",
        "2025-06-03T10:06:01.12345678Z",
        "2025-06-03T10:06:01.Z",
        "2025-06-03T10:06:01+0200",
        "2025-02-30T10:00:00Z",
        "2025-02-29T10:00:00Z",
        "2025-06-03T24:00:00Z",
        "2025-06-03T23:59:60Z",
        "3025-06-03T10:06:01Z",
        "9999-12-31T23:59:59Z",
        "",
        "yesterday",
        "2025-06-03T10:06:01+24:00",
    ],
)
def test_timestamp_rejected(text: str) -> None:
    assert only_error(one(timestamp=text))[0] == "timestamp"


@pytest.mark.parametrize("value", [123, 1.5, True, ["2025-06-03T10:06:01Z"], {"a": 1}])
def test_timestamp_wrong_type_is_event_error(value: Any) -> None:
    assert only_error(one(timestamp=value))[0] == "timestamp"


def test_bad_timestamp_among_good_ones_flags_only_that_event() -> None:
    events = [
        event(timestamp=t, event_id=None)
        for t in ["2025-06-03T10:06:01Z", "2025-02-30T10:00:00Z", "2025-06-04T10:06:01Z"]
    ]
    batch = decode(events)
    assert [(e.index, e.field) for e in batch.errors] == [(1, "timestamp")]
    assert batch.table.num_rows == 2


# --- required fields, types, limits ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["timestamp", "event_type", "user_name"])
@pytest.mark.parametrize("value", [_ABSENT, None])
def test_required_fields(field: str, value: Any) -> None:
    assert only_error(one(**{field: value}))[0] == field


@pytest.mark.parametrize("field", sorted(STRING_LIMITS))
def test_string_limits_boundary(field: str) -> None:
    low, high = STRING_LIMITS[field]
    assert only_row(one(**{field: "a" * high}))[field] == "a" * high
    assert only_error(one(**{field: "a" * (high + 1)}))[0] == field
    if low:
        assert only_error(one(**{field: ""}))[0] == field
    else:
        assert only_row(one(**{field: ""}))[field] == ""


def test_limits_count_characters_not_bytes() -> None:
    high = STRING_LIMITS["user_name"][1]
    assert only_row(one(user_name="ü" * high))["user_name"] == "ü" * high
    assert only_error(one(user_name="👍" * (high + 1)))[0] == "user_name"


@pytest.mark.parametrize(
    "field", ["user_name", "machine_name", "session_id", "sheet_name", "formula", "event_type"]
)
@pytest.mark.parametrize("value", [5, 1.5, False, [], {}])
def test_wrong_type_for_string_field(field: str, value: Any) -> None:
    field_name, message = only_error(one(**{field: value}))
    assert field_name == field
    assert "string" in message


def splice(document: Any, **literals: str) -> bytes:
    """`document` as JSON with each string `"@name@"` replaced by the raw JSON text `literals[name]`."""
    text = json.dumps(document)
    for name, literal in literals.items():
        assert f'"@{name}@"' in text
        text = text.replace(f'"@{name}@"', literal)
    return text.encode()


@pytest.mark.parametrize(
    ("value", "stored"),
    [("", ""), (None, None), ("text", "text"), ("0", "0"), ("-0", "-0"), ("1e-400", "1e-400")],
)
def test_cell_values_strings_and_null(value: Any, stored: str | None) -> None:
    row = only_row(one(old_value=value, new_value=value))
    assert (row["old_value"], row["new_value"]) == (stored, stored)


@pytest.mark.parametrize(
    "literal",
    [
        "-3.75",
        "24",
        "false",
        "true",
        "0",
        "-0",
        "-0.0",
        "0.0",
        "1e20",
        "1e+20",
        "1E+2",
        "1e-400",
        "-1e400",
        "0.1e1",
        "2.50",
        "3.14159265358979323846264338327950288",
        "123456789012345678901234567890",
        "-123456789012345678901234567890",
        "12345678901234567890123",
    ],
)
def test_cell_values_keep_their_json_text_as_sent(literal: str) -> None:
    row = only_row(decode(splice([event(old_value="@v@", new_value="@v@")], v=literal)))
    assert (row["old_value"], row["new_value"]) == (literal, literal)


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_cell_value_wrong_type(value: Any) -> None:
    assert only_error(one(new_value=value))[0] == "new_value"


def test_nul_characters_are_kept() -> None:
    assert only_row(one(new_value="a\x00b"))["new_value"] == "a\x00b"


def test_event_too_large() -> None:
    big = {"Blob": "x" * (130 * 1024)}
    batch = decode([event() | big, event(event_id=None)])
    assert [(e.index, e.field) for e in batch.errors] == [(0, "event")]
    assert batch.table.num_rows == 1
    fits = {"Blob": "x" * (100 * 1024)}
    assert only_row(decode([event() | fits]))["attributes"][0][0] == "Blob"


# --- event_type, ids, attributes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("CellChange", "cell_change"),
        ("cell-change", "cell_change"),
        ("CELL_CHANGE", "cell_change"),
        ("cell change", "cell_change"),
        ("cellChange", "cell_change"),
        ("cell_change", "cell_change"),
        ("PowerQueryRefresh", "power_query_refresh"),
        ("XMLImport", "xml_import"),
        ("  Error ", "error"),
        ("ChartUpdate", "chart_update"),
    ],
)
def test_event_type_normalised(sent: str, stored: str) -> None:
    assert normalize_event_type(sent) == stored
    assert only_row(one(event_type=sent))["event_type"] == stored


def test_event_type_without_letters_rejected() -> None:
    assert only_error(one(event_type="--"))[0] == "event_type"


@pytest.mark.parametrize(
    "sent",
    [ID.upper(), "{" + ID + "}", ID.replace("-", ""), "urn:uuid:" + ID],
)
def test_event_id_spellings_canonicalised(sent: str) -> None:
    assert only_row(one(event_id=sent))["event_id"] == ID


@pytest.mark.parametrize("sent", ["not-a-uuid", "", ID[:-1], ID + "0", 42])
def test_event_id_invalid(sent: Any) -> None:
    assert only_error(one(event_id=sent))[0] == "event_id"


def test_derived_ids_are_deterministic_and_content_sensitive() -> None:
    base = event(event_id=None, new_value=1, Extra="x")
    first = only_row(decode([base]))["event_id"]
    assert only_row(decode([base]))["event_id"] == first
    same_instant = base | {"timestamp": "2025-06-03T08:06:01.0975551Z"}
    assert only_row(decode([same_instant]))["event_id"] == first
    assert only_row(decode([dict(base, event_type="cell_change")]))["event_id"] == first
    changes: list[dict[str, Any]] = [
        {"new_value": 2},
        {"user_name": "bob"},
        {"Extra": "y"},
        {"timestamp": "2025-06-03T08:06:02Z"},
    ]
    for change in changes:
        assert only_row(decode([base | change]))["event_id"] != first
    absent = {k: v for k, v in base.items() if k != "event_id"}
    assert only_row(decode([absent]))["event_id"] == first


#: Derived ids pinned as literals, computed once outside the decoder (by `_reference_id` below, the
#: documented definition in a few lines of stdlib): a change of the derivation must fail here.
PINNED_IDS = {
    "fixture index 6": "e09e5343-60a3-5767-9475-57163842ef45",
    "minimal": "8a628642-96db-576a-80c9-e362c6a2b6c1",
    "numbers as sent": "0fa1c9c1-a2e7-5a4d-851f-30a679ed9486",
}
_MINIMAL_MICROS = 1748937961097555  # 2025-06-03T08:06:01.097555Z


def _reference_id(content: dict[str, Any]) -> str:
    """uuid5(namespace, compact JSON of the stored content: keys sorted, nulls left out, µs timestamp)."""
    namespace = uuid.UUID("6f1d3c0e-8b9a-5c41-9a3e-2f7b0d6c4e15")
    present = {k: v for k, v in content.items() if v is not None}
    text = json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(namespace, text))


def test_pinned_ids_follow_the_documented_derivation() -> None:
    minimal = {"timestamp": _MINIMAL_MICROS, "event_type": "cell_change", "user_name": "CORP\\alice"}
    assert _reference_id(minimal | {"attributes": {}}) == PINNED_IDS["minimal"]
    numbers = {"new_value": "1E+2", "old_value": "-0", "attributes": {"Extra": "[1e-400,-0]"}}
    assert _reference_id(minimal | numbers) == PINNED_IDS["numbers as sent"]
    fixture_event = {
        "timestamp": 1748938040447847,  # 2025-06-03T10:07:20.4478474+02:00
        "event_type": "cell_change",
        "user_name": "CORP\\zoë.k",
        "machine_name": "LAPTOP-7H2K9Q",
        "session_id": "daab27a6-91ed-4c17-8b56-24dcd0a5260d",
        "workbook_name": "\\\\fs01\\finance\\Budget 2025\\Headcount (draft) v2.xlsm",
        "sheet_name": "Données 2025",
        "cell_address": "B3",
        "new_value": "👍🏽 ok",
        "attributes": {"AddinVersion": '"3.4.1.0"', "ExcelBuild": '"16.0.18025.20104"'},
    }
    assert _reference_id(fixture_event) == PINNED_IDS["fixture index 6"]


def test_derived_ids_are_the_pinned_literals() -> None:
    fixture = decode((FIXTURES / "addin_batch_pascal.json").read_bytes())
    assert fixture.table.column("event_id")[6].as_py() == PINNED_IDS["fixture index 6"]
    assert only_row(one(event_id=None))["event_id"] == PINNED_IDS["minimal"]
    body = splice(
        [event(event_id=None, new_value="@n@", old_value="@o@", Extra="@x@")],
        n="1E+2",
        o="-0",
        x="[1e-400, -0]",
    )
    assert only_row(decode(body))["event_id"] == PINNED_IDS["numbers as sent"]


def test_in_batch_duplicates_keep_first() -> None:
    batch = decode([event(user_name="a"), event(user_name="b"), event(event_id=None), event(event_id=None)])
    assert batch.total == 4
    assert batch.errors == ()
    assert batch.table.column("user_name").to_pylist() == ["a", "CORP\\alice"]


def test_invalid_event_does_not_block_later_duplicate() -> None:
    batch = decode([event(user_name=""), event(user_name="ok")])
    assert [e.index for e in batch.errors] == [0]
    assert batch.table.column("user_name").to_pylist() == ["ok"]


def test_attributes_keep_original_keys_and_json_text() -> None:
    extras = {
        "AddinVersion": "3.4.1.0",
        "Tags": ["q3", "draft"],
        "IsReadOnly": False,
        "N": None,
        "Nested": {"ü": 1.5},
    }
    row = only_row(decode([event() | extras]))
    assert dict(row["attributes"]) == {
        "AddinVersion": '"3.4.1.0"',
        "Tags": '["q3","draft"]',
        "IsReadOnly": "false",
        "N": "null",
        "Nested": '{"ü":1.5}',
    }
    assert {k: json.loads(v) for k, v in row["attributes"]} == extras


def test_attribute_types_are_not_confused() -> None:
    batch = decode([event(event_id=None, X=1, n=i) for i in range(2)] + [event(event_id=None, X=True, n=2)])
    assert [dict(a)["X"] for a in batch.table.column("attributes").to_pylist()] == ["1", "1", "true"]


# --- body shapes and batch ids --------------------------------------------------------------------


def test_bare_array_and_object_forms_are_equal() -> None:
    a = decode([event()])
    b = decode({"events": [event()]})
    assert a.table.drop_columns(["batch_id"]).equals(b.table.drop_columns(["batch_id"]))


@pytest.mark.parametrize("key", ["batch_id", "batchId", "BatchId"])
def test_batch_id_from_body(key: str) -> None:
    assert decode({"events": [event()], key: "b-1"}, header_batch_id="hdr").batch_id == "b-1"


def test_batch_id_from_header_then_generated() -> None:
    assert decode([event()], header_batch_id="hdr").batch_id == "hdr"
    generated = decode([event()]).batch_id
    assert len(generated) == 36


@pytest.mark.parametrize("value", ["x" * 129, "", 5])
def test_batch_id_invalid(value: Any) -> None:
    with pytest.raises(ApiError) as info:
        decode({"events": [event()], "batch_id": value})
    assert (info.value.status, info.value.code) == (400, "invalid_body")


def test_batch_id_at_limit_and_stored() -> None:
    batch = decode({"events": [event()], "batch_id": "x" * 128})
    assert batch.table.column("batch_id").to_pylist() == ["x" * 128]
    assert batch.table.column("received_at").to_pylist() == [NOW]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[1,]",
        b'{"a": 1}',
        b"5",
        b'"x"',
        b"[NaN]",
        b'[{"a": Infinity}]',
        b'[{"a": "\xff"}]',
        b'[{"a": "\\ud800"}]',
        b'{"events": 5}',
        b"[] []",
        b"1e400",
    ],
)
def test_invalid_json_bodies(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        decode(body)
    assert (info.value.status, info.value.code) == (400, "invalid_body")


@pytest.mark.parametrize("wrapped", [False, True])
def test_non_object_events_are_per_index_errors(wrapped: bool) -> None:
    events: list[Any] = [
        event(),
        "x",
        5,
        None,
        [event()],
        True,
        {"nested": [1]},
        event(event_id=None, user_name="b"),
        1.5,
    ]
    batch = decode({"events": events} if wrapped else events)
    not_object = (None, None, "event must be a JSON object")
    assert [(e.index, e.event_id, e.field, e.message) for e in batch.errors] == [
        (1, *not_object),
        (2, *not_object),
        (3, *not_object),
        (4, *not_object),
        (5, *not_object),
        (6, None, "timestamp", "is required"),
        (8, *not_object),
    ]
    assert batch.total == 9
    assert batch.table.column("user_name").to_pylist() == ["CORP\\alice", "b"]


@pytest.mark.parametrize("body", [b"[1]", b'[null, "x", [], 2.5, false]', b'{"events": [1e-400]}'])
def test_only_non_object_events_is_a_batch_of_errors(body: bytes) -> None:
    batch = decode(body)
    assert batch.table.num_rows == 0
    assert batch.total == len(batch.errors) >= 1
    assert {(e.field, e.message) for e in batch.errors} == {(None, "event must be a JSON object")}


def test_too_many_events() -> None:
    assert decode([event()] * 3, max_events=3).total == 3
    with pytest.raises(ApiError) as info:
        decode([event()] * 4, max_events=3)
    assert (info.value.status, info.value.code) == (413, "too_many_events")


def test_empty_batch() -> None:
    batch = decode([])
    assert (batch.total, batch.table.num_rows, batch.errors) == (0, 0, ())
    assert batch.table.schema == EVENT_SCHEMA


# --- NDJSON ---------------------------------------------------------------------------------------


def ndjson(*lines: str) -> bytes:
    return "\n".join(lines).encode()


def test_ndjson_blank_lines_crlf_and_trailing_newline() -> None:
    line = json.dumps(event())
    batch = decode(ndjson("", line + "\r", "   ", json.dumps(event(event_id=None)), ""), "ndjson")
    assert (batch.total, batch.table.num_rows) == (2, 2)


@pytest.mark.parametrize(
    ("lines", "bad_line"),
    [
        (["{}", "{"], 2),
        (['{"a": [1', "2]}"], 1),
        (["{}", "{},{}"], 2),
        (["{} {}"], 1),
        (["", "", "nope"], 3),
    ],
)
def test_ndjson_bad_line_reports_number(lines: list[str], bad_line: int) -> None:
    with pytest.raises(ApiError) as info:
        decode(ndjson(*lines), "ndjson")
    assert (info.value.status, info.value.code) == (400, "invalid_body")
    assert info.value.details[0]["line"] == bad_line


def test_ndjson_non_object_lines_are_per_index_errors() -> None:
    lines = [
        json.dumps(event()),
        "[1, 2]",
        "",
        '"x"',
        "5",
        "null",
        "true",
        json.dumps(event(event_id=None, user_name="b")),
    ]
    batch = decode(ndjson(*lines), "ndjson")
    assert [(e.index, e.event_id, e.field, e.message) for e in batch.errors] == [
        (i, None, None, "event must be a JSON object") for i in (1, 2, 3, 4, 5)
    ]
    assert (batch.total, batch.table.column("user_name").to_pylist()) == (7, ["CORP\\alice", "b"])


def test_ndjson_empty_body_is_empty_batch() -> None:
    assert decode(b"\n\n", "ndjson").total == 0


def test_ndjson_too_many_events() -> None:
    with pytest.raises(ApiError) as info:
        decode(ndjson(*[json.dumps(event())] * 3), "ndjson", max_events=2)
    assert info.value.status == 413


def test_table_is_in_input_order() -> None:
    events = [event(event_id=None, user_name=f"u{i}") for i in range(50)]
    events[10]["timestamp"] = "bad"
    batch = decode(events)
    assert batch.table.column("user_name").to_pylist() == [f"u{i}" for i in range(50) if i != 10]
    assert pa.types.is_timestamp(batch.table.schema.field("timestamp").type)


def test_bulk_derived_ids_match_the_reference_definition() -> None:
    events = [
        event(event_id=None, new_value=1e20, old_value=True, formula="", K={"b": [1, None], "a": "\x01"}),
        event(user_name='q"uote\\back\nline\x00', sheet_name="Übersicht 数据 👍🏽", Z=-0.0, A=None),
        event(event_id=None, session_id="s", workbook_name="\\\\fs01\\x.xlsm", cell_address="A1:C9"),
        event(event_id=None, timestamp="2000-01-01T00:00:00Z"),
    ]
    rows = decode(events).table.to_pylist()
    for row, sent in zip(rows, events, strict=True):
        if sent.get("event_id") is not None:
            continue
        content = {k: v for k, v in row.items() if k not in ("event_id", "received_at", "batch_id")}
        content["timestamp"] = (row["timestamp"] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
            microseconds=1
        )
        content["attributes"] = dict(row["attributes"])
        assert row["event_id"] == derive_event_id(content)


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_nesting_beyond_the_recursion_limit_is_400(kind: Literal["json", "ndjson"]) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    body = json.dumps(event(Extra=0)).replace('"Extra": 0', f'"Extra": {deep}')
    if kind == "json":
        body = f"[{body}]"
    with pytest.raises(ApiError) as info:
        decode(body.encode(), kind)
    assert (info.value.status, info.value.code) == (400, "invalid_body")
    assert "nested too deeply" in info.value.message


def test_attribute_nested_100_deep_is_kept() -> None:
    nested: Any = 1
    for _ in range(100):
        nested = [nested]
    row = only_row(decode([event(Extra=nested)]))
    assert json.loads(dict(row["attributes"])["Extra"]) == nested

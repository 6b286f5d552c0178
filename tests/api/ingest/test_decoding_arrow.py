"""Arrow IPC input, and hypothesis round-trips: any accepted event decodes to its normalised values."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.errors import ApiError
from api.ingest.decoding import DecodedBatch, decode_batch
from storage.schema import EVENT_SCHEMA, STRING_LIMITS

NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
ID = "876ea0a8-aa8d-4189-8500-fdeaaa1fd96a"


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode(body: bytes, kind: Any = "arrow") -> DecodedBatch:
    return decode_batch(body, kind, max_events=100, header_batch_id="b", received_at=NOW, now=NOW)


def base_table(**columns: pa.Array) -> pa.Table:
    data: dict[str, pa.Array] = {
        "event_id": pa.array([ID, None]),
        "timestamp": pa.array(["2025-06-03T10:06:01.0975551+02:00", "2025-06-03T08:06:01Z"]),
        "event_type": pa.array(["CellChange", "cell_change"]),
        "user_name": pa.array(["a", "b"]),
    }
    data.update(columns)
    return pa.table(data)


def test_arrow_minimal_columns() -> None:
    batch = decode(ipc(base_table()))
    assert batch.errors == ()
    assert batch.table.schema == EVENT_SCHEMA
    rows = batch.table.to_pylist()
    assert rows[0]["timestamp"] == dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=dt.UTC)
    assert [r["event_type"] for r in rows] == ["cell_change", "cell_change"]
    assert rows[1]["event_id"] != ID


def test_arrow_matches_json_including_derived_ids() -> None:
    events = [
        {
            "event_id": ID,
            "timestamp": "2025-06-03T10:06:01.0975551+02:00",
            "event_type": "CellChange",
            "user_name": "a",
        },
        {"timestamp": "2025-06-03T08:06:01Z", "event_type": "cell_change", "user_name": "b"},
    ]
    from_json = decode_batch(
        json.dumps(events).encode(), "json", max_events=100, header_batch_id="b", received_at=NOW, now=NOW
    )
    assert decode(ipc(base_table())).table.equals(from_json.table)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_arrow_timestamp_types(unit: str, tz: str | None) -> None:
    moment = dt.datetime(2025, 6, 3, 8, 6, 1, tzinfo=dt.UTC)
    column = pa.array([moment, moment], pa.timestamp(unit, tz="UTC")).cast(pa.timestamp(unit, tz=tz))
    batch = decode(ipc(base_table(timestamp=column)))
    assert batch.table.column("timestamp").to_pylist() == [moment, moment]


def test_arrow_per_row_errors_match_json_rules() -> None:
    table = base_table(
        timestamp=pa.array(["1999-12-31T23:59:59Z", "2025-06-03T08:06:01Z"]),
        user_name=pa.array(["a", ""]),
        sheet_name=pa.array(["s" * 255, "s" * 256]),
    )
    batch = decode(ipc(table))
    assert [(e.index, e.field) for e in batch.errors] == [(0, "timestamp"), (1, "user_name")]


def test_arrow_values_extras_and_attributes() -> None:
    attributes = pa.array([[("AddinVersion", '"3.4"')], None], pa.map_(pa.string(), pa.string()))
    table = base_table(
        new_value=pa.array(["1e-400", None]),
        old_value=pa.array(["true", "-0"]),
        attributes=attributes,
        Culture=pa.array(["de-DE", None]),
        Row=pa.array([-12, 123456789012345678], pa.int64()),
        Flag=pa.array([None, False]),
        received_at=pa.array([1, 2]),
    )
    rows = decode(ipc(table)).table.to_pylist()
    assert [(r["old_value"], r["new_value"]) for r in rows] == [("true", "1e-400"), ("-0", None)]
    assert dict(rows[0]["attributes"]) == {"AddinVersion": '"3.4"', "Culture": '"de-DE"', "Row": "-12"}
    assert dict(rows[1]["attributes"]) == {"Row": "123456789012345678", "Flag": "false"}
    assert rows[0]["received_at"] == NOW


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("new_value", pa.array([1.5, None], pa.float64())),
        ("new_value", pa.array([1e5, 1e20], pa.float32())),
        ("old_value", pa.array([1, 2], pa.int64())),
        ("old_value", pa.array([True, False])),
        ("new_value", pa.array([1, 2], pa.decimal128(5, 2))),
        ("Score", pa.array([0.5, 1e20], pa.float64())),
        ("Score", pa.array([1, 2], pa.decimal128(5, 2))),
        ("Blob", pa.array([b"x", b"y"], pa.binary())),
    ],
)
def test_arrow_columns_without_a_text_as_sent_are_refused(name: str, column: pa.Array) -> None:
    """A float column has no text "as sent" (1e5 and 100000.0 are one double): 400 naming the column."""
    with pytest.raises(ApiError) as info:
        decode(ipc(base_table(**{name: column})))
    assert (info.value.status, info.value.code) == (400, "invalid_body")
    assert repr(name) in info.value.message


def test_arrow_attribute_values_must_be_json_texts() -> None:
    """Stored attribute texts are embedded verbatim in read answers: each must be one JSON text."""
    texts = ['"ok"', "not json", '1,"injected":2', "NaN", '"\\ud800"', "1e-400", "[1, {}]", None]
    attributes = pa.MapArray.from_arrays(
        pa.array(range(len(texts) + 1), pa.int32()),
        pa.array(["k"] * len(texts)),
        pa.array(texts, pa.string()),
    )
    table = pa.table(
        {
            "timestamp": pa.array(["2025-06-03T08:06:01Z"] * len(texts)),
            "event_type": pa.array(["x"] * len(texts)),
            "user_name": pa.array([f"u{i}" for i in range(len(texts))]),
            "attributes": attributes,
        }
    )
    batch = decode(ipc(table))
    assert [(e.index, e.field, e.message) for e in batch.errors] == [
        (i, "attributes", "value of 'k' is not a JSON text") for i in (1, 2, 3, 4)
    ]
    assert [dict(a)["k"] for a in batch.table.column("attributes").to_pylist()] == [
        '"ok"',
        "1e-400",
        "[1, {}]",
        None,
    ]


def test_arrow_large_string_columns() -> None:
    table = base_table(
        event_type=pa.array(["CellChange", "CellChange"], pa.large_string()),
        user_name=pa.array(["a", "b"], pa.large_string()),
    )
    batch = decode(ipc(table))
    assert batch.table.column("user_name").to_pylist() == ["a", "b"]
    assert batch.table.column("event_type").to_pylist() == ["cell_change", "cell_change"]


def test_arrow_dictionary_columns_are_refused() -> None:
    """A dictionary expands beyond its bytes on the wire (tests/api/ingest/test_decoding_limits.py)."""
    with pytest.raises(ApiError) as info:
        decode(ipc(base_table(event_type=pa.array(["CellChange", "CellChange"]).dictionary_encode())))
    assert (info.value.status, "'event_type'" in info.value.message) == (400, True)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not arrow",
        ipc(pa.table({"timestamp": pa.array(["2025-06-03T08:06:01Z"]), "user_name": pa.array(["a"])})),
        ipc(base_table(user_name=pa.array([1, 2]))),
    ],
)
def test_arrow_invalid_bodies(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        decode(body)
    assert (info.value.status, info.value.code) == (400, "invalid_body")


def test_arrow_too_many_rows() -> None:
    table = pa.concat_tables([base_table()] * 51)
    with pytest.raises(ApiError) as info:
        decode(ipc(table))
    assert (info.value.status, info.value.code) == (413, "too_many_events")


# --- property tests -------------------------------------------------------------------------------

_CHARS = st.characters(exclude_categories=["Cs"])
_text = st.text(_CHARS, max_size=40)
_name = st.text(_CHARS, min_size=1, max_size=40)
_moment = st.datetimes(
    min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2025, 6, 30), timezones=st.just(dt.UTC)
)
_offset = st.integers(min_value=-14 * 60, max_value=14 * 60)
_value = st.one_of(
    st.none(),
    _text,
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
)
_attribute = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), _text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=5,
)
#: Event types as sent -> as stored (literal expectations, not the normaliser under test).
_NORMALISED = {
    "CellChange": "cell_change",
    "cell-change": "cell_change",
    "WORKBOOK_OPEN": "workbook_open",
    "macro run": "macro_run",
    "ChartUpdate": "chart_update",
    "XMLImport": "xml_import",
    "  Power Query--Refresh ": "power_query_refresh",
}
_OPTIONAL = [f for f in STRING_LIMITS if f not in ("event_type", "user_name", "old_value", "new_value")]


def _spell(field: str, style: str) -> str:
    parts = field.split("_")
    if style == "snake":
        return field
    if style == "camel":
        return parts[0] + "".join(p.capitalize() for p in parts[1:])
    return "".join(p.capitalize() for p in parts)


def _timestamp_text(moment: dt.datetime, offset_minutes: int, ticks: int, zone: str) -> str:
    local = moment + dt.timedelta(minutes=offset_minutes if zone == "offset" else 0)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + str(ticks)
    if zone == "Z":
        return text + "Z"
    if zone == "offset":
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"
    return text


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event as sent in a random naming style, the expected stored values)."""
    style = draw(st.sampled_from(["snake", "camel", "pascal"]))
    moment = draw(_moment)
    zone = draw(st.sampled_from(["Z", "offset", "none"]))
    timestamp = _timestamp_text(moment, draw(_offset), draw(st.integers(0, 9)), zone)
    event_type = draw(st.sampled_from(sorted(_NORMALISED)))
    sent: dict[str, Any] = {
        "timestamp": timestamp,
        "event_type": event_type,
        "user_name": draw(_name),
        "old_value": draw(_value),
        "new_value": draw(_value),
    }
    for field in draw(st.lists(st.sampled_from(_OPTIONAL), unique=True)):
        sent[field] = draw(_text)
    if draw(st.booleans()):
        sent["event_id"] = str(draw(st.uuids()))
    expected = dict(sent)
    expected["timestamp"] = moment
    expected["event_type"] = _NORMALISED[event_type]
    for field in ("old_value", "new_value"):
        value = sent[field]
        expected[field] = value if value is None or isinstance(value, str) else json.dumps(value)
    event = {_spell(k, style): v for k, v in sent.items()}
    extras = draw(
        st.dictionaries(st.sampled_from(["AddinVersion", "Tags", "IsReadOnly", "x-extra"]), _attribute)
    )
    event.update(extras)
    expected["attributes"] = extras
    return event, expected


def _body(events: list[dict[str, Any]], form: str) -> tuple[bytes, Literal["json", "ndjson"]]:
    if form == "ndjson":
        return "\n".join(json.dumps(e, ensure_ascii=False) for e in events).encode(), "ndjson"
    return json.dumps({"events": events}, ensure_ascii=form == "escaped").encode(), "json"


def _decode_rows(events: list[dict[str, Any]], form: str) -> list[dict[str, Any]]:
    body, kind = _body(events, form)
    batch = decode_batch(body, kind, max_events=100, header_batch_id="b", received_at=NOW, now=NOW)
    assert batch.errors == ()
    assert batch.total == len(events)
    rows: list[dict[str, Any]] = batch.table.to_pylist()
    return rows


def _assert_stored(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for field, value in expected.items():
        if field == "attributes":
            assert {k: json.loads(v) for k, v in row["attributes"]} == value
        else:
            assert row[field] == value, field


#: Bounded so the property costs a few seconds, also on a loaded 2-core CI machine.
_PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@_PROPERTY
@given(st.lists(valid_events(), min_size=1, max_size=5), st.sampled_from(["json", "ndjson", "escaped"]))
def test_accepted_events_round_trip(cases: list[tuple[dict[str, Any], dict[str, Any]]], form: str) -> None:
    """Each event alone stores its normalised values; the batch stores the first event of each id.

    Identical events without an id derive one id, and hypothesis may draw one explicit id twice: the
    batch then keeps only the first of them (in-batch duplicates), so rows are matched per event, not
    by position.
    """
    alone = []
    for event, expected in cases:
        (row,) = _decode_rows([event], form)
        _assert_stored(row, expected)
        if "event_id" not in expected:
            assert row["event_id"][14] == "5"
        alone.append(row)
    first: dict[str, dict[str, Any]] = {}
    for row in alone:
        first.setdefault(row["event_id"], row)
    assert _decode_rows([event for event, _ in cases], form) == list(first.values())

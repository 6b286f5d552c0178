"""Unit tests of the read-filter parser and the cursor codec (no store, no app)."""

from __future__ import annotations

import datetime as dt

import pytest

from api.cursor import cursor_key, decode_event_cursor, encode_event_cursor, fingerprint, process_key
from api.errors import ApiError
from api.filters import parse_event_query, parse_timestamp, raw_from_body, raw_from_query
from api.settings import Settings
from storage.base import Cursor, EventFilter

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-03T10:06:01.0975551+02:00", dt.datetime(2025, 6, 3, 8, 6, 1, 97555, tzinfo=UTC)),
        ("2025-06-03T10:06:01Z", dt.datetime(2025, 6, 3, 10, 6, 1, tzinfo=UTC)),
        ("2025-06-03T10:06:01.5", dt.datetime(2025, 6, 3, 10, 6, 1, 500000, tzinfo=UTC)),
        ("2025-06-03", dt.datetime(2025, 6, 3, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", dt.datetime(1970, 1, 1, tzinfo=UTC)),  # clamped, same rows
    ],
)
def test_timestamps(text: str, expected: dt.datetime) -> None:
    assert parse_timestamp(text, "from") == expected


def test_query_string_lists_and_names() -> None:
    raw = raw_from_query(
        [
            ("event_type", "a"),
            ("eventType", "b"),
            ("workbook_name", "x,y.xlsx"),
            ("user_name", ""),
            ("limit", "7"),
        ]
    )
    q = parse_event_query(raw)
    assert q.flt.event_types == ("a", "b")
    assert q.flt.workbook_names == ("x,y.xlsx",)  # never split on commas
    assert q.flt.user_names == ()
    assert (q.limit, q.order, q.cursor) == (7, "desc", None)


def test_body_single_or_list_and_camel_case() -> None:
    q = parse_event_query(
        raw_from_body({"UserName": "CORP\\a", "sheetName": ["S1", "S2"], "order": "asc", "to": None})
    )
    assert q.flt == EventFilter(user_names=("CORP\\a",), sheet_names=("S1", "S2"))
    assert q.order == "asc"


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ApiError) as caught:
        parse_event_query(raw_from_query([("limit", "0"), ("order", "up"), ("from", "x")]))
    assert caught.value.status == 400
    assert {d["field"] for d in caught.value.details} == {"limit", "order", "from"}


def test_streamed_formats_allow_a_million() -> None:
    assert parse_event_query({"limit": ["1000000"]}, max_limit=1_000_000).limit == 1_000_000
    with pytest.raises(ApiError):
        parse_event_query({"limit": ["1000000"]})


def test_cursor_round_trip_and_binding() -> None:
    flt, key = EventFilter(user_names=("a",)), process_key()
    token = encode_event_cursor(Cursor(1_700_000_000_000_001, "id-1"), "desc", flt, key)
    assert decode_event_cursor(token, "desc", flt, key) == Cursor(1_700_000_000_000_001, "id-1")
    for order, other in (("asc", flt), ("desc", EventFilter())):
        with pytest.raises(ApiError) as caught:
            decode_event_cursor(token, order, other, key)  # type: ignore[arg-type]
        assert caught.value.code == "invalid_cursor"
    with pytest.raises(ApiError):
        decode_event_cursor(token, "desc", flt, key=b"another secret")
    assert fingerprint(flt) != fingerprint(EventFilter(user_names=("b",)))


def _keyed(secret: str | None) -> Settings:
    return Settings(cursor_secret=secret)


def test_cursor_key_is_the_configured_secret_else_random_per_process() -> None:
    """Replicas sharing GOVTRACK_CURSOR_SECRET accept each other's cursors; no public default key."""
    shared = cursor_key(_keyed("shared value"))
    assert shared == cursor_key(_keyed("shared value")) != cursor_key(_keyed("another value"))
    assert cursor_key(_keyed(None)) == process_key() != shared
    assert len(process_key()) == 32
    flt = EventFilter()
    token = encode_event_cursor(Cursor(1, "id"), "desc", flt, shared)
    assert decode_event_cursor(token, "desc", flt, cursor_key(_keyed("shared value"))).event_id == "id"
    with pytest.raises(ApiError):
        decode_event_cursor(token, "desc", flt, process_key())

"""session_seq at the decoder (issue 11): an optional integer >= 0, by every spelling and input format.

The log's own columns (leaf_index, leaf_hash) are never input: the decoder leaves them null and a
producer's field of that name is an attribute like any unknown key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest

from api.errors import ApiError
from api.ingest.decoding import DecodedBatch, decode_batch
from storage.schema import EVENT_SCHEMA

NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
MESSAGE = "must be an integer from 0 to 9223372036854775807"


def _event(**fields: Any) -> dict[str, Any]:
    return {"timestamp": "2025-06-03T08:06:01Z", "event_type": "cell_change", "user_name": "u"} | fields


def _decode(body: bytes, kind: Any = "json") -> DecodedBatch:
    return decode_batch(body, kind, max_events=100, header_batch_id="b", received_at=NOW, now=NOW)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_every_spelling_of_session_seq_is_stored(kind: Any) -> None:
    events = [
        _event(session_seq=0),
        _event(sessionSeq=5, user_name="v"),
        _event(SessionSeq=2**63 - 1, user_name="w"),
    ]
    body = json.dumps(events) if kind == "json" else "\n".join(json.dumps(e) for e in events)
    batch = _decode(body.encode(), kind)
    assert batch.errors == ()
    assert batch.table.schema == EVENT_SCHEMA
    assert batch.table.column("session_seq").to_pylist() == [0, 5, 2**63 - 1]
    assert batch.table.column("leaf_index").null_count == 3
    assert batch.table.column("leaf_hash").null_count == 3


@pytest.mark.parametrize(
    "value", [-1, "3", 2.5, 3.0, 1e3, True, False, 2**63, 2**70, [1], {"a": 1}], ids=repr
)
def test_anything_but_an_integer_from_0_is_that_events_error(value: Any) -> None:
    body = json.dumps([_event(session_seq=value), _event(session_seq=1, user_name="ok")]).encode()
    batch = _decode(body)
    assert [(e.index, e.field, e.message) for e in batch.errors] == [(0, "session_seq", MESSAGE)]
    assert batch.table.column("session_seq").to_pylist() == [1]


def test_the_exact_number_path_keeps_session_seq() -> None:
    # a -0 token elsewhere sends the body through the exact path, where every number is raw text
    body = json.dumps([_event(session_seq=7, new_value="x", Z=0)]).replace('"Z": 0', '"Z": -0').encode()
    batch = _decode(body)
    assert batch.errors == ()
    assert batch.table.column("session_seq").to_pylist() == [7]


def test_null_or_absent_session_seq_is_null() -> None:
    batch = _decode(json.dumps([_event(session_seq=None), _event(user_name="x")]).encode())
    assert batch.errors == ()
    assert batch.table.column("session_seq").to_pylist() == [None, None]


def test_a_read_sent_back_as_arrow_has_its_leaf_columns_ignored() -> None:
    """Like received_at and batch_id, the log's columns of a read's Arrow output are server-set."""
    table = pa.table(
        {
            "timestamp": pa.array(["2025-06-03T08:06:01Z"]),
            "event_type": pa.array(["cell_change"]),
            "user_name": pa.array(["u"]),
            "leaf_index": pa.array([4], pa.int64()),
            "leaf_hash": pa.array([b"\x07" * 32], pa.binary(32)),
        }
    )
    batch = _decode(_ipc(table), "arrow")
    assert batch.errors == ()
    assert batch.table.column("leaf_index").to_pylist() == [None]
    assert batch.table.column("leaf_hash").to_pylist() == [None]
    assert batch.table.column("attributes").to_pylist() == [[]]


def test_a_producers_leaf_index_is_an_attribute() -> None:
    batch = _decode(json.dumps([_event(leaf_index=3, leaf_hash="ab")]).encode())
    assert batch.table.column("leaf_index").to_pylist() == [None]
    assert batch.table.column("attributes").to_pylist() == [[("leaf_hash", '"ab"'), ("leaf_index", "3")]]


def test_session_seq_is_part_of_a_derived_id_only_when_sent() -> None:
    plain = _decode(json.dumps([_event()]).encode()).table.column("event_id")[0].as_py()
    numbered = [_event(session_seq=1), _event(session_seq=2)]
    ids = _decode(json.dumps(numbered).encode()).table.column("event_id").to_pylist()
    assert len(set(ids)) == 2  # two numbered events of equal content are two events
    assert plain not in ids
    again = _decode(json.dumps([_event()]).encode()).table.column("event_id")[0].as_py()
    assert again == plain


def _arrow(seq: pa.Array) -> bytes:
    n = len(seq)
    return _ipc(
        pa.table(
            {
                "timestamp": pa.array(["2025-06-03T08:06:01Z"] * n),
                "event_type": pa.array(["cell_change"] * n),
                "user_name": pa.array([f"u{i}" for i in range(n)]),
                "session_seq": seq,
            }
        )
    )


@pytest.mark.parametrize("kind", [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.uint64()])
def test_an_arrow_integer_column_is_session_seq(kind: pa.DataType) -> None:
    batch = _decode(_arrow(pa.array([0, 9, None], kind)), "arrow")
    assert batch.errors == ()
    assert batch.table.column("session_seq").to_pylist() == [0, 9, None]


def test_arrow_values_out_of_range_are_their_events_errors() -> None:
    batch = _decode(_arrow(pa.array([2**64 - 1, 4], pa.uint64())), "arrow")
    assert [(e.index, e.field) for e in batch.errors] == [(0, "session_seq")]
    negative = _decode(_arrow(pa.array([-3, 4], pa.int16())), "arrow")
    assert [(e.index, e.field, e.message) for e in negative.errors] == [(0, "session_seq", MESSAGE)]


@pytest.mark.parametrize("column", [pa.array(["1", "2"]), pa.array([1.0, 2.0]), pa.array([True, False])])
def test_an_arrow_session_seq_of_another_type_is_400(column: pa.Array) -> None:
    with pytest.raises(ApiError) as info:
        _decode(_arrow(column), "arrow")
    assert (info.value.status, info.value.code) == (400, "invalid_body")
    assert "session_seq" in info.value.message

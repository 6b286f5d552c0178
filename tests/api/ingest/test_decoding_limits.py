"""Hostile bodies cost the decoder what the settings allow, no more (issue 8, items 1 and 2).

No wall-clock assertions: each bound is checked through a measurable proxy instead: which values
reach the event_type normaliser (its cache counts them), how much Python memory the attribute
builder allocates (tracemalloc), how much Arrow memory decoding a bomb allocates (the Arrow pool's
peak, in a fresh process), and the answer itself (a clear 4xx, nothing decoded).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.errors import ApiError
from api.ingest.decoding import DecodedBatch, decode_batch
from api.ingest.normalize import normalize_event_type
from storage.schema import EVENT_SCHEMA, MAX_EVENT_BYTES

NOW = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
MiB = 1024 * 1024


def decode(body: bytes, kind: Any = "json", **limits: Any) -> DecodedBatch:
    options: dict[str, Any] = {"max_events": 10_000, "header_batch_id": "b", "received_at": NOW, "now": NOW}
    return decode_batch(body, kind, **(options | limits))


def event(i: int = 0, **fields: Any) -> dict[str, Any]:
    return {"timestamp": "2025-06-03T08:06:01Z", "event_type": "cell_change", "user_name": f"u{i}"} | fields


def refused(body: bytes, kind: Any = "json", **limits: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        decode(body, kind, **limits)
    return info.value


# --- 1. the event_type normaliser ----------------------------------------------------------------


def test_over_long_event_types_never_reach_the_normaliser() -> None:
    """A type over the 64-character limit is rejected by its length; the regexes never see it."""
    normalize_event_type.cache_clear()
    long_types = ["AbCd" * 7_500, "A" * 3_000 + "b", "x" * 65]
    body = json.dumps([event(i, event_type=t) for i, t in enumerate(long_types)] + [event(9)]).encode()
    batch = decode(body)
    assert [(e.index, e.field, e.message) for e in batch.errors] == [
        (i, "event_type", "must be at most 64 characters") for i in range(3)
    ]
    assert normalize_event_type.cache_info().misses == 1  # "cell_change" only


def _previous_normaliser(value: str) -> str:
    """The normaliser as it was (quadratic on a long upper-case run): the reference on short types."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", value)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[\W_]+", "_", text).strip("_").lower()


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("AaBbZz09_- .É"), max_size=64))
def test_normaliser_unchanged_on_types_within_the_limit(value: str) -> None:
    assert normalize_event_type(value) == _previous_normaliser(value)


# --- 1. extra keys: capped per batch, attributes built without visiting key x event pairs ---------


def wide_body(events: int, keys_per_event: int) -> bytes:
    """Events with `keys_per_event` extra keys each that no other event has."""
    rows = [event(i) | {f"k{i:05d}_{j:02d}": 1 for j in range(keys_per_event)} for i in range(events)]
    return json.dumps(rows).encode()


def test_distinct_extra_keys_over_the_cap_are_413_before_attributes_are_built() -> None:
    body = wide_body(1_000, 5)  # 5,000 distinct keys, ~0.3 MiB
    error = refused(body, max_extra_keys=1_000)
    assert (error.status, error.code) == (413, "too_many_attribute_keys")
    assert "5000" in error.message
    assert "1000" in error.message
    nd = b"\n".join(json.dumps(e).encode() for e in json.loads(body))
    assert refused(nd, "ndjson", max_extra_keys=1_000).code == "too_many_attribute_keys"


def test_distinct_extra_keys_at_the_cap_are_accepted() -> None:
    batch = decode(wide_body(200, 5), max_extra_keys=1_000)
    assert (batch.errors, batch.table.num_rows) == ((), 200)
    assert dict(batch.table.column("attributes")[7].as_py()) == {f"k00007_{j:02d}": "1" for j in range(5)}


def test_wide_batch_attributes_take_memory_linear_in_pairs_not_keys_times_events() -> None:
    """3,000 events with 3 own keys each: 9,000 pairs, 27 million key x event cells."""
    body = wide_body(3_000, 3)
    decode(wide_body(30, 3))  # first use: imports and caches, not the builder, would count
    tracemalloc.start()
    try:
        batch = decode(body, max_extra_keys=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch.table.num_rows == 3_000
    assert dict(batch.table.column("attributes")[2_999].as_py()) == {f"k02999_{j:02d}": "1" for j in range(3)}
    assert peak < 40 * len(body), f"{peak / MiB:.0f} MiB traced for a {len(body) / MiB:.1f} MiB body"


def test_wide_and_narrow_builders_store_the_same_attributes() -> None:
    """Per event, keys in sorted order and JSON texts, whichever way the batch was assembled."""
    narrow = [event(i, Zeta=i, Alpha={"n": [i, "x"]}, Mid="m") for i in range(50)]
    wide = narrow + [event(100 + i) | {f"w{i}_{j}": j for j in range(3)} for i in range(50)]
    from_narrow = decode(json.dumps(narrow).encode()).table.column("attributes").to_pylist()
    from_wide = decode(json.dumps(wide).encode()).table.column("attributes").to_pylist()
    assert from_wide[:50] == from_narrow
    assert from_narrow[3] == [("Alpha", '{"n":[3,"x"]}'), ("Mid", '"m"'), ("Zeta", "3")]
    assert from_wide[60] == [("w10_0", "0"), ("w10_1", "1"), ("w10_2", "2")]


# --- 2. the per-event size limit, whatever the body size -----------------------------------------


def ipc(columns: dict[str, pa.Array], compression: str | None = None) -> bytes:
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def required(rows: int) -> dict[str, pa.Array]:
    return {
        "timestamp": pa.array(
            [dt.datetime(2025, 6, 3, 8, tzinfo=dt.UTC)] * rows, EVENT_SCHEMA.field("timestamp").type
        ),
        "event_type": pa.array(["cell_change"] * rows),
        "user_name": pa.array([f"u{i}" for i in range(rows)]),
    }


def attributes_of(values: list[str]) -> pa.Array:
    """One `blob` attribute per row, holding the JSON string of each value."""
    offsets = pa.array(range(len(values) + 1), pa.int32())
    texts = pa.array([f'"{v}"' for v in values])
    return pa.MapArray.from_arrays(offsets, pa.array(["blob"] * len(values)), texts)


@pytest.mark.parametrize("compression", [None, "zstd", "lz4"])
def test_event_size_limit_holds_for_a_small_compressed_arrow_body(compression: str | None) -> None:
    body = ipc(required(2) | {"attributes": attributes_of(["a" * (200 * 1024), "b"])}, compression)
    assert compression is None or len(body) < MAX_EVENT_BYTES
    batch = decode(body, "arrow")
    assert [(e.index, e.field) for e in batch.errors] == [(0, "event")]
    assert batch.table.column("user_name").to_pylist() == ["u1"]


def test_event_size_limit_holds_for_a_small_json_body() -> None:
    big = json.dumps([event(0, Blob="x" * (MAX_EVENT_BYTES - 20)), event(1)]).encode()
    assert [(e.index, e.field) for e in decode(big).errors] == [(0, "event")]


# --- 2. Arrow IPC: canonical types only, decoded size capped before expansion --------------------


def attributes_bomb(rows: int = 200, value_bytes: int = MiB) -> bytes:
    return ipc(required(rows) | {"attributes": attributes_of(["a" * value_bytes] * rows)}, "zstd")


def test_compressed_arrow_over_the_decoded_cap_is_413() -> None:
    body = attributes_bomb()
    assert len(body) < 64 * 1024
    error = refused(body, "arrow", max_arrow_bytes=64 * MiB)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert "decoded" in error.message


def test_arrow_bomb_is_refused_before_its_buffers_are_expanded() -> None:
    """In a fresh process the Arrow pool's peak stays far below the bomb's 200 MiB."""
    script = textwrap.dedent(
        """
        import datetime as dt, sys
        import pyarrow as pa
        from api.errors import ApiError
        from api.ingest.decoding import decode_batch
        from tests.api.ingest.test_decoding_limits import attributes_bomb
        body = attributes_bomb()
        pool = pa.default_memory_pool()
        before = pool.max_memory()
        now = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
        try:
            decode_batch(body, "arrow", max_events=10_000, header_batch_id="b", received_at=now, now=now,
                         max_arrow_bytes=64 * 2**20)
            print("accepted")
        except ApiError as exc:
            print(exc.status, pool.max_memory() - before)
        """
    )
    root = Path(__file__).parents[3]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120, cwd=root
    )
    status, grown = out.stdout.split()
    assert status == "413"
    assert int(grown) < 8 * MiB


def test_compressed_arrow_within_the_cap_is_accepted() -> None:
    columns = required(3) | {"new_value": pa.array(["1e-400", None, "x" * 1000])}
    for compression in ("zstd", "lz4"):
        batch = decode(ipc(columns, compression), "arrow")
        assert batch.errors == ()
        assert batch.table.column("new_value").to_pylist() == ["1e-400", None, "x" * 1000]


def test_arrow_rows_over_the_event_cap_are_413_from_the_metadata() -> None:
    body = ipc(
        {"timestamp": pa.nulls(50_000, pa.string()), "event_type": pa.nulls(50_000, pa.string())}
        | {"user_name": pa.nulls(50_000, pa.string())}
    )
    error = refused(body, "arrow", max_events=10_000)
    assert (error.status, error.code) == (413, "too_many_events")


def test_arrow_dictionary_columns_are_refused_naming_the_column() -> None:
    formula = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(10_000, np.int8)), pa.array(["=" + "A" * 65_535])
    )
    error = refused(ipc(required(10_000) | {"formula": formula}, "zstd"), "arrow")
    assert (error.status, error.code) == (400, "invalid_body")
    assert "'formula'" in error.message
    assert "dictionary" in error.message


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("padding", pa.ListArray.from_arrays(pa.array([0, 20_000_000], pa.int32()), pa.nulls(20_000_000))),
        ("Tags", pa.array([["a", "b"]])),
        ("Point", pa.array([{"x": 1}])),
        ("Other", pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))),
        ("attributes", pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))),
        ("attributes", pa.array([[("k", ["v"])]], pa.map_(pa.string(), pa.list_(pa.string())))),
        ("user_name", pa.array([["u"]])),
        ("received_at", pa.array([[1]])),
    ],
)
def test_arrow_nested_columns_are_refused_naming_the_column(name: str, column: pa.Array) -> None:
    error = refused(ipc(required(1) | {name: column}), "arrow")
    assert (error.status, error.code) == (400, "invalid_body")
    assert repr(name) in error.message


def test_arrow_duplicate_column_names_are_refused() -> None:
    table = pa.Table.from_arrays(
        [*required(1).values(), pa.array(["x"])], ["timestamp", "event_type", "user_name", "user_name"]
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    error = refused(sink.getvalue().to_pybytes(), "arrow")
    assert (error.status, "'user_name'" in error.message) == (400, True)


def test_arrow_extra_columns_count_against_the_key_cap() -> None:
    extras = {f"x{i}": pa.array(["v"]) for i in range(20)}
    error = refused(ipc(required(1) | extras), "arrow", max_extra_keys=10)
    assert (error.status, error.code) == (413, "too_many_attribute_keys")
    keys = attributes_of(["v"])  # one "blob" key in the map, plus 10 columns: 11 distinct
    error = refused(
        ipc(required(1) | {"attributes": keys} | dict(list(extras.items())[:10])), "arrow", max_extra_keys=10
    )
    assert error.code == "too_many_attribute_keys"
    assert decode(ipc(required(1) | dict(list(extras.items())[:10])), "arrow", max_extra_keys=10).errors == ()


def test_arrow_extra_columns_and_attributes_merge_per_row() -> None:
    attributes = pa.array([[("b", '"1"'), ("a", "2")], None, []], pa.map_(pa.string(), pa.string()))
    columns = required(3) | {
        "attributes": attributes,
        "Note": pa.array(['q"uote\\\n\x01', None, "ü"]),
        "Count": pa.array([None, -7, 2**62], pa.int64()),
        "Flag": pa.array([True, None, False]),
        "Nothing": pa.nulls(3),
    }
    rows = decode(ipc(columns), "arrow").table.column("attributes").to_pylist()
    assert rows == [
        [("b", '"1"'), ("a", "2"), ("Note", '"q\\"uote\\\\\\n\\u0001"'), ("Flag", "true")],
        [("Count", "-7")],
        [("Note", '"ü"'), ("Count", str(2**62)), ("Flag", "false")],
    ]
    assert json.loads(rows[0][2][1]) == 'q"uote\\\n\x01'


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_arrow_streams_are_refused_cleanly(data: st.DataObject) -> None:
    """Any byte flip or cut of a valid stream: decoded, or a 400/413, never another exception."""
    body = bytearray(
        ipc(
            required(3) | {"new_value": pa.array(["a", None, "c"])},
            data.draw(st.sampled_from([None, "zstd", "lz4"])),
        )
    )
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    status = 200
    try:
        decode(bytes(body[:cut]), "arrow")
    except ApiError as exc:
        status = exc.status
    assert status in (200, 400, 413)

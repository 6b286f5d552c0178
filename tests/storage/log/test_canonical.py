"""The canonical event (v1): the documented worked example, and the independent script's bytes.

The script (docs/verify_root.py) builds each row with json.dumps; it must agree on hostile strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import random
from types import ModuleType

import pyarrow as pa
import pytest

from storage.log.canonical import canonical_events, leaf_hashes, with_leaves
from storage.schema import EVENT_SCHEMA

#: The stored schema: leaf_index (and leaf_hash, session_seq) are columns of EVENT_SCHEMA itself.
LEAF_SCHEMA = EVENT_SCHEMA


def _docs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_root", "docs/verify_root.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": "6f1c2a52-3d4e-4f60-8a1b-2c3d4e5f6071",
        "timestamp": dt.datetime(2025, 6, 1, 9, 30, 0, 250000, tzinfo=dt.UTC),
        "event_type": "cell_change",
        "user_name": "CORP\\zoë.k",
        "machine_name": "WS-0042",
        "session_id": "s-1",
        "workbook_name": 'C:\\Books\\Q2 "final".xlsx',
        "sheet_name": "Sheet1",
        "cell_address": "B12",
        "old_value": "41",
        "new_value": "42\n",
        "formula": None,
        "correlation_id": None,
        "attributes": [("ExcelBuild", '"16.0"'), ("AddinVersion", '"3.4.1"')],
        "received_at": dt.datetime(2025, 6, 1, 9, 30, 1, tzinfo=dt.UTC),
        "batch_id": "b-7",
        "leaf_index": 41,
    }
    event.update(overrides)
    return event


EXPECTED = (
    '{"attributes":{"AddinVersion":"\\"3.4.1\\"","ExcelBuild":"\\"16.0\\""},"batch_id":"b-7",'
    '"cell_address":"B12","correlation_id":null,"event_id":"6f1c2a52-3d4e-4f60-8a1b-2c3d4e5f6071",'
    '"event_type":"cell_change","formula":null,"leaf_index":41,"machine_name":"WS-0042",'
    '"new_value":"42\\n","old_value":"41","received_at":"2025-06-01T09:30:01.000000Z",'
    '"session_id":"s-1","session_seq":null,"sheet_name":"Sheet1",'
    '"timestamp":"2025-06-01T09:30:00.250000Z","user_name":"CORP\\\\zoë.k","v":1,'
    '"workbook_name":"C:\\\\Books\\\\Q2 \\"final\\".xlsx"}'
)


def test_worked_example_is_the_documented_bytes() -> None:
    table = pa.Table.from_pylist([_event()], schema=LEAF_SCHEMA)
    assert canonical_events(table).to_pylist() == [EXPECTED]
    assert leaf_hashes(table).to_pylist() == [hashlib.sha256(b"\x00" + EXPECTED.encode()).digest()]
    with open("docs/canonical-event.md", encoding="utf-8") as fh:
        doc = fh.read()
    assert EXPECTED in doc
    assert hashlib.sha256(b"\x00" + EXPECTED.encode()).hexdigest() in doc


def test_session_seq_when_present_is_an_integer() -> None:
    table = pa.Table.from_pylist([_event(session_seq=7)], schema=LEAF_SCHEMA)
    assert '"session_seq":7,' in canonical_events(table)[0].as_py()


_ALPHABET = [
    "a",
    "Z",
    '"',
    "\\",
    "\n",
    "\r",
    "\t",
    "\b",
    "\f",
    "\x00",
    "\x01",
    "\x1f",
    "\x7f",
    "é",
    "€",
    "\u2028",
    "\ue000",
    "\uffff",
    "😀",
    "\U0010ffff",
    "/",
    " ",
    "<",
    "&",
]


def _random_events(rng: random.Random, n: int) -> list[dict[str, object]]:
    def text() -> str:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 6)))

    rows = []
    for i in range(n):
        row: dict[str, object] = {
            f.name: (text() if rng.random() < 0.7 else None) for f in EVENT_SCHEMA if f.type == pa.string()
        }
        row.update(
            event_id=text(),
            event_type=text() or "x",
            user_name=text() or "u",
            batch_id=text(),
            leaf_index=i * 7,
        )
        row["timestamp"] = dt.datetime(2000, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            microseconds=rng.randrange(10**16)
        )
        row["received_at"] = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            microseconds=rng.randrange(10**13)
        )
        row["attributes"] = [(k, json.dumps(text())) for k in {text() for _ in range(rng.randint(0, 4))}]
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_independent_script_on_hostile_strings(seed: int) -> None:
    script = _docs_script()
    rows = _random_events(random.Random(seed), 300)
    table = pa.Table.from_pylist(rows, schema=LEAF_SCHEMA)
    expected = [script.canonical(row).decode() for row in table.to_pylist()]
    assert canonical_events(table).to_pylist() == expected
    for start, stop in [(0, 0), (5, 6), (17, 250), (299, 300)]:  # slices keep their own rows
        assert canonical_events(table.slice(start, stop - start)).to_pylist() == expected[start:stop]
        batch = table.combine_chunks().to_batches()[0].slice(start, stop - start)
        assert canonical_events(batch).to_pylist() == expected[start:stop]


def test_with_leaves_numbers_rows_from_the_given_index() -> None:
    table = pa.Table.from_pylist([_event(), _event(event_id="other")], schema=LEAF_SCHEMA).drop_columns(
        ["leaf_index"]
    )
    out = with_leaves(table, 1000)
    assert out.column("leaf_index").to_pylist() == [1000, 1001]
    first = EXPECTED.replace('"leaf_index":41', '"leaf_index":1000')
    assert out.column("leaf_hash").to_pylist()[0] == hashlib.sha256(b"\x00" + first.encode()).digest()


def test_a_row_without_leaf_index_is_refused() -> None:
    table = pa.Table.from_pylist([_event(leaf_index=None)], schema=EVENT_SCHEMA)
    with pytest.raises(ValueError, match="leaf_index"):
        canonical_events(table)
    with pytest.raises(KeyError, match="leaf_index"):
        canonical_events(table.drop_columns(["leaf_index"]))

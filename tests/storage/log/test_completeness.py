"""Completeness per session: literal expectations over hand-made sessions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.log.completeness import session_completeness

SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("session_seq", pa.int64()),
        ("event_type", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("user_name", pa.string()),
        ("new_value", pa.string()),
        ("attributes", pa.map_(pa.string(), pa.string())),
    ]
)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _table() -> pa.Table:
    rows = []

    def add(
        session: str | None,
        seq: int | None,
        kind: str = "cell_change",
        value: str = "x",
        attrs: list[tuple[str, str]] | None = None,
    ) -> None:
        rows.append(
            {
                "session_id": session,
                "session_seq": seq,
                "event_type": kind,
                "timestamp": T0,
                "user_name": "u",
                "new_value": value,
                "attributes": attrs or [],
            }
        )

    add("a", 0, "session_start")
    add("a", 1)
    add("a", 4)
    add("a", 4, value="y")
    add("a", 7, "session_end")
    add("b", None)
    add("b", None, "session_end")  # an older add-in: no numbers
    add("c", 2)
    add("c", 2)  # the same content twice is not a conflict
    add("d", 10**12)  # a hostile number costs one range
    add("e", 0)
    add("e", 0, attrs=[("k", "1")])  # attributes count as content
    add("f", -3)  # never stored (>= 0 in the contract); read as unnumbered
    add(None, 5)  # no session: not reported
    return pa.Table.from_pylist(rows, schema=SCHEMA)


EXPECTED = [
    {
        "session_id": "a",
        "events": 5,
        "numbered_events": 5,
        "max_seq": 7,
        "missing_count": 4,
        "missing": [{"first": 2, "last": 3}, {"first": 5, "last": 6}],
        "conflicting_seq": [4],
        "has_end": True,
    },
    {
        "session_id": "b",
        "events": 2,
        "numbered_events": 0,
        "max_seq": None,
        "missing_count": 0,
        "missing": [],
        "conflicting_seq": [],
        "has_end": True,
    },
    {
        "session_id": "c",
        "events": 2,
        "numbered_events": 2,
        "max_seq": 2,
        "missing_count": 2,
        "missing": [{"first": 0, "last": 1}],
        "conflicting_seq": [],
        "has_end": False,
    },
    {
        "session_id": "d",
        "events": 1,
        "numbered_events": 1,
        "max_seq": 10**12,
        "missing_count": 10**12,
        "missing": [{"first": 0, "last": 10**12 - 1}],
        "conflicting_seq": [],
        "has_end": False,
    },
    {
        "session_id": "e",
        "events": 2,
        "numbered_events": 2,
        "max_seq": 0,
        "missing_count": 0,
        "missing": [],
        "conflicting_seq": [0],
        "has_end": False,
    },
    {
        "session_id": "f",
        "events": 1,
        "numbered_events": 0,
        "max_seq": None,
        "missing_count": 0,
        "missing": [],
        "conflicting_seq": [],
        "has_end": False,
    },
]


def test_gaps_conflicts_and_ends_from_arrow() -> None:
    assert session_completeness(_table()).to_pylist() == EXPECTED


def test_the_same_over_parquet_files_and_without_session_seq(tmp_path: Path) -> None:
    table = _table()
    pq.write_table(table.slice(0, 6), tmp_path / "a.parquet")
    pq.write_table(table.slice(6), tmp_path / "b.parquet")
    assert session_completeness([tmp_path / "a.parquet", tmp_path / "b.parquet"]).to_pylist() == EXPECTED
    pq.write_table(table.drop_columns(["session_seq"]), tmp_path / "old.parquet")
    old = session_completeness([tmp_path / "old.parquet"]).to_pylist()
    assert [(r["session_id"], r["numbered_events"], r["missing_count"], r["has_end"]) for r in old] == [
        ("a", 0, 0, True),
        ("b", 0, 0, True),
        ("c", 0, 0, False),
        ("d", 0, 0, False),
        ("e", 0, 0, False),
        ("f", 0, 0, False),
    ]

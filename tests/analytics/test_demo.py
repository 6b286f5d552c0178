"""The demo generator: canonical schema, determinism, valid values, realistic structure."""

from __future__ import annotations

import datetime as dt
import uuid

import polars as pl
import pyarrow as pa

from analytics.demo import generate_events
from storage.schema import EVENT_SCHEMA, KNOWN_EVENT_TYPES, STRING_LIMITS


def test_schema_determinism_and_size() -> None:
    table = generate_events(5_000, seed=3)
    assert table.schema.equals(EVENT_SCHEMA)
    assert table.num_rows == 5_000
    assert table.equals(generate_events(5_000, seed=3))
    assert not table.equals(generate_events(5_000, seed=4))
    assert generate_events(0).num_rows == 0
    assert generate_events(1).num_rows == 1


def test_values_respect_the_contract() -> None:
    start = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
    table = generate_events(3_000, seed=1, start=start, days=10)
    df = pl.DataFrame(pl.from_arrow(table.drop_columns(["attributes"])))
    ids = df["event_id"].to_list()
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i for i in ids[:500])
    assert set(df["event_type"].unique()) <= KNOWN_EVENT_TYPES
    assert df["timestamp"].min() >= start  # type: ignore[operator]
    assert df["timestamp"].max() < start + dt.timedelta(days=12)  # type: ignore[operator]
    assert df["timestamp"].is_sorted()
    for name, (low, high) in STRING_LIMITS.items():
        lengths = df[name].drop_nulls().str.len_chars().to_list()
        assert all(low <= n <= high for n in lengths), name
    assert (df["received_at"] > df["timestamp"]).all()


def test_sessions_and_cells_look_like_real_work() -> None:
    df = pl.DataFrame(pl.from_arrow(generate_events(4_000, seed=2).drop_columns(["attributes"])))
    per_session = df.group_by("session_id").agg(
        pl.col("user_name").n_unique().alias("users"),
        pl.col("machine_name").n_unique().alias("machines"),
        pl.len().alias("events"),
    )
    assert per_session.height > 20
    assert (per_session["users"] == 1).all()
    assert (per_session["machines"] == 1).all()
    starts = df.filter(pl.col("event_type") == "session_start")
    assert starts.height == per_session.height
    edits = df.filter(pl.col("event_type").is_in(["cell_change", "formula_change"]))
    assert edits.height > df.height / 2
    assert edits["cell_address"].null_count() == 0
    deep = edits.group_by("workbook_name", "sheet_name", "cell_address").len()["len"].to_list()
    assert max(deep) >= 3
    formulas = df.filter(pl.col("event_type") == "formula_change")["formula"]
    assert formulas.null_count() == 0
    assert formulas.str.starts_with("=").all()
    assert df["old_value"].drop_nulls().is_in([""]).any()  # empty strings stay distinct from null


def test_attributes_are_json_text() -> None:
    table = generate_events(50, seed=5)
    assert table.schema.field("attributes").type == pa.map_(pa.string(), pa.string())
    first = dict(table.column("attributes")[0].as_py())
    assert set(first) == {"AddinVersion", "ExcelBuild"}
    assert first["AddinVersion"].startswith('"')
    assert first["AddinVersion"].endswith('"')

"""The notebooks' pictures: the data each one draws, checked against plain counts, and a real PNG."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import polars as pl
from matplotlib.figure import Figure

from analytics.demo import generate_events
from analytics.plots import (
    EDIT_TYPES,
    activity_by_group,
    activity_figure,
    edits_figure,
    edits_matrix,
    session_figure,
    weekly_rhythm,
    weekly_rhythm_figure,
)

START = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def events(n: int = 2_000) -> pl.DataFrame:
    table = generate_events(n, seed=4, start=START, days=9, users=7, workbooks=10)
    return pl.DataFrame(pl.from_arrow(table.drop_columns(["attributes"])))


def png_bytes(figure: Figure) -> int:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    return len(buffer.getvalue())


def test_activity_counts_each_day_and_type() -> None:
    df = events()
    rows = df.select("timestamp", "event_type").rows()
    want = Counter((ts.replace(hour=0, minute=0, second=0, microsecond=0), kind) for ts, kind in rows)
    series = activity_by_group(df, every="1d")
    assert series.columns == ["ts", "group", "count"]
    assert {(ts, g): c for ts, g, c in series.rows()} == dict(want)
    assert png_bytes(activity_figure(series, title="per day", top=3)) > 10_000


def test_edits_matrix_counts_edits_of_the_busiest() -> None:
    df = events()
    edits = [
        (b, u)
        for t, b, u in df.select("event_type", "workbook_name", "user_name").rows()
        if t in EDIT_TYPES and b
    ]
    per_pair = Counter(edits)
    books = [b for b, _ in sorted(Counter(b for b, _ in edits).items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
    users = [u for u, _ in sorted(Counter(u for _, u in edits).items(), key=lambda kv: (-kv[1], kv[0]))[:4]]
    matrix = edits_matrix(df, top=4)
    assert matrix.columns == ["workbook", *users]
    assert matrix["workbook"].to_list() == [b.replace("\\", "/").rsplit("/", 1)[-1] for b in books]
    for row, book in enumerate(books):
        assert [matrix[u][row] for u in users] == [per_pair[(book, u)] for u in users]
    assert png_bytes(edits_figure(matrix)) > 10_000


def test_weekly_rhythm_has_every_hour_of_the_week() -> None:
    df = events()
    rhythm = weekly_rhythm(df)
    assert rhythm.height == 7 * 24
    want = Counter((ts.isoweekday(), ts.hour) for ts in df["timestamp"].to_list())
    assert {(d, h): c for d, h, c in rhythm.rows() if c} == dict(want)
    assert png_bytes(weekly_rhythm_figure(rhythm)) > 10_000


def test_session_timeline_draws_one_session() -> None:
    df = events()
    session = df.filter(pl.col("session_id") == df["session_id"][0])
    assert png_bytes(session_figure(session)) > 10_000

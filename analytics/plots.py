"""Pictures for the notebooks: matplotlib Figures from the DataFrames the client and exports give.

Each picture is two steps: a polars function that shapes the data (tested against plain counts)
and a drawing function that returns a `matplotlib.figure.Figure`. Figures are made without pyplot
(no global state, no window): a notebook displays one as PNG (`%matplotlib inline`, drawn by Agg),
a script saves it with `fig.savefig("activity.png")`. Needs the `notebooks` extra (matplotlib).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Final

import numpy as np
import polars as pl
from matplotlib.figure import Figure

__all__ = [
    "EDIT_TYPES",
    "activity_by_group",
    "activity_figure",
    "edits_figure",
    "edits_matrix",
    "session_figure",
    "weekly_rhythm",
    "weekly_rhythm_figure",
]

#: The event types that change cell contents.
EDIT_TYPES: Final = ("cell_change", "formula_change", "range_change")
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def activity_by_group(
    events: pl.LazyFrame | pl.DataFrame, every: str = "1d", by: str = "event_type"
) -> pl.DataFrame:
    """Events per time bucket and group, in the timeseries endpoint's columns (ts, group, count).

    For event frames (an export, `client.events`); the server computes the same with
    `client.timeseries(bucket, group_by)`. Empty buckets are absent here, zero there.
    """
    return (
        events.lazy()
        .group_by(
            pl.col("timestamp").dt.truncate(every).alias("ts"), pl.col(by).cast(pl.String).alias("group")
        )
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort("ts", "group")
        .collect()
    )


def activity_figure(series: pl.DataFrame, *, title: str, top: int = 6) -> Figure:
    """Stacked bars per bucket: the `top` groups by total, the rest as "other"."""
    totals = (
        series.group_by("group").agg(pl.col("count").sum()).sort(["count", "group"], descending=[True, False])
    )
    keep = totals["group"].head(top).to_list()
    named = series.with_columns(
        pl.when(pl.col("group").is_in(keep)).then(pl.col("group")).otherwise(pl.lit("other")).alias("group")
    )
    wide = (
        named.pivot(on="group", index="ts", values="count", aggregate_function="sum").sort("ts").fill_null(0)
    )
    order = [g for g in [*keep, "other"] if g in wide.columns]
    times = wide["ts"].to_list()
    step = min((b - a for a, b in itertools.pairwise(times)), default=dt.timedelta(hours=1))
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(wide.height)
    width = 0.9 * step.total_seconds() / 86_400  # matplotlib's date unit is the day
    for group in order:
        values = wide[group].to_numpy().astype(float)
        ax.bar(times, values, bottom=bottom, width=width, label=group, align="edge")
        bottom += values
    ax.set_title(title)
    ax.set_ylabel("events")
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    fig.autofmt_xdate()
    return fig


def edits_matrix(events: pl.LazyFrame | pl.DataFrame, *, top: int = 8) -> pl.DataFrame:
    """Edits (cell, formula, range changes) per workbook (rows) and user (columns), busiest first.

    The `top` workbooks and users by edits; the first column `workbook` holds the file name only.
    """
    edits = events.lazy().filter(
        pl.col("event_type").is_in(EDIT_TYPES) & pl.col("workbook_name").is_not_null()
    )
    counts = edits.group_by("workbook_name", "user_name").agg(pl.len().alias("edits")).collect()
    books = _busiest(counts, "workbook_name", top)
    users = _busiest(counts, "user_name", top)
    wide = (
        counts.filter(pl.col("workbook_name").is_in(books) & pl.col("user_name").is_in(users))
        .pivot(on="user_name", index="workbook_name", values="edits")
        .fill_null(0)
    )
    missing = [u for u in users if u not in wide.columns]
    wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(u) for u in missing)
    ranked = pl.DataFrame({"workbook_name": books, "rank": range(len(books))})
    wide = wide.join(ranked, on="workbook_name").sort("rank")
    short = wide["workbook_name"].map_elements(_file_name, return_dtype=pl.String).alias("workbook")
    return wide.select(short, *users)


def _busiest(counts: pl.DataFrame, key: str, top: int) -> list[str]:
    ranked = counts.group_by(key).agg(pl.col("edits").sum()).sort(["edits", key], descending=[True, False])
    return [str(v) for v in ranked[key].head(top).to_list()]


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def edits_figure(matrix: pl.DataFrame, *, title: str = "Edits per workbook and user") -> Figure:
    """A heat map of `edits_matrix`, each cell labelled with its count."""
    users = matrix.columns[1:]
    values = matrix.select(users).to_numpy().astype(float)
    fig = Figure(
        figsize=(1.2 * max(len(users), 4) + 3, 0.5 * max(matrix.height, 3) + 2), layout="constrained"
    )
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(users)), labels=users, rotation=35, ha="right")
    ax.set_yticks(range(matrix.height), labels=matrix["workbook"].to_list())
    peak = values.max() if values.size else 0.0
    for (row, col), value in np.ndenumerate(values):
        ax.text(
            col, row, f"{value:.0f}", ha="center", va="center", color="white" if value > peak / 2 else "black"
        )
    fig.colorbar(image, ax=ax, label="edits")
    ax.set_title(title)
    return fig


def weekly_rhythm(events: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Events per weekday (1 = Monday) and UTC hour, all 7 x 24 cells present."""
    counts = (
        events.lazy()
        .group_by(
            pl.col("timestamp").dt.weekday().cast(pl.Int32).alias("weekday"),
            pl.col("timestamp").dt.hour().cast(pl.Int32).alias("hour"),
        )
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .collect()
    )
    grid = pl.DataFrame({"weekday": range(1, 8)}, schema={"weekday": pl.Int32}).join(
        pl.DataFrame({"hour": range(24)}, schema={"hour": pl.Int32}), how="cross"
    )
    return grid.join(counts, on=["weekday", "hour"], how="left").fill_null(0).sort("weekday", "hour")


def weekly_rhythm_figure(rhythm: pl.DataFrame, *, title: str = "When people work (UTC)") -> Figure:
    """A weekday x hour heat map of `weekly_rhythm`."""
    values = rhythm.sort("weekday", "hour")["count"].to_numpy().reshape(7, 24).astype(float)
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Greens", aspect="auto")
    ax.set_yticks(range(7), labels=list(_WEEKDAYS))
    ax.set_xticks(range(0, 24, 2), labels=[f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("hour of day")
    fig.colorbar(image, ax=ax, label="events")
    ax.set_title(title)
    return fig


def session_figure(events: pl.DataFrame, *, title: str | None = None, max_labels: int = 30) -> Figure:
    """One session's events on a time line, one row per event type in a session's usual order.

    Edits are labelled with their cell address when there are at most `max_labels` of them.
    """
    ordered = events.sort("timestamp")
    present = set(ordered["event_type"].to_list())
    types = [t for t in _LIFECYCLE if t in present] + sorted(present - set(_LIFECYCLE))
    rows = {t: i for i, t in enumerate(types)}
    fig = Figure(figsize=(10, 0.4 * len(types) + 2), layout="constrained")
    ax = fig.subplots()
    kinds = ordered["event_type"].to_list()
    colours = ["tab:orange" if k in EDIT_TYPES else "tab:blue" for k in kinds]
    ax.scatter(ordered["timestamp"].to_list(), [rows[k] for k in kinds], s=26, c=colours, zorder=3)
    edits = ordered.filter(pl.col("event_type").is_in(EDIT_TYPES) & pl.col("cell_address").is_not_null())
    if edits.height <= max_labels:
        for when, kind, cell in edits.select("timestamp", "event_type", "cell_address").iter_rows():
            ax.annotate(
                cell, (when, rows[kind]), xytext=(0, 6), textcoords="offset points", fontsize=7, ha="center"
            )
    ax.set_yticks(range(len(types)), labels=types)
    ax.invert_yaxis()  # the session reads top to bottom: start, open, edits, save, end
    ax.grid(axis="x", alpha=0.3)
    first = ordered.row(0, named=True) if ordered.height else {}
    ax.set_title(title or f"Session of {first.get('user_name', '?')}: {ordered.height} events")
    fig.autofmt_xdate()
    return fig


_LIFECYCLE: Final = (
    "session_start", "workbook_open", "workbook_new", *EDIT_TYPES, "sheet_add", "sheet_rename",
    "sheet_delete", "row_insert", "row_delete", "column_insert", "column_delete", "calculation",
    "macro_run", "error", "workbook_save", "workbook_close", "session_end",
)  # fmt: skip

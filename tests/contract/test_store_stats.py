"""Contract: exact statistics and zero-filled time series (runs on every store)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyarrow as pa
import pytest

from storage.base import Bucket, EventFilter, EventStore, GroupBy
from storage.errors import InvalidQueryError
from tests.contract.events import BASE, Row, event, matches, table, varied

H = dt.timedelta(hours=1)
WIDTH = {"minute": dt.timedelta(minutes=1), "hour": H, "day": 24 * H, "week": 168 * H}


@pytest.fixture
def rows(store: EventStore) -> list[Row]:
    data = varied()
    store.append(table(data[:30]))
    store.append(table([*data[20:], *data[:3]]))  # overlapping re-sends must not count
    return data


def _top(values: list[str | None], n: int | None) -> list[tuple[str, int]]:
    counts = Counter(v for v in values if v is not None)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _pairs(t: pa.Table) -> list[tuple[str, int]]:
    key, count = t.column_names
    return list(zip(t.column(key).to_pylist(), t.column(count).to_pylist(), strict=True))


@pytest.mark.parametrize(
    "flt",
    [
        EventFilter(),
        EventFilter(start=BASE + 30 * H, end=BASE + 150 * H),
        EventFilter(user_names=("CORP\\bob",)),
        EventFilter(text="new"),
        EventFilter(user_names=("nobody",)),
    ],
)
def test_stats_equal_plain_counts(store: EventStore, rows: list[Row], flt: EventFilter) -> None:
    sel = [r for r in rows if matches(r, flt)]
    stats = store.stats(flt, 2)
    assert stats.total_events == len(sel)
    assert stats.unique_users == len({r["user_name"] for r in sel})
    assert stats.unique_workbooks == len({r["workbook_name"] for r in sel} - {None})
    assert stats.unique_sessions == len({r["session_id"] for r in sel} - {None})
    assert stats.first_event_at == (min(r["timestamp"] for r in sel) if sel else None)
    assert stats.last_event_at == (max(r["timestamp"] for r in sel) if sel else None)
    assert _pairs(stats.by_event_type) == _top([r["event_type"] for r in sel], None)
    assert _pairs(stats.top_users) == _top([r["user_name"] for r in sel], 2)
    assert _pairs(stats.top_workbooks) == _top([r["workbook_name"] for r in sel], 2)


def test_stats_tables_have_contract_columns(store: EventStore, rows: list[Row]) -> None:
    stats = store.stats(EventFilter(), 10)
    assert stats.by_event_type.column_names == ["event_type", "count"]
    assert stats.top_users.column_names == ["user_name", "count"]
    assert stats.top_workbooks.column_names == ["workbook_name", "count"]
    assert stats.top_users.schema.field("count").type == pa.int64()


def _floor(ts: dt.datetime, bucket: str) -> dt.datetime:
    if bucket == "week":
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - dt.timedelta(days=day.weekday())
    floored = ts.replace(second=0, microsecond=0)
    if bucket in ("hour", "day"):
        floored = floored.replace(minute=0)
    if bucket == "day":
        floored = floored.replace(hour=0)
    return floored


def _expected_series(
    sel: list[Row], bucket: str, group_by: str | None, lo: dt.datetime, hi: dt.datetime
) -> list[tuple[dt.datetime, str | None, int]]:
    counts = Counter((_floor(r["timestamp"], bucket), r[group_by] if group_by else None) for r in sel)
    groups = {g for _, g in counts} if group_by else {None}
    ts, out = _floor(lo, bucket), []
    while ts <= _floor(hi, bucket):
        out += [(ts, g, counts.get((ts, g), 0)) for g in groups]
        ts += WIDTH[bucket]
    return sorted(out, key=lambda x: (x[0], x[1] is None, x[1] or ""))


def _series(t: pa.Table) -> list[tuple[dt.datetime, str | None, int]]:
    assert t.column_names == ["ts", "group", "count"]
    return list(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True))


@pytest.mark.parametrize("bucket", ["minute", "hour", "day", "week"])
@pytest.mark.parametrize("group_by", [None, "event_type", "user_name", "workbook_name"])
def test_timeseries_zero_fills_every_bucket_and_group(
    store: EventStore, rows: list[Row], bucket: Bucket, group_by: GroupBy | None
) -> None:
    flt = EventFilter(start=BASE + 20 * H, end=BASE + 30 * H) if bucket == "minute" else EventFilter()
    sel = [r for r in rows if matches(r, flt)]
    lo = flt.start or min(r["timestamp"] for r in sel)
    hi = flt.end - dt.timedelta(microseconds=1) if flt.end else max(r["timestamp"] for r in sel)
    got = store.timeseries(flt, bucket, group_by)
    assert got.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert got.schema.field("count").type == pa.int64()
    assert _series(got) == _expected_series(sel, bucket, group_by, lo, hi)


def test_timeseries_bounds_come_from_the_filter(store: EventStore) -> None:
    store.append(table([event(1, timestamp=BASE + dt.timedelta(hours=5, minutes=30))]))
    flt = EventFilter(start=BASE + dt.timedelta(minutes=30), end=BASE + 8 * H)
    got = _series(store.timeseries(flt, "hour", None))
    assert [g[0] for g in got] == [BASE + i * H for i in range(8)]
    assert [g[2] for g in got] == [0, 0, 0, 0, 0, 1, 0, 0]


def test_week_buckets_start_on_monday(store: EventStore) -> None:
    sunday = dt.datetime(2024, 3, 17, 23, 59, tzinfo=dt.UTC)
    store.append(table([event(1, timestamp=sunday), event(2, timestamp=sunday + dt.timedelta(minutes=2))]))
    got = _series(store.timeseries(EventFilter(), "week", None))
    assert got == [
        (dt.datetime(2024, 3, 11, tzinfo=dt.UTC), None, 1),
        (dt.datetime(2024, 3, 18, tzinfo=dt.UTC), None, 1),
    ]


def test_too_many_buckets_is_an_invalid_query(store: EventStore) -> None:
    store.append(table([event(1)]))
    flt = EventFilter(start=BASE, end=BASE + dt.timedelta(days=400))
    with pytest.raises(InvalidQueryError):
        store.timeseries(flt, "minute", None)

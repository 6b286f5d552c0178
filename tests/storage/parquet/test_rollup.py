"""ParquetStore rollups and the hidden cell key: exact against plain counts, derivable, invisible.

The oracle is a plain Python count over the deduplicated input rows, never the store's own code:
rollup-answered stats and timeseries (and the scan path that bypasses rollups) must equal it for
every time range, also after re-sent duplicates, compaction and a reopen; each file's footer
rollup must equal a plain count over that file's rows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.demo import generate_events
from storage.base import Bucket, EventFilter, GroupBy, Page, Stats
from storage.parquet import queries as sql
from storage.parquet.layout import CELL_KEY, MANIFEST_FILE
from storage.parquet.rollup import ROLLUP_KEY, decode
from storage.parquet.store import ParquetStore
from storage.schema import EVENT_SCHEMA
from tests.contract.events import Row

START = dt.datetime(2025, 1, 27, tzinfo=dt.UTC)
D = dt.timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ParquetStore]:
    s = ParquetStore(tmp_path / "pq", compact_threshold=3)
    s.open()
    try:
        yield s
    finally:
        s.close()


def _load(s: ParquetStore) -> list[Row]:
    """Demo events over two months in 9 appends, each re-sending part of the one before."""
    events = generate_events(4_000, seed=3, start=START, days=40, users=7, workbooks=9)
    for first in range(0, 4_000, 450):
        s.append(events.slice(max(0, first - 100), 550))
    rows: list[Row] = events.to_pylist()
    return rows


def _plain(rows: list[Row], flt: EventFilter, top: int) -> Stats:
    sel = [
        r
        for r in rows
        if (flt.start is None or r["timestamp"] >= flt.start)
        and (flt.end is None or r["timestamp"] < flt.end)
    ]

    def ranked(col: str, n: int | None) -> list[tuple[object, int]]:
        counts = Counter(r[col] for r in sel if r[col] is not None)
        return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]

    def tab(col: str, n: int | None) -> pa.Table:
        pairs = ranked(col, n)
        return pa.table(
            {col: [k for k, _ in pairs], "count": [c for _, c in pairs]},
            pa.schema([(col, pa.string()), ("count", pa.int64())]),
        )

    stamps = [r["timestamp"] for r in sel]
    return Stats(
        total_events=len(sel),
        unique_users=len({r["user_name"] for r in sel}),
        unique_workbooks=len({r["workbook_name"] for r in sel} - {None}),
        unique_sessions=len({r["session_id"] for r in sel} - {None}),
        first_event_at=min(stamps) if stamps else None,
        last_event_at=max(stamps) if stamps else None,
        by_event_type=tab("event_type", None),
        top_users=tab("user_name", top),
        top_workbooks=tab("workbook_name", top),
    )


def _same(got: Stats, want: Stats) -> None:
    for name in (
        "total_events",
        "unique_users",
        "unique_workbooks",
        "unique_sessions",
        "first_event_at",
        "last_event_at",
    ):
        assert getattr(got, name) == getattr(want, name), name
    for name in ("by_event_type", "top_users", "top_workbooks"):
        assert getattr(got, name).to_pylist() == getattr(want, name).to_pylist(), name


RANGES = [
    EventFilter(),
    EventFilter(start=START + 3 * D),
    EventFilter(end=START + 20 * D),
    EventFilter(start=START + 5 * D + dt.timedelta(hours=7), end=START + 33 * D),
    EventFilter(start=dt.datetime(2025, 2, 1, tzinfo=dt.UTC), end=dt.datetime(2025, 3, 1, tzinfo=dt.UTC)),
    EventFilter(start=START + 100 * D),
]


@pytest.mark.parametrize("flt", RANGES)
def test_rollup_stats_equal_plain_counts_before_and_after_compaction(
    store: ParquetStore, flt: EventFilter
) -> None:
    rows = _load(store)
    _same(store.stats(flt, 3), _plain(rows, flt, 3))
    store.compact()
    assert len(store._files.manifest.files) < 9
    _same(store.stats(flt, 3), _plain(rows, flt, 3))
    result = store.append(
        generate_events(4_000, seed=3, start=START, days=40, users=7, workbooks=9).slice(0, 900)
    )
    assert result.stored == 0
    _same(store.stats(flt, 3), _plain(rows, flt, 3))


def _plain_rollup(rows: list[Row]) -> list[tuple[int, str, int, int | None]]:
    """A file's rollup counted in plain Python: (dim, key, count, hour) per non-null key, sorted.

    Codes as in storage.parquet.rollup: 0 event_type, 1 user_name, 2 workbook_name, 3 session_id,
    and 4 for (UTC hour start in epoch microseconds, event_type).
    """
    counts: Counter[tuple[int, str, int | None]] = Counter()
    for r in rows:
        for code, column in enumerate(("event_type", "user_name", "workbook_name", "session_id")):
            if r[column] is not None:
                counts[(code, str(r[column]), None)] += 1
        ts = r["timestamp"]
        assert isinstance(ts, dt.datetime)
        hour = ts.replace(minute=0, second=0, microsecond=0)
        counts[(4, str(r["event_type"]), int(hour.timestamp()) * 1_000_000)] += 1
    return sorted(((d, k, c, h) for (d, k, h), c in counts.items()), key=str)


def _entries(rollup: pa.Table) -> list[tuple[int, str, int, int | None]]:
    return sorted(((r["dim"], r["key"], r["count"], r["hour"]) for r in rollup.to_pylist()), key=str)


def test_compacted_rollup_equals_the_rollup_of_its_rows(store: ParquetStore) -> None:
    _load(store)
    store.compact()
    for f in store._files.manifest.files:
        path = store.root / f.path
        footer = decode((pq.read_metadata(path).metadata or {})[ROLLUP_KEY])
        assert _entries(footer) == _plain_rollup(pq.read_table(path).to_pylist()), f.path
        assert _entries(store._files.rollups.get(f.path)) == _entries(footer), f.path


def test_every_file_carries_its_rollup_and_one_without_is_rolled_up_on_use(tmp_path: Path) -> None:
    s = ParquetStore(tmp_path / "pq")
    s.open()
    rows = _load(s)
    files = s._files.manifest.files
    s.close()
    assert all(ROLLUP_KEY in (pq.read_metadata(s.root / f.path).metadata or {}) for f in files)
    for f in files[:3]:  # as if written by another tool: same rows, no rollup in the footer
        plain = pq.read_table(s.root / f.path).replace_schema_metadata(None)
        pq.write_table(plain, s.root / f.path)
        assert ROLLUP_KEY not in (pq.read_metadata(s.root / f.path).metadata or {})
    s.open()
    try:
        _same(s.stats(EventFilter(), 5), _plain(rows, EventFilter(), 5))
    finally:
        s.close()


def test_the_cell_key_is_hidden_and_its_bloom_filter_prunes(store: ParquetStore) -> None:
    rows = _load(store)
    store.compact()
    edited = Counter(
        (r["workbook_name"], r["sheet_name"], r["cell_address"]) for r in rows if r["cell_address"]
    )
    (wb, sheet, cell), count = edited.most_common()[-1]
    got = store.cell_history(wb, sheet, cell, 100)
    assert got.schema == EVENT_SCHEMA
    assert got.num_rows == count
    assert store.query(EventFilter(), Page(limit=5)).schema == EVENT_SCHEMA
    assert store.get_event(str(rows[0]["event_id"])).schema == EVENT_SCHEMA
    with store._files.snapshot() as files, store._cursor() as cur:
        assert CELL_KEY in pq.read_schema(store.root / files[0].path).names
        q = sql.cell_history(store._paths(files), wb, sheet, cell, 100, True)
        plan = cur.sql("EXPLAIN ANALYZE " + q.sql, params=q.params).fetchall()[0][1]
    found = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    assert found is not None
    scanned, total = (int(x) for x in found.groups())
    assert scanned < total


def test_cell_history_still_exact_when_the_key_function_changed(tmp_path: Path) -> None:
    s = ParquetStore(tmp_path / "pq")
    s.open()
    rows = _load(s)
    s.close()
    manifest = json.loads((s.root / MANIFEST_FILE).read_text())
    manifest["cell_key_probe"] = 12345  # as if written by a DuckDB whose hash() differs
    (s.root / MANIFEST_FILE).write_text(json.dumps(manifest))
    s.open()
    try:
        assert not s._use_cell_key
        r = next(r for r in rows if r["cell_address"])
        want = sum(
            1
            for x in rows
            if (x["workbook_name"], x["sheet_name"], x["cell_address"])
            == (r["workbook_name"], r["sheet_name"], r["cell_address"])
        )
        assert s.cell_history(r["workbook_name"], r["sheet_name"], r["cell_address"], 1000).num_rows == want
    finally:
        s.close()


def _floor(ts: dt.datetime, bucket: Bucket) -> dt.datetime:
    """The UTC bucket start: the hour, the day, or the Monday of the week."""
    hour = ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if bucket == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if bucket == "day" else day - dt.timedelta(days=day.weekday())


def _ts(row: Row) -> dt.datetime:
    ts = row["timestamp"]
    assert isinstance(ts, dt.datetime)
    return ts


def _plain_series(rows: list[Row], flt: EventFilter, bucket: Bucket, group_by: GroupBy | None) -> list[Row]:
    """The contract's timeseries counted in plain Python.

    Zero-filled from the filter's bounds (else the data's) to the bucket of end - 1 µs, for every
    group that has an event in the range; ordered by bucket, then group.
    """
    sel = [
        r
        for r in rows
        if (flt.start is None or _ts(r) >= flt.start) and (flt.end is None or _ts(r) < flt.end)
    ]
    lo = flt.start or min((_ts(r) for r in sel), default=None)
    hi = flt.end - dt.timedelta(microseconds=1) if flt.end else max((_ts(r) for r in sel), default=None)
    if lo is None or hi is None or hi < lo:
        return []
    counts = Counter((_floor(_ts(r), bucket), r[group_by] if group_by else None) for r in sel)
    groups = sorted({g for _, g in counts}, key=str) if group_by else [None]
    width = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1), "week": dt.timedelta(weeks=1)}[
        bucket
    ]
    series: list[Row] = []
    b, last = _floor(lo, bucket), _floor(hi, bucket)
    while b <= last:
        series.extend({"ts": b, "group": g, "count": counts[(b, g)]} for g in groups)
        b += width
    return series


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
@pytest.mark.parametrize("group_by", [None, "event_type"])
def test_rollup_timeseries_equal_plain_counts(
    store: ParquetStore, bucket: Bucket, group_by: GroupBy | None
) -> None:
    rows = _load(store)
    every_type = tuple(sorted({str(r["event_type"]) for r in rows}))
    for compact in (False, True):
        if compact:
            store.compact()
        for flt in RANGES:
            want = _plain_series(rows, flt, bucket, group_by)
            assert store.timeseries(flt, bucket, group_by).to_pylist() == want, (flt, compact)
            # Naming every event type selects the same rows but forces the plain scan path.
            scan = EventFilter(start=flt.start, end=flt.end, event_types=every_type)
            assert store.timeseries(scan, bucket, group_by).to_pylist() == want, (flt, compact)

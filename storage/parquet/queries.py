"""Every DuckDB statement of the Parquet store, built as (sql, parameters).

The only SQL of the Parquet engine lives here. User values are always bound as named parameters
(`$p0`, `$p1`, ...); the file list is bound too (`$files`). The one formatted value is a temp file
path of our own making in COPY (DuckDB cannot bind a COPY target), quoted.

Time arithmetic is done on epoch microseconds (`epoch_us`, `make_timestamp`) so no result depends
on the session time zone; results are cast to the contract's Arrow types by the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa

from storage.base import CELL_SETTING_TYPES, Bucket, Cursor, EventFilter, GroupBy, Order, SessionFilter
from storage.schema import EVENT_SCHEMA

__all__ = [
    "BUCKET_US",
    "EMPTY_TABLE",
    "EPOCH",
    "GROUP_COLUMNS",
    "SESSION_SCHEMA",
    "SOURCE",
    "TIMESERIES_SCHEMA",
    "Query",
    "after_leaf",
    "batch_keys",
    "bucket_floor",
    "cell_history",
    "cell_key_probe",
    "cell_state",
    "confirm_ids",
    "engine_memory",
    "event_by_id",
    "events_page",
    "hash_ids",
    "leaf_hashes",
    "leaf_size",
    "one_session",
    "page_end",
    "session_numbers",
    "session_rows",
    "session_seq_events",
    "sorted_rows",
    "stats_groups",
    "stats_totals",
    "timeseries_counts",
    "timeseries_fill",
    "workbook_state",
]

EMPTY_TABLE = "empty_events"
#: `union_by_name`: files written before a column existed (session_seq and the log's leaf columns)
#: read it as NULL. Its cost is reading each file's schema at bind, which the footer cache holds.
SOURCE = "read_parquet($files, hive_partitioning = false, union_by_name = true)"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MINUTE = 60_000_000
BUCKET_US: dict[str, int] = {
    "minute": _MINUTE,
    "hour": 60 * _MINUTE,
    "day": 1440 * _MINUTE,
    "week": 10080 * _MINUTE,
}
#: 1970-01-01 was a Thursday: week buckets are offset by 4 days so they start on Monday.
_BUCKET_OFFSET: dict[str, int] = {"minute": 0, "hour": 0, "day": 0, "week": 4 * 1440 * _MINUTE}
GROUP_COLUMNS = ("event_type", "user_name", "workbook_name")
#: What reads return: the contract's columns, never the files' hidden cell key.
EVENT_COLUMNS = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
#: The hidden cell key of a row: DuckDB's 64-bit hash of (workbook, sheet, cell), cheap enough for
#: the write path (md5 costs 6x more). DuckDB does not promise its hash is stable across versions,
#: so the store records `cell_key_probe()` in its manifest and stops using the key on a mismatch.
_CELL_KEY_SQL = "hash(workbook_name, sheet_name, cell_address)"
_PROBE = ("govtrack", "cell", "key")

TIMESERIES_SCHEMA = pa.schema(
    [("ts", pa.timestamp("us", tz="UTC")), ("group", pa.string()), ("count", pa.int64())]
)

SESSION_SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("user_name", pa.string()),
        ("machine_name", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("duration_s", pa.float64()),
        ("event_count", pa.int64()),
        ("workbooks", pa.list_(pa.string())),
    ]
)


@dataclass(slots=True)
class Query:
    """A statement under construction: SQL text plus its named parameters."""

    sql: str = ""
    params: dict[str, object] = field(default_factory=dict)

    def bind(self, value: object) -> str:
        """Register a parameter and return its placeholder."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"${name}"


def cell_key_probe() -> Query:
    """The cell key of a fixed triple: equal values mean equal key functions."""
    q = Query()
    q.sql = f"SELECT hash({', '.join(q.bind(v) + '::VARCHAR' for v in _PROBE)}) AS probe"
    return q


def bucket_floor(us: int, bucket: Bucket) -> int:
    """The start (epoch µs) of the bucket holding `us`."""
    width, offset = BUCKET_US[bucket], _BUCKET_OFFSET[bucket]
    return (us - offset) // width * width + offset


def source(files: list[str], q: Query) -> str:
    """The FROM clause over `files`, or over the empty table when there are none."""
    if not files:
        return EMPTY_TABLE
    q.params["files"] = files
    return SOURCE


def _in(q: Query, column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(q.bind(v) for v in values)})"


def where(flt: EventFilter, q: Query) -> list[str]:
    """Predicates of an EventFilter (AND-ed by the caller)."""
    preds: list[str] = []
    if flt.start is not None:
        preds.append(f"timestamp >= {q.bind(flt.start)}")
    if flt.end is not None:
        preds.append(f"timestamp < {q.bind(flt.end)}")
    for column, values in (
        ("event_type", flt.event_types),
        ("user_name", flt.user_names),
        ("workbook_name", flt.workbook_names),
        ("sheet_name", flt.sheet_names),
    ):
        if values:
            preds.append(_in(q, column, values))
    for column, value in (
        ("machine_name", flt.machine_name),
        ("session_id", flt.session_id),
        ("correlation_id", flt.correlation_id),
        ("cell_address", flt.cell_address),
    ):
        if value is not None:
            preds.append(f"{column} = {q.bind(value)}")
    if flt.text is not None:
        t = q.bind(flt.text)
        preds.append(f"(contains(old_value, {t}) OR contains(new_value, {t}) OR contains(formula, {t}))")
    if flt.leaves_before is not None:
        preds.append(f"(leaf_index IS NULL OR leaf_index < {q.bind(flt.leaves_before)})")
    return preds


def _where_sql(preds: list[str]) -> str:
    return f"WHERE {' AND '.join(preds)}" if preds else ""


def keyset(after: Cursor, order: Order, q: Query) -> str:
    """Rows strictly past the cursor in `order` by (timestamp, event_id)."""
    op = "<" if order == "desc" else ">"
    ts = q.bind(EPOCH + dt.timedelta(microseconds=after.timestamp_us))
    eid = q.bind(after.event_id)
    return f"(timestamp {op} {ts} OR (timestamp = {ts} AND event_id {op} {eid}))"


def events_page(files: list[str], flt: EventFilter, limit: int, order: Order, after: Cursor | None) -> Query:
    """One keyset page of matching events."""
    q = Query()
    preds = where(flt, q)
    if after is not None:
        preds.append(keyset(after, order, q))
    direction = "DESC" if order == "desc" else "ASC"
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} {_where_sql(preds)} "
        f"ORDER BY timestamp {direction}, event_id {direction} LIMIT {q.bind(limit)}"
    )
    return q


def page_end(files: list[str], flt: EventFilter, limit: int, order: Order, after: Cursor | None) -> Query:
    """The keys (epoch µs, event_id) of a page's last row and of the row after it, if any.

    Only the two key columns reach the top-n: DuckDB holds limit + 1 keys, not whole rows.
    """
    q = Query()
    preds = where(flt, q)
    if after is not None:
        preds.append(keyset(after, order, q))
    direction = "DESC" if order == "desc" else "ASC"
    q.sql = (
        f"SELECT epoch_us(timestamp) AS ts_us, event_id FROM {source(files, q)} {_where_sql(preds)} "
        f"ORDER BY timestamp {direction}, event_id {direction} LIMIT 2 OFFSET {q.bind(limit - 1)}"
    )
    return q


def after_leaf(files: list[str], flt: EventFilter, after: int, limit: int) -> Query:
    """Matching events with leaf_index > `after`, in leaf order (row-group min/max on leaf_index prune).

    A tail reader asks for the leaves after the newest it saw: the row groups of older files end
    below it, so DuckDB skips them from their footers (cached) and reads only the newest files.
    """
    q = Query()
    preds = [*where(flt, q), f"leaf_index > {q.bind(after)}"]
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} {_where_sql(preds)} "
        f"ORDER BY leaf_index LIMIT {q.bind(limit)}"
    )
    return q


def event_by_id(files: list[str], event_id: str) -> Query:
    """The event with one id (at most one row exists)."""
    q = Query()
    q.sql = f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} WHERE event_id = {q.bind(event_id)} LIMIT 1"
    return q


def cell_history(files: list[str], workbook: str, sheet: str, cell: str, limit: int, use_key: bool) -> Query:
    """Events on one exact cell, newest first; the hidden key's bloom filters skip row groups.

    The key is computed from the bound values (DuckDB folds it to a constant before pruning).
    """
    q = Query()
    wb, sh, ce = q.bind(workbook), q.bind(sheet), q.bind(cell)
    preds = [f"workbook_name = {wb}", f"sheet_name = {sh}", f"cell_address = {ce}"]
    if use_key:
        preds.insert(0, f"_cell_key = hash({wb}::VARCHAR, {sh}::VARCHAR, {ce}::VARCHAR)")
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} {_where_sql(preds)} "
        f"ORDER BY timestamp DESC, event_id DESC LIMIT {q.bind(limit)}"
    )
    return q


def stats_totals(files: list[str], flt: EventFilter) -> Query:
    """Totals, exact distinct counts and the timestamp range, in one columnar scan."""
    q = Query()
    preds = where(flt, q)
    q.sql = (
        "SELECT count(*) AS total_events, count(DISTINCT user_name) AS unique_users, "
        "count(DISTINCT workbook_name) AS unique_workbooks, count(DISTINCT session_id) AS unique_sessions, "
        "epoch_us(min(timestamp)) AS first_us, epoch_us(max(timestamp)) AS last_us "
        f"FROM {source(files, q)} {_where_sql(preds)}"
    )
    return q


def stats_groups(files: list[str], flt: EventFilter) -> Query:
    """One scan giving rows shaped like a rollup (dim code, key, count), for stats.

    Dims follow storage.parquet.rollup.DIMS, null keys left out; one extra row (dim -1) holds the
    matching rows' time range in `lo`/`hi`.
    """
    q = Query()
    preds = where(flt, q)
    q.sql = (
        "SELECT * FROM (SELECT CASE WHEN grouping(event_type) = 0 THEN 0 WHEN grouping(user_name) = 0 THEN 1 "
        "WHEN grouping(workbook_name) = 0 THEN 2 WHEN grouping(session_id) = 0 THEN 3 ELSE -1 END::TINYINT AS dim, "
        'coalesce(event_type, user_name, workbook_name, session_id) AS "key", count(*) AS "count", '
        "NULL::BIGINT AS hour, epoch_us(min(timestamp)) AS lo, epoch_us(max(timestamp)) AS hi "
        f"FROM {source(files, q)} {_where_sql(preds)} "
        "GROUP BY GROUPING SETS ((event_type), (user_name), (workbook_name), (session_id), ())) "
        'WHERE "key" IS NOT NULL OR dim = -1'
    )
    return q


def timeseries_counts(
    files: list[str], flt: EventFilter, bucket: Bucket, group_by: GroupBy | None, limit: int | None = None
) -> Query:
    """Non-zero counts (b = bucket start µs, g = group or NULL, c) of the matching events.

    `limit` bounds the cells returned (the caller asks for cap + 1 to tell "over the cap").
    """
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ValueError(f"not a groupable column: {group_by}")
    q = Query()
    preds = where(flt, q)
    width, offset = q.bind(BUCKET_US[bucket]), q.bind(_BUCKET_OFFSET[bucket])
    group = group_by if group_by is not None else "NULL::VARCHAR"
    q.sql = (
        f"SELECT (epoch_us(timestamp) - {offset}) // {width} * {width} + {offset} AS b, {group} AS g, "
        f"count(*) AS c FROM {source(files, q)} {_where_sql(preds)} GROUP BY ALL"
    )
    if limit is not None:
        q.sql += f" LIMIT {q.bind(limit)}"
    return q


def timeseries_fill(relation: str, bucket: Bucket, grouped: bool, lo: int, hi: int) -> Query:
    """Zero-fill counts (b, g, c) of a registered relation over buckets lo..hi for every group."""
    q = Query()
    width = q.bind(BUCKET_US[bucket])
    groups = "SELECT DISTINCT g FROM counts" if grouped else "SELECT NULL::VARCHAR AS g"
    q.sql = (
        f"WITH counts AS (SELECT b, g, c FROM {relation}), groups AS ({groups}), "
        f"buckets AS (SELECT range AS b FROM range({q.bind(lo)}::BIGINT, {q.bind(hi + 1)}::BIGINT, {width})) "
        'SELECT make_timestamp(buckets.b) AS ts, groups.g AS "group", coalesce(counts.c, 0)::BIGINT AS "count" '
        "FROM buckets CROSS JOIN groups "
        "LEFT JOIN counts ON counts.b = buckets.b AND counts.g IS NOT DISTINCT FROM groups.g "
        'ORDER BY ts, "group" NULLS LAST'
    )
    return q


_SESSION_FIGURES = (
    "SELECT session_id, first(user_name ORDER BY timestamp, event_id) AS user_name, "
    "first(machine_name ORDER BY timestamp, event_id) AS machine_name, "
    "min(timestamp) AS start_time, max(timestamp) AS end_time, "
    "(epoch_us(max(timestamp)) - epoch_us(min(timestamp))) / 1e6 AS duration_s, "
    "count(*) AS event_count, "
    "coalesce(list_sort(list_distinct(list(workbook_name))), []::VARCHAR[]) AS workbooks "
)


def session_rows(
    files: list[str], flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None
) -> Query:
    """Whole-session figures of sessions with an event in the window, newest first."""
    q = Query()
    src = source(files, q)
    window = where(EventFilter(start=flt.start, end=flt.end), q)
    hit = f"SELECT DISTINCT session_id FROM {src} {_where_sql([*window, 'session_id IS NOT NULL'])}"
    outer: list[str] = []
    if flt.user_name is not None:
        outer.append(f"user_name = {q.bind(flt.user_name)}")
    if after is not None:
        ts, sid = q.bind(after[0]), q.bind(after[1])
        outer.append(f"(start_time < {ts} OR (start_time = {ts} AND session_id < {sid}))")
    q.sql = (
        f"WITH s AS ({_SESSION_FIGURES} FROM {src} WHERE session_id IN ({hit}) GROUP BY session_id) "
        f"SELECT * FROM s {_where_sql(outer)} ORDER BY start_time DESC, session_id DESC LIMIT {q.bind(limit)}"
    )
    return q


def one_session(files: list[str], session_id: str) -> Query:
    """The figures of one session (zero or one row)."""
    q = Query()
    q.sql = f"{_SESSION_FIGURES} FROM {source(files, q)} WHERE session_id = {q.bind(session_id)} GROUP BY session_id"
    return q


def batch_keys(relation: str) -> str:
    """Per row of a registered batch: the event_id hash (dedup index) and the hidden cell key."""
    return f"SELECT hash(event_id) AS h, {_CELL_KEY_SQL} AS ck FROM {relation}"


def hash_ids(relation: str) -> str:
    """Hashes of the event_id column of a registered relation or `read_parquet($files)`."""
    return f"SELECT hash(event_id) AS h FROM {relation}"


def confirm_ids(files: list[str], ids: list[str], start_us: int | None, end_us: int | None) -> Query:
    """Which of `ids` are stored in `files` (optionally only within [start_us, end_us])."""
    q = Query()
    preds = [f"event_id IN (SELECT unnest({q.bind(ids)}::VARCHAR[]))"]
    if start_us is not None and end_us is not None:
        preds.append(f"timestamp >= {q.bind(EPOCH + dt.timedelta(microseconds=start_us))}")
        preds.append(f"timestamp < {q.bind(EPOCH + dt.timedelta(microseconds=end_us))}")
    q.sql = f"SELECT DISTINCT event_id FROM {source(files, q)} {_where_sql(preds)}"
    return q


def _setting(q: Query, at: dt.datetime) -> list[str]:
    """Events that set a cell (CELL_SETTING_TYPES) at or before `at`."""
    return [f"timestamp <= {q.bind(at)}", _in(q, "event_type", CELL_SETTING_TYPES)]


def cell_state(
    files: list[str], workbook: str, sheet: str, cell: str, at: dt.datetime, use_key: bool
) -> Query:
    """The last event that set one exact cell as of `at` (the hidden key's bloom filters prune)."""
    q = Query()
    wb, sh, ce = q.bind(workbook), q.bind(sheet), q.bind(cell)
    preds = [f"workbook_name = {wb}", f"sheet_name = {sh}", f"cell_address = {ce}", *_setting(q, at)]
    if use_key:
        preds.insert(0, f"_cell_key = hash({wb}::VARCHAR, {sh}::VARCHAR, {ce}::VARCHAR)")
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} {_where_sql(preds)} "
        "ORDER BY timestamp DESC, event_id DESC LIMIT 1"
    )
    return q


def workbook_state(
    files: list[str], workbook: str, at: dt.datetime, limit: int, after: tuple[str, str] | None
) -> Query:
    """Per (sheet, cell) of a workbook, its last setting event as of `at`; (sheet, cell) order, keyset-paged.

    Cells after the cursor are filtered before the window, so a page costs the rest of the
    workbook's setting events, not all of them.
    """
    q = Query()
    preds = [f"workbook_name = {q.bind(workbook)}", *_setting(q, at)]
    preds += ["sheet_name IS NOT NULL", "cell_address IS NOT NULL"]
    if after is not None:
        s, c = q.bind(after[0]), q.bind(after[1])
        preds.append(f"(sheet_name > {s} OR (sheet_name = {s} AND cell_address > {c}))")
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} {_where_sql(preds)} "
        "QUALIFY row_number() OVER (PARTITION BY sheet_name, cell_address "
        "ORDER BY timestamp DESC, event_id DESC) = 1 "
        f"ORDER BY sheet_name, cell_address LIMIT {q.bind(limit)}"
    )
    return q


def session_numbers(files: list[str], session_id: str) -> Query:
    """Per distinct session_seq of one session: events and session_end events (storage.base)."""
    q = Query()
    q.sql = (
        "SELECT session_seq, count(*) AS n, count(*) FILTER (WHERE event_type = 'session_end') AS ends "
        f"FROM {source(files, q)} WHERE session_id = {q.bind(session_id)} GROUP BY session_seq"
    )
    return q


def session_seq_events(files: list[str], session_id: str, seqs: list[int]) -> Query:
    """One session's events numbered with one of `seqs`."""
    q = Query()
    q.sql = (
        f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} WHERE session_id = {q.bind(session_id)} "
        f"AND session_seq IN (SELECT unnest({q.bind(seqs)}::BIGINT[]))"
    )
    return q


def leaf_hashes(files: list[str], first: int, last: int) -> Query:
    """Leaf index and hash of the leaves [first, last), in leaf order (files' min/max prune)."""
    q = Query()
    q.sql = (
        f"SELECT leaf_index, leaf_hash FROM {source(files, q)} "
        f"WHERE leaf_index >= {q.bind(first)} AND leaf_index < {q.bind(last)} ORDER BY leaf_index"
    )
    return q


def leaf_size(files: list[str]) -> Query:
    """One past the highest leaf index in `files` (0 when none): a cross-check of the manifest."""
    q = Query()
    q.sql = f"SELECT coalesce(max(leaf_index) + 1, 0) AS size FROM {source(files, q)}"
    return q


def sorted_rows(files: list[str]) -> Query:
    """Every row of `files` clustered by cell key, then (timestamp, event_id): compaction's order.

    A cell's rows then sit in one or two row groups of a merged file, which row-group min/max on
    `_cell_key` finds (cell history); time filters still prune whole files by their time range.
    """
    q = Query()
    # Named columns, not `*`: with files from before a column existed, union_by_name orders the
    # columns by first appearance, which would put the cell key before the newer columns.
    q.sql = (
        f'SELECT {EVENT_COLUMNS}, "_cell_key" FROM {source(files, q)} ORDER BY _cell_key, timestamp, event_id'
    )
    return q


def engine_memory() -> Query:
    """Bytes DuckDB holds in memory and in temporary files, over all its buffer tags (cheap)."""
    return Query(
        "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT AS memory, "
        "coalesce(sum(temporary_storage_bytes), 0)::BIGINT AS temporary FROM duckdb_memory()"
    )

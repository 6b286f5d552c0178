"""Every SQL statement the ClickHouse store runs, built in one place; values are always bound.

Each builder returns `(sql, params)` for clickhouse-connect's server-side binding (`{name:Type}`),
so no user value is ever formatted into SQL text. The only identifiers spliced in are table and
column names from fixed whitelists in this module.

Deduplication at read (`final=True`) is for deployments with several writers (an HTTP server
that several API replicas write to): two appends racing past the id lookup can both store an
event, and only FINAL hides the second copy before a merge. Duplicates of an event can only sit
in one monthly partition (the partition key derives from the sorting key), so
`do_not_merge_across_partitions_select_final` finalises each partition on its own, in parallel,
and skips partitions already merged to one part. The embedded engine has exactly one writer,
which serialises appends behind an exact lookup, so its table never holds a duplicate and its
reads skip FINAL (`final=False`): FINAL costs 2-10x on the dashboard queries and stops
projections and read-in-order from being used.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from storage.base import CELL_SETTING_TYPES, Cursor, EventFilter, GroupBy, Order, SessionFilter
from storage.schema import EVENT_SCHEMA

__all__ = [
    "Query",
    "after_leaf",
    "all_ids",
    "capped",
    "cell_history",
    "cell_state",
    "create_database",
    "dim_counts",
    "dim_counts_rollup",
    "drop_month",
    "existing_ids",
    "export",
    "get_event",
    "id_days",
    "leaf_hashes",
    "leaf_size",
    "migration_record",
    "migrations_applied",
    "month_fingerprint",
    "months",
    "page",
    "page_end",
    "ping",
    "rollup_window",
    "session_ids",
    "session_numbers",
    "session_one",
    "session_partials",
    "session_seq_events",
    "sessions_page",
    "table_internals",
    "timeseries_counts",
    "timeseries_rollup",
    "totals",
    "workbook_state",
]

Query = tuple[str, dict[str, Any]]

EVENTS: Final = "audit_events"
FINAL_SETTINGS: Final = "SETTINGS do_not_merge_across_partitions_select_final = 1"


def _src(final: bool) -> str:
    """The events table, deduplicated at read when other writers may have raced this one."""
    return f"{EVENTS} FINAL" if final else EVENTS


def _settings(final: bool) -> str:
    return FINAL_SETTINGS if final else ""


TS: Final = "DateTime64(6, 'UTC')"
#: Read columns in EVENT_SCHEMA order; LowCardinality columns come back as plain strings.
COLUMNS: Final = ", ".join(f"`{name}`" for name in EVENT_SCHEMA.names)
#: The columns a top list / group can be over (whitelist for identifiers).
GROUP_COLUMNS: Final[frozenset[str]] = frozenset({"event_type", "user_name", "workbook_name"})


def micros(value: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ts(name: str) -> str:
    return f"fromUnixTimestamp64Micro({{{name}:Int64}}, 'UTC')"


def event_where(flt: EventFilter, params: dict[str, Any]) -> str:
    """The WHERE condition of an EventFilter; fills `params` with the bound values."""
    conds: list[str] = ["1"]
    # The day bounds are implied by the time bounds, but the key analysis does not derive them:
    # without them the sorting key's first column (toDate(timestamp)) is unconstrained and a
    # user filter on the second column prunes half a part instead of one day's granules.
    if flt.start is not None:
        params["f_start"] = micros(flt.start)
        conds.append(f"timestamp >= {_ts('f_start')} AND toDate(timestamp) >= toDate({_ts('f_start')})")
    if flt.end is not None:
        params["f_end"] = micros(flt.end)
        params["f_last"] = micros(flt.end) - 1
        conds.append(f"timestamp < {_ts('f_end')} AND toDate(timestamp) <= toDate({_ts('f_last')})")
    for column, values in (
        ("event_type", flt.event_types),
        ("user_name", flt.user_names),
        ("workbook_name", flt.workbook_names),
        ("sheet_name", flt.sheet_names),
    ):
        if values:
            params[f"f_{column}"] = list(values)
            conds.append(f"{column} IN {{f_{column}:Array(String)}}")
    for column, value in (
        ("machine_name", flt.machine_name),
        ("session_id", flt.session_id),
        ("correlation_id", flt.correlation_id),
        ("cell_address", flt.cell_address),
    ):
        if value is not None:
            params[f"f_{column}"] = value
            conds.append(f"{column} = {{f_{column}:String}}")
    if flt.text is not None:
        params["f_text"] = flt.text
        conds.append(
            "(position(old_value, {f_text:String}) > 0 OR position(new_value, {f_text:String}) > 0"
            " OR position(formula, {f_text:String}) > 0)"
        )
    if flt.leaves_before is not None:
        params["f_leaves"] = flt.leaves_before
        conds.append("(leaf_index IS NULL OR leaf_index < {f_leaves:Int64})")
    return " AND ".join(conds)


def create_database(database: str, *, on_cluster: bool = False) -> str:
    """CREATE DATABASE for a name the caller has validated as an identifier."""
    cluster = " ON CLUSTER '{cluster}'" if on_cluster else ""
    return f"CREATE DATABASE IF NOT EXISTS `{database}`{cluster}"


def ping() -> str:
    """The health probe."""
    return "SELECT 1"


def migrations_applied() -> str:
    """Versions and checksums of the DDL files already applied."""
    return "SELECT version, checksum FROM schema_migrations FINAL ORDER BY version"


def migration_record(version: int, name: str, checksum: str) -> Query:
    """Record one applied DDL file."""
    sql = (
        "INSERT INTO schema_migrations (version, name, checksum) "
        "VALUES ({version:UInt32}, {name:String}, {checksum:String})"
    )
    return sql, {"version": version, "name": name, "checksum": checksum}


def existing_ids(ids: list[str]) -> Query:
    """Which of `ids` are stored already: a key lookup in the parts' p_ids projection."""
    sql = f"SELECT DISTINCT event_id FROM {EVENTS} WHERE event_id IN {{ids:Array(String)}}"
    return sql, {"ids": ids}


def leaf_size() -> str:
    """One past the highest leaf index stored (0 when none): the log's committed size at start."""
    return f"SELECT toInt64(coalesce(max(leaf_index) + 1, 0)) AS size FROM {EVENTS}"


def leaf_hashes(first: int, last: int) -> Query:
    """Leaf index and hash of the leaves [first, last), in leaf order (the minmax index prunes)."""
    sql = (
        f"SELECT leaf_index, leaf_hash FROM {EVENTS} "
        "WHERE leaf_index >= {first:Int64} AND leaf_index < {last:Int64} ORDER BY leaf_index"
    )
    return sql, {"first": first, "last": last}


def all_ids() -> str:
    """Every stored id (repeats possible before merges): what a single writer's filter loads."""
    return f"SELECT event_id FROM {EVENTS}"


def page(flt: EventFilter, limit: int, order: Order, after: Cursor | None, *, final: bool) -> Query:
    """One keyset page of matching events in (timestamp, event_id) order."""
    params: dict[str, Any] = {"limit": limit}
    where = event_where(flt, params)
    direction = "DESC" if order == "desc" else "ASC"
    if after is not None:
        params["c_ts"] = after.timestamp_us
        params["c_id"] = after.event_id
        op = "<" if order == "desc" else ">"
        where += f" AND (timestamp, event_id) {op} ({_ts('c_ts')}, {{c_id:String}})"
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE {where} "
        f"ORDER BY timestamp {direction}, event_id {direction} LIMIT {{limit:UInt32}} {_settings(final)}"
    )
    return sql, params


def after_leaf(flt: EventFilter, after: int, limit: int, *, final: bool) -> Query:
    """Matching events with leaf_index > `after`, in leaf order (DDL 007's minmax index prunes).

    A tail reader asks for the leaves after the newest it saw, which live in the newest parts:
    the index skips every granule whose leaves all lie below it.
    """
    params: dict[str, Any] = {"after": after, "limit": limit}
    where = event_where(flt, params)
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE {where} AND leaf_index > {{after:Int64}} "
        f"ORDER BY leaf_index LIMIT {{limit:UInt32}} {_settings(final)}"
    )
    return sql, params


def id_days(event_id: str) -> Query:
    """The days an id is stored under: a key lookup in the p_ids projection (bound as `id`)."""
    return f"SELECT toDate(timestamp) FROM {EVENTS} WHERE event_id = {{id:String}}", {"id": event_id}


def get_event(event_id: str, *, final: bool) -> Query:
    """The event with that id: its days (id_days, from p_ids) narrow the read to one day's granules."""
    days, _ = id_days(event_id)
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE event_id = {{id:String}} "
        f"AND toDate(timestamp) IN ({days}) "
        f"ORDER BY _version DESC LIMIT 1 {_settings(final)}"
    )
    return sql, {"id": event_id}


def cell_history(workbook: str, sheet: str, cell: str, limit: int, *, final: bool) -> Query:
    """Changes of one cell, newest first; the hash condition lets the cell bloom filter prune."""
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} "
        "WHERE cityHash64(ifNull(workbook_name, ''), ifNull(sheet_name, ''), ifNull(cell_address, ''))"
        " = cityHash64({w:String}, {s:String}, {c:String})"
        " AND workbook_name = {w:String} AND sheet_name = {s:String} AND cell_address = {c:String} "
        f"ORDER BY timestamp DESC, event_id DESC LIMIT {{limit:UInt32}} {_settings(final)}"
    )
    return sql, {"w": workbook, "s": sheet, "c": cell, "limit": limit}


#: Setting events at or before `at` (µs); the day bound lets the sorting key prune (see event_where).
_SETTING: Final = (
    f"timestamp <= {_ts('at')} AND toDate(timestamp) <= toDate({_ts('at')}) "
    "AND event_type IN {types:Array(String)}"
)


def cell_state(workbook: str, sheet: str, cell: str, at: dt.datetime, *, final: bool) -> Query:
    """The last event that set one exact cell as of `at` (CELL_SETTING_TYPES; the cell bloom prunes)."""
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} "
        "WHERE cityHash64(ifNull(workbook_name, ''), ifNull(sheet_name, ''), ifNull(cell_address, ''))"
        " = cityHash64({w:String}, {s:String}, {c:String})"
        " AND workbook_name = {w:String} AND sheet_name = {s:String} AND cell_address = {c:String} "
        f"AND {_SETTING} ORDER BY timestamp DESC, event_id DESC LIMIT 1 {_settings(final)}"
    )
    return sql, {"w": workbook, "s": sheet, "c": cell, "at": micros(at), "types": list(CELL_SETTING_TYPES)}


def workbook_state(
    workbook: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, *, final: bool
) -> Query:
    """Per (sheet, cell) of a workbook its last setting event as of `at`, in (sheet, cell) order.

    `LIMIT 1 BY` keeps each cell's newest row; cells after the cursor are filtered first.
    """
    params: dict[str, Any] = {
        "w": workbook,
        "at": micros(at),
        "types": list(CELL_SETTING_TYPES),
        "limit": limit,
    }
    where = (
        f"workbook_name = {{w:String}} AND {_SETTING} AND sheet_name IS NOT NULL AND cell_address IS NOT NULL"
    )
    if after is not None:
        params["a_s"], params["a_c"] = after
        where += (
            " AND (sheet_name > {a_s:String} OR (sheet_name = {a_s:String} AND cell_address > {a_c:String}))"
        )
    inner = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE {where} "
        "ORDER BY sheet_name, cell_address, timestamp DESC, event_id DESC LIMIT 1 BY sheet_name, cell_address"
    )
    sql = (
        f"SELECT * FROM ({inner}) ORDER BY sheet_name, cell_address LIMIT {{limit:UInt32}} {_settings(final)}"
    )
    return sql, params


def session_numbers(session_id: str, *, final: bool) -> Query:
    """Per distinct session_seq of one session: events and session_end events (storage.base)."""
    sql = (
        "SELECT session_seq, toInt64(count()) AS n, toInt64(countIf(event_type = 'session_end')) AS ends "
        f"FROM {_src(final)} WHERE session_id = {{sid:String}} GROUP BY session_seq {_settings(final)}"
    )
    return sql, {"sid": session_id}


def session_seq_events(session_id: str, seqs: list[int], *, final: bool) -> Query:
    """One session's events numbered with one of `seqs`."""
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE session_id = {{sid:String}} "
        f"AND session_seq IN {{seqs:Array(Int64)}} {_settings(final)}"
    )
    return sql, {"sid": session_id, "seqs": seqs}


_HOUR_US: Final = 3_600_000_000
#: dim numbers of dim_counts -> the column they count.
DIMS: Final[dict[int, str]] = {1: "event_type", 2: "user_name", 3: "workbook_name"}
#: The hour the p_hour_* projections group by (DDL 006): rollup queries group and filter on this
#: very expression, which is what lets the engine answer them from the projections.
HOUR: Final = "toStartOfHour(timestamp)"


def rollup_window(flt: EventFilter) -> tuple[int | None, int | None] | None:
    """The filter's bounds (µs) when the hour projections answer it exactly, else None.

    That is: no filter but time, and both bounds (when given) on a whole UTC hour.
    """
    if flt != EventFilter(start=flt.start, end=flt.end):
        return None
    bounds = tuple(None if b is None else micros(b) for b in (flt.start, flt.end))
    if any(b is not None and b % _HOUR_US for b in bounds):
        return None
    return bounds[0], bounds[1]


def _rollup_where(window: tuple[int | None, int | None], params: dict[str, Any]) -> str:
    conds = ["1"]
    if window[0] is not None:
        params["r_start"] = window[0] // 1_000_000
        conds.append(f"{HOUR} >= toDateTime({{r_start:Int64}}, 'UTC')")
    if window[1] is not None:
        params["r_end"] = window[1] // 1_000_000
        conds.append(f"{HOUR} < toDateTime({{r_end:Int64}}, 'UTC')")
    return " AND ".join(conds)


def totals(flt: EventFilter, *, final: bool, sessions_from_rollup: bool = False) -> Query:
    """Count, distinct sessions, first and last timestamp over the matching events (one pass).

    Unfiltered, count/min/max come from the parts' min-max metadata (no scan), and
    `sessions_from_rollup` counts the keys of the p_sessions projection: exactly the stored
    non-null session ids (whatever duplicates were inserted, so no FINAL is needed).
    """
    params: dict[str, Any] = {}
    sessions = (
        f"(SELECT toInt64(count()) FROM (SELECT session_id FROM {EVENTS} "
        "WHERE session_id IS NOT NULL GROUP BY session_id))"
        if sessions_from_rollup
        else "toInt64(uniqExact(session_id))"
    )
    sql = (
        f"SELECT toInt64(count()) AS total_events, {sessions} AS unique_sessions, "
        "min(timestamp) AS first_event_at, max(timestamp) AS last_event_at "
        f"FROM {_src(final)} WHERE {event_where(flt, params)} {_settings(final)}"
    )
    return sql, params


def dim_counts(flt: EventFilter, *, final: bool) -> Query:
    """(dim, key, n) for every non-null key of the three count lists, in one pass (grouping sets).

    `dim` numbers as in DIMS; the store sorts and cuts the top lists, and counts the keys for
    unique_users / unique_workbooks.
    """
    params: dict[str, Any] = {}
    sql = (
        "SELECT toInt8(multiIf(grouping(event_type) = 0, 1, grouping(user_name) = 0, 2, 3)) AS dim, "
        "multiIf(grouping(event_type) = 0, toString(event_type), grouping(user_name) = 0, "
        "toString(user_name), CAST(workbook_name, 'Nullable(String)')) AS key, toInt64(count()) AS n "
        f"FROM {_src(final)} WHERE {event_where(flt, params)} "
        "GROUP BY GROUPING SETS ((event_type), (user_name), (workbook_name)) "
        f"HAVING key IS NOT NULL {_settings(final)}"
    )
    return sql, params


def dim_counts_rollup(window: tuple[int | None, int | None]) -> Query:
    """dim_counts over whole hours, each list from its p_hour_* projection (no FINAL: single writer)."""
    params: dict[str, Any] = {}
    where = _rollup_where(window, params)
    parts = [
        f"SELECT toInt8({code}) AS dim, toString(assumeNotNull({column})) AS key, toInt64(count()) AS n "
        f"FROM {EVENTS} WHERE {where} AND {column} IS NOT NULL GROUP BY {column}"
        for code, column in DIMS.items()
    ]
    return " UNION ALL ".join(parts), params


def timeseries_counts(
    flt: EventFilter, width_us: int, offset_us: int, group_by: GroupBy | None, *, final: bool
) -> Query:
    """Counts per (bucket index, group): bucket = floor((ts - offset) / width)."""
    params: dict[str, Any] = {"width": width_us, "offset": offset_us}
    where = event_where(flt, params)
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ValueError(f"cannot group by {group_by!r}")
    grp = f"CAST({group_by}, 'Nullable(String)')" if group_by else "CAST(NULL, 'Nullable(String)')"
    sql = (
        "SELECT toInt64(intDiv(toUnixTimestamp64Micro(timestamp) - {offset:Int64}, {width:Int64})) AS b, "
        f"{grp} AS grp, toInt64(count()) AS n FROM {_src(final)} WHERE {where} "
        f"GROUP BY b, grp ORDER BY b, grp {_settings(final)}"
    )
    return sql, params


def page_end(flt: EventFilter, limit: int, order: Order, after: Cursor | None, *, final: bool) -> Query:
    """The keys (µs, event_id) of a page's last row and of the row after it, if any.

    Only the two key columns are sorted: the engine holds limit + 1 keys, not whole rows.
    """
    params: dict[str, Any] = {"offset": limit - 1}
    where = event_where(flt, params)
    direction = "DESC" if order == "desc" else "ASC"
    if after is not None:
        params["c_ts"] = after.timestamp_us
        params["c_id"] = after.event_id
        op = "<" if order == "desc" else ">"
        where += f" AND (timestamp, event_id) {op} ({_ts('c_ts')}, {{c_id:String}})"
    sql = (
        f"SELECT toInt64(toUnixTimestamp64Micro(timestamp)) AS ts_us, toString(event_id) AS event_id "
        f"FROM {_src(final)} WHERE {where} "
        f"ORDER BY timestamp {direction}, event_id {direction} LIMIT 2 OFFSET {{offset:UInt64}} {_settings(final)}"
    )
    return sql, params


def capped(query: Query, rows: int) -> Query:
    """At most `rows` rows of `query` (the time series asks for its cap + 1 non-empty cells)."""
    sql, params = query
    return f"SELECT * FROM ({sql}) LIMIT {{cap_rows:UInt64}}", {**params, "cap_rows": rows}


def timeseries_rollup(
    window: tuple[int | None, int | None], width_us: int, offset_us: int, group_by: GroupBy | None
) -> Query:
    """timeseries_counts over whole hours (hour, day, week buckets), from the p_hour_* projections.

    The bucket is computed from the hour, so the engine groups the projections' rows, not events.
    """
    params: dict[str, Any] = {"width": width_us, "offset": offset_us}
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ValueError(f"cannot group by {group_by!r}")
    grp = f"CAST({group_by}, 'Nullable(String)')" if group_by else "CAST(NULL, 'Nullable(String)')"
    bucket = (
        f"toInt64(intDiv(toInt64(toUnixTimestamp({HOUR})) * 1000000 - {{offset:Int64}}, {{width:Int64}}))"
    )
    sql = (
        f"SELECT {bucket} AS b, {grp} AS grp, toInt64(count()) AS n FROM {EVENTS} "
        f"WHERE {_rollup_where(window, params)} GROUP BY b, grp ORDER BY b, grp"
    )
    return sql, params


#: The session's first event (user, machine), as the p_sessions projection aggregates it (DDL 006).
_FIRST_EVENT: Final = (
    "argMin((toString(user_name), CAST(machine_name, 'Nullable(String)')), (timestamp, event_id))"
)
#: Per-session figures in exactly the p_sessions projection's aggregates, so the engine merges
#: the projection's states instead of reading events. Each is idempotent under a duplicate row.
_SESSION_FIGURES: Final = (
    f"SELECT assumeNotNull(session_id) AS sid, {_FIRST_EVENT} AS s_first, "
    "min(timestamp) AS s_start, max(timestamp) AS s_end, toInt64(uniqExact(event_id)) AS s_count, "
    "arraySort(groupUniqArrayIf(toString(assumeNotNull(workbook_name)), workbook_name IS NOT NULL)) AS s_books "
    f"FROM {EVENTS}"
)
_SESSION_OUT: Final = (
    "SELECT sid AS session_id, tupleElement(s_first, 1) AS user_name, "
    "tupleElement(s_first, 2) AS machine_name, s_start AS start_time, "
    "s_end AS end_time, toFloat64(dateDiff('microsecond', s_start, s_end)) / 1000000 AS duration_s, "
    "s_count AS event_count, s_books AS workbooks"
)


def sessions_page(flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None) -> Query:
    """A page of sessions from the p_sessions projection, newest first by (start_time, session_id).

    Only the page's sessions have their (heavier) uniqExact/groupUniqArray states merged. A time
    window is exact: a session matches when one of its events lies in [start, end), which a
    min/max overlap cannot tell (a session may pause across the window), so the window's
    session ids come from the time-pruned events table.
    """
    params: dict[str, Any] = {"limit": limit}
    where = ["session_id IS NOT NULL"]
    window = EventFilter(start=flt.start, end=flt.end)
    if flt.start is not None or flt.end is not None:
        inner = event_where(window, params)
        where.append(
            f"session_id IN (SELECT session_id FROM {EVENTS} WHERE {inner} AND session_id IS NOT NULL)"
        )
    having = ["1"]
    if flt.user_name is not None:
        params["user"] = flt.user_name
        having.append(f"tupleElement({_FIRST_EVENT}, 1) = {{user:String}}")
    if after is not None:
        params["a_ts"] = micros(after[0])
        params["a_id"] = after[1]
        having.append(f"(min(timestamp), session_id) < ({_ts('a_ts')}, {{a_id:String}})")
    ids = (
        f"SELECT session_id FROM {EVENTS} WHERE {' AND '.join(where)} GROUP BY session_id "
        f"HAVING {' AND '.join(having)} ORDER BY min(timestamp) DESC, session_id DESC LIMIT {{limit:UInt32}}"
    )
    sql = (
        f"{_SESSION_OUT} FROM ({_SESSION_FIGURES} WHERE session_id IN ({ids}) GROUP BY session_id) "
        "ORDER BY start_time DESC, session_id DESC"
    )
    return sql, params


def export(flt: EventFilter, *, final: bool) -> Query:
    """Every matching event, oldest first, for a streamed export."""
    params: dict[str, Any] = {}
    sql = (
        f"SELECT {COLUMNS} FROM {_src(final)} WHERE {event_where(flt, params)} "
        f"ORDER BY timestamp ASC, event_id ASC {_settings(final)}"
    )
    return sql, params


def session_one(session_id: str) -> Query:
    """One session's figures from the p_sessions projection."""
    sql = f"{_SESSION_OUT} FROM ({_SESSION_FIGURES} WHERE session_id = {{sid:String}} GROUP BY session_id)"
    return sql, {"sid": session_id}


# -- the archive tier (storage.archive): months, fingerprints, drops, session partials ---------

#: The content fingerprint of storage.archive.fingerprint: the first 8 bytes of MD5(event_id),
#: little-endian, summed modulo 2^64 (the same figure DuckDB computes with md5_number).
FINGERPRINT: Final = "sumWithOverflow(reinterpretAsUInt64(MD5(event_id)))"


def months(*, final: bool) -> Query:
    """Rows held per UTC month (YYYYMM), oldest first."""
    sql = (
        f"SELECT toUInt32(toYYYYMM(timestamp)) AS month, toInt64(count()) AS n FROM {_src(final)} "
        f"GROUP BY month ORDER BY month {_settings(final)}"
    )
    return sql, {}


def month_fingerprint(month: int, *, final: bool) -> Query:
    """Row count and content fingerprint of one month's events (deduplicated when `final`)."""
    sql = (
        f"SELECT toInt64(count()) AS n, {FINGERPRINT} AS fp FROM {_src(final)} "
        f"WHERE toYYYYMM(timestamp) = {{month:UInt32}} {_settings(final)}"
    )
    return sql, {"month": month}


def drop_month(month: int) -> Query:
    """Drop one monthly partition, its projections with it (one atomic metadata operation)."""
    return f"ALTER TABLE {EVENTS} DROP PARTITION {{month:UInt32}}", {"month": month}


def session_ids(flt: EventFilter, *, final: bool) -> Query:
    """Distinct non-null session ids of the matching events."""
    params: dict[str, Any] = {}
    sql = (
        # Aliased `sid`: an alias named session_id would shadow the column in WHERE.
        f"SELECT DISTINCT assumeNotNull(session_id) AS sid FROM {EVENTS} "
        f"WHERE {event_where(flt, params)} AND session_id IS NOT NULL"
    )
    return sql, params


def session_partials(ids: list[str]) -> Query:
    """Per session of `ids`, the figures of its events in this store, with its first event's key.

    A session whose events span the hot store and the archive is merged from two such rows
    (storage.archive.sessions); the first event's (timestamp, event_id) settles which tier's
    first user and machine win. Every aggregate is idempotent under a duplicate row.
    """
    inner = (
        "SELECT assumeNotNull(session_id) AS sid, min(timestamp) AS s_start, max(timestamp) AS s_end, "
        f"argMin(event_id, (timestamp, event_id)) AS s_first_id, {_FIRST_EVENT} AS s_first, "
        "toInt64(uniqExact(event_id)) AS s_count, "
        "arraySort(groupUniqArrayIf(toString(assumeNotNull(workbook_name)), workbook_name IS NOT NULL)) AS s_books "
        f"FROM {EVENTS} WHERE session_id IN {{ids:Array(String)}} GROUP BY session_id"
    )
    sql = (
        "SELECT sid AS session_id, toInt64(toUnixTimestamp64Micro(s_start)) AS first_us, "
        "s_first_id AS first_event_id, tupleElement(s_first, 1) AS user_name, "
        "tupleElement(s_first, 2) AS machine_name, s_start AS start_time, s_end AS end_time, "
        f"s_count AS event_count, s_books AS workbooks FROM ({inner})"
    )
    return sql, {"ids": ids}


# -- operators' view of the table (storage.internals): system tables only, never the events ----

#: The table holding the parts on a cluster node (audit_events there is Distributed, partless).
LOCAL_EVENTS: Final = "audit_events_local"


def table_internals(database: str, table: str) -> Query:
    """One row: active parts (total, fullest partition), merges, mutations, rows and bytes of a table.

    Metadata only (system.parts, system.merges, system.mutations, system.merge_tree_settings,
    system.metrics):
    cheap whatever the data's size. Columns are named as storage.internals names them, without
    the `clickhouse_` prefix.
    """
    where = "database = {db:String} AND table = {table:String}"
    setting = "(SELECT toUInt64(value) FROM system.merge_tree_settings WHERE name = '{}')"
    sql = (
        "SELECT toUInt64(sum(n)) AS active_parts, toUInt64(max(n)) AS max_parts_per_partition, "
        "toUInt64(count()) AS partitions, toUInt64(sum(r)) AS rows, toUInt64(sum(b)) AS bytes_on_disk, "
        f"(SELECT count() FROM system.merges WHERE {where}) AS merges_running, "
        f"(SELECT toUInt64(sum(num_parts)) FROM system.merges WHERE {where}) AS parts_merging, "
        f"(SELECT count() FROM system.mutations WHERE {where} AND NOT is_done) AS mutations_pending, "
        f"{setting.format('parts_to_delay_insert')} AS parts_to_delay_insert, "
        f"{setting.format('parts_to_throw_insert')} AS parts_to_throw_insert, "
        "(SELECT toUInt64(value) FROM system.metrics WHERE metric = 'MemoryTracking') AS memory_tracked_bytes "
        "FROM (SELECT partition_id, count() AS n, sum(rows) AS r, sum(bytes_on_disk) AS b "
        f"FROM system.parts WHERE {where} AND active GROUP BY partition_id)"
    )
    return sql, {"db": database, "table": table}

"""Issue 7's reproduction: a crash between the events' part and a derived table's part.

Before DDL 006, three materialized views fed event_index, sessions_rollup and event_counts after
the insert into audit_events, each committing its own part. A kill -9 between those commits leaves
the derived tables short of the events (or, had a view committed first, beyond them). These tests
build exactly that state in a database created by the old DDL (000-005): append, then remove the
newest part of one derived table (or of audit_events), as the crash would have left it. Then the
current store opens the database (which applies 006), the unanswered batch is sent again inside a
larger append with new events, and every read and figure must equal the plain-Python oracle.

On the old schema and store this failed in every case: a resend was stored twice (the exact lookup
in event_index missed the ids), sessions and counts disagreed with the events, or (events part
removed, derived parts kept) the resend was taken for a duplicate and never stored.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from storage.clickhouse.migrations import DDL_DIR
from storage.clickhouse.store import ClickHouseStore
from storage.log.store_log import LogOptions
from storage.schema import conform
from tests.conftest import new_database
from tests.contract.agreement import assert_store_agrees
from tests.contract.events import BASE, Row, event, table

OLD_DDL_FILES = (
    "000_schema_migrations.sql",
    "001_audit_events.sql",
    "002_sessions_rollup.sql",
    "003_event_index.sql",
    "004_event_counts.sql",
    "005_hot_codecs.sql",
)
DERIVED = ("event_index", "sessions_rollup", "event_counts")
#: How many events each table of the old schema accounts for.
ACCOUNTED = {
    "audit_events": "SELECT count() FROM audit_events",
    "event_index": "SELECT count() FROM event_index",
    "event_counts": "SELECT sum(events) FROM event_counts WHERE dim = 'event_type'",
    "sessions_rollup": "SELECT sum(n) FROM (SELECT uniqExactMerge(event_ids) AS n FROM sessions_rollup GROUP BY session_id)",
}


def rows(first: int, count: int) -> list[Row]:
    """Events over a few hours, four sessions that span batches, some without a workbook."""
    return [
        event(
            i,
            timestamp=BASE + dt.timedelta(minutes=23 * i),
            event_type=("cell_change", "formula_change", "sheet_add")[i % 3],
            user_name=f"CORP\\u{i % 4}",
            session_id=f"s-{i % 4}",
            workbook_name=None if i % 5 == 0 else f"book{i % 3}.xlsx",
        )
        for i in range(first, first + count)
    ]


@pytest.fixture
def old_ddl(tmp_path: Path) -> Path:
    """The DDL as it was before the fix: materialized views feeding three derived tables."""
    target = tmp_path / "ddl-before-006"
    target.mkdir()
    for name in OLD_DDL_FILES:
        shutil.copy(DDL_DIR / name, target / name)
    return target


def old_insert(store: ClickHouseStore, events: list[Row]) -> None:
    """Insert as the store of the old schema did: one insert into audit_events, views fed by it.

    Today's store writes columns the old table lacks (session_seq and the log's leaf columns),
    so the rows go in through the driver with only the old table's columns.
    """
    conn = store._conn()
    have = set(
        conn.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'audit_events'"
        ).result_columns[0]
    )
    rows = conform(table(events))
    conn.insert_arrow("audit_events", rows.select([n for n in rows.column_names if n in have]))


def newest_part(store: ClickHouseStore, table_name: str) -> str:
    """The part the last insert created in `table_name` (merges are stopped, so it is alone)."""
    sql = (
        "SELECT name FROM system.parts WHERE database = currentDatabase() AND table = {t:String} "
        "AND active ORDER BY max_block_number DESC LIMIT 1"
    )
    return str(store._conn().query(sql, parameters={"t": table_name}).result_rows[0][0])


def tear(store: ClickHouseStore, removed: str) -> None:
    """Leave what a kill between the commits of the last insert leaves: `removed`'s newest part gone."""
    conn = store._conn()
    conn.command(f"ALTER TABLE {removed} DROP PART '{newest_part(store, removed)}'")


@pytest.mark.parametrize("removed", [*DERIVED, "audit_events"])
def test_resend_after_a_torn_insert_is_stored_once_and_every_figure_agrees(
    chdb_path: Path, old_ddl: Path, removed: str
) -> None:
    database = new_database()
    url = f"chdb://{chdb_path}"
    before, unanswered, later = rows(1, 40), rows(41, 25), rows(66, 15)
    old = ClickHouseStore(
        url, database=database, ddl_dir=old_ddl, log=LogOptions(enabled=False)
    )  # no leaf columns yet
    old.open()
    try:
        old_insert(old, before)
        for name in (*DERIVED, "audit_events"):
            old._conn().command(f"SYSTEM STOP MERGES {name}")
        old_insert(old, unanswered)  # the crash came before this append was answered
        tear(old, removed)
        accounted = {name: int(old._conn().command(sql)) for name, sql in ACCOUNTED.items()}
        assert accounted == {name: 40 if name == removed else 65 for name in ACCOUNTED}  # really torn
    finally:
        for name in (*DERIVED, "audit_events"):  # a restarted process has no merges stopped (006
            old._conn().command(f"SYSTEM START MERGES {name}")  # materializes projections: a mutation)
        old.close()
        old._writer.ids = None  # a restarted process loads its id filter from audit_events

    new = ClickHouseStore(url, database=database)  # the fixed store: applies 006 at open
    new.open()
    try:
        result = new.append(table([*later[:7], *unanswered, *later[7:]]))  # grouped another way
        resent_stored = len(unanswered) if removed == "audit_events" else 0
        assert result.stored == len(later) + resent_stored
        assert_store_agrees(new, [*before, *unanswered, *later])
    finally:
        new.close()

"""The derived figures come from projections inside the events' parts, and nothing else derives.

DDL 006 replaced the materialized views and their tables with projections (see its header). These
tests pin that down: after the migrations a database holds no view and no table but the events
and the migration record, and every query that used to read a derived table is answered from its
projection (the engine's `force_optimize_projection_name` fails the query otherwise), so the
speed of the rollups was kept along with their exactness.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.base import EventFilter, SessionFilter
from storage.clickhouse import queries as q
from storage.clickhouse.store import ClickHouseStore
from tests.conftest import new_database
from tests.contract.events import BASE, eid, table, varied

HOUR_US = 3_600_000_000


@pytest.fixture(scope="module")
def ch(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(f"chdb://{chdb_path}", database=new_database())
    store.open()
    store.append(table(varied()))
    try:
        yield store
    finally:
        store.close()


def answered_from(ch: ClickHouseStore, query: q.Query, projection: str) -> None:
    sql, params = query
    settings = {"force_optimize_projection": 1, "force_optimize_projection_name": projection}
    ch._conn().query_arrow(sql, parameters=params, settings=settings)


def test_only_the_events_and_the_migration_record_remain(ch: ClickHouseStore) -> None:
    rows = ch._conn().query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    assert rows.result_rows == [
        ("audit_events", "ReplacingMergeTree"),
        ("schema_migrations", "ReplacingMergeTree"),
    ]
    names = ch._conn().query(
        "SELECT name FROM system.projections WHERE database = currentDatabase() ORDER BY name"
    )
    assert [r[0] for r in names.result_rows] == [
        "p_hour_type",
        "p_hour_user",
        "p_hour_workbook",
        "p_ids",
        "p_sessions",
    ]


def test_id_lookups_use_p_ids(ch: ClickHouseStore) -> None:
    answered_from(ch, q.existing_ids([eid(1), eid(2), "nope"]), "p_ids")
    answered_from(ch, q.id_days(eid(3)), "p_ids")


@pytest.mark.parametrize("window", [(None, None), (BASE.timestamp() * 1e6 + HOUR_US, None)])
def test_count_lists_use_the_hour_projections(ch: ClickHouseStore, window: tuple[float | None, None]) -> None:
    bounds = (None if window[0] is None else int(window[0]), window[1])
    sql, params = q.dim_counts_rollup(bounds)
    for part, projection in zip(
        sql.split(" UNION ALL "), ("p_hour_type", "p_hour_user", "p_hour_workbook"), strict=True
    ):
        answered_from(ch, (part, params), projection)


@pytest.mark.parametrize(
    ("group_by", "projection"),
    [("event_type", "p_hour_type"), ("user_name", "p_hour_user"), ("workbook_name", "p_hour_workbook")],
)
def test_hour_series_use_the_hour_projections(ch: ClickHouseStore, group_by: str, projection: str) -> None:
    for width in (HOUR_US, 24 * HOUR_US):
        answered_from(ch, q.timeseries_rollup((None, None), width, 0, group_by), projection)  # type: ignore[arg-type]
    ch._conn().query_arrow(
        *q.timeseries_rollup((None, None), HOUR_US, 0, None), settings={"force_optimize_projection": 1}
    )


def test_session_figures_use_p_sessions(ch: ClickHouseStore) -> None:
    # A time window is left out on purpose: which sessions have an event inside it is a question
    # for the events themselves (time-pruned), not for per-session first/last timestamps.
    after = (BASE + dt.timedelta(days=3), "s-3")
    for flt, cursor in [
        (SessionFilter(), None),
        (SessionFilter(user_name="CORP\\bob"), None),
        (SessionFilter(), after),
    ]:
        answered_from(ch, q.sessions_page(flt, 10, cursor), "p_sessions")
    answered_from(ch, q.session_one("s-1"), "p_sessions")
    answered_from(ch, q.totals(EventFilter(), final=False, sessions_from_rollup=True), "p_sessions")
